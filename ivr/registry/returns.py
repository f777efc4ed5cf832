"""The 7-day mutual return: the purchase guide gives a buyer 7 days to return an online purchase
and asks them to return a device at once when its IMEI does not match; here ownership can move
back by phone, with both sides agreeing.

1. Within RETURN_WINDOW (7 days) of a transfer or an activation (`transfers.at`, the store's
   clock), the new owner — signed in to their kartabl, the device still theirs and not moved
   since — starts a return with the transfer's reference number (`returnable`, then `start`).
2. The previous owner confirms it from their own line (`waiting`, then `confirm`) within
   CONFIRM_WINDOW (72 hours) of the request: long enough to span an Iranian weekend (Thursday
   and Friday) and a day to call, short enough that a request does not hang over a device the
   new owner keeps using. A request may start on day 7; its deadline is still 72 h later. One
   request per transfer, and so one SMS to the previous owner for it: asking again while it is
   pending is told so and sends nothing; one that expired is not renewed.
3. The device moves back in ONE write transaction, guarded like every move
   (ivr.registry.devices.move_row): the transfer must still be the device's latest and the device
   still the new owner's, its version unchanged since the request, within the deadline, not
   reported lost or stolen; otherwise refused and nothing written. Of two confirmations at once
   exactly one moves it. The move is a `transfers` row of kind `return` (itself not returnable).

Both sides need their SIM (Owner.sim: the number's own vouched line, or an SMS code keyed on the
call): a seller who knows the buyer's PIN (shop staff often set phones up) can neither ask for
the return in the buyer's name nor confirm it without the buyer's SIM. Both sides get an SMS
receipt when the return starts and when it is done, in the transaction of the change
(ivr.registry.outbox). Every step is audited with the calling line and the call.
A blocked device can be returned: a phone deactivated after the sale is what the guide sends back
to the seller.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from ivr.registry import outbox, validate
from ivr.registry.devices import Devices
from ivr.registry.msisdn import national
from ivr.registry.reports import refused, without_sim
from ivr.registry.store import GATEWAY_IVR, Store, as_device
from ivr.registry.tables import returns, transfers
from ivr.registry.types import (
    ADMIN,
    Change,
    Origin,
    Owner,
    Refusal,
    ReturnCase,
    ReturnCheck,
)

RETURN_WINDOW = timedelta(days=7)
CONFIRM_WINDOW = timedelta(hours=72)
PENDING, DONE = "pending", "done"
ARRIVALS_HEARD = 9  # one key each; older arrivals are still returnable by reference number


class Returns:
    def __init__(self, store: Store, devices: Devices) -> None:
        self.store = store
        self.devices = devices

    # --- the new owner ---------------------------------------------------------------------------
    def returnable(self, owner: Owner, reference: str) -> ReturnCheck:
        """Can the signed-in new owner return the transfer with this reference? Reads only: the
        case to confirm («return IMEI X to number Y?»), or why not."""
        if not validate.is_reference(reference):
            return ReturnCheck(refusal=Refusal.NO_SUCH_TRANSFER)
        with self.store.reading() as conn:
            found = self._transfer(conn, owner.msisdn, reference, self.store.now(), lock=False)
        if isinstance(found, Refusal):
            return ReturnCheck(refusal=found)
        transfer, row = found
        return ReturnCheck(case=_case(transfer, row, row.version))

    def arrivals(self, owner: Owner) -> tuple[ReturnCase, ...]:
        """What the signed-in owner can still return, newest first (at most ARRIVALS_HEARD):
        the devices that came to the kartabl by a transfer or an activation within RETURN_WINDOW
        and pass every guard of `returnable` — so the caller picks one instead of keying the
        reference number they heard once. Reads only."""
        now = self.store.now()
        with self.store.reading() as conn:
            recent = conn.execute(
                select(transfers.c.reference)
                .where(transfers.c.to_msisdn == owner.msisdn, transfers.c.kind != "return",
                       transfers.c.from_msisdn.is_not(None),
                       transfers.c.at >= now - RETURN_WINDOW)
                .order_by(transfers.c.at.desc(), transfers.c.id.desc())).scalars().all()
            cases = []
            for reference in recent:
                found = self._transfer(conn, owner.msisdn, reference, now, lock=False)
                if not isinstance(found, Refusal):
                    cases.append(_case(*found, found[1].version))
        return tuple(cases[:ARRIVALS_HEARD])

    def start(self, owner: Owner, case: ReturnCase, *, origin: Origin = ADMIN,
              gateway: str = GATEWAY_IVR) -> ReturnCheck:
        """Record the request (the device as the new owner saw it, `case.version`) and tell both
        sides; the case answered carries the previous owner's deadline."""
        store = self.store
        no_sim = without_sim(store, "return_start", owner, imei=case.imei, origin=origin,
                             gateway=gateway)
        if no_sim is not None:
            return ReturnCheck(refusal=no_sim.refusal)

        def work(conn: Connection) -> ReturnCheck:
            now = store.now()
            found = self._transfer(conn, owner.msisdn, case.reference, now, lock=True)
            if not isinstance(found, Refusal) and found[1].version != case.version:
                found = Refusal.CHANGED
            if isinstance(found, Refusal):
                refused(store, conn, "return_start", found, imei=case.imei, actor=owner.msisdn,
                        gateway=gateway, origin=origin, row=None)
                return ReturnCheck(refusal=found)
            transfer, row = found
            conn.execute(insert(returns).values(
                transfer_id=transfer.id, device_id=row.id, imei=row.imei,
                new_owner=owner.msisdn, previous_owner=transfer.from_msisdn,
                device_version=row.version, requested_at=now, confirm_by=now + CONFIRM_WINDOW,
                state=PENDING, done_at=None))
            store.audit(conn, "return_started", msisdn=owner.msisdn, imei=row.imei,
                        gateway=gateway, at=now, origin=origin,
                        detail=f"reference {case.reference} back to {transfer.from_msisdn}")
            params = {"reference": case.reference, "imei": row.imei}
            outbox.queue(conn, owner.msisdn, "sms_return_started_new", at=now, origin=origin,
                         number=national(transfer.from_msisdn), **params)
            outbox.queue(conn, transfer.from_msisdn, "sms_return_started_previous", at=now,
                         origin=origin, number=national(owner.msisdn), **params)
            return ReturnCheck(case=_case(transfer, row, row.version, requested_at=now,
                                          confirm_by=now + CONFIRM_WINDOW))

        return store.write(work)

    # --- the previous owner ----------------------------------------------------------------------
    def waiting(self, previous: str) -> tuple[ReturnCase, ...]:
        """The returns waiting for this number's confirmation, oldest request first (what the
        previous owner hears, one at a time). Expired requests are not listed."""
        now = self.store.now()
        with self.store.reading() as conn:
            pending = conn.execute(
                select(returns, transfers.c.reference)
                .join(transfers, transfers.c.id == returns.c.transfer_id)
                .where(returns.c.previous_owner == previous, returns.c.state == PENDING,
                       returns.c.confirm_by >= now)
                .order_by(returns.c.requested_at, returns.c.id)).all()
            cases = []
            for request in pending:
                transfer = conn.execute(select(transfers)
                                        .where(transfers.c.id == request.transfer_id)).one()
                row = self.store.device(conn, request.imei)
                assert row is not None
                cases.append(_case(transfer, row, request.device_version,
                                   requested_at=request.requested_at,
                                   confirm_by=request.confirm_by))
        return tuple(cases)

    def confirm(self, previous: Owner, case: ReturnCase, *, origin: Origin = ADMIN,
                gateway: str = GATEWAY_IVR) -> Change:
        """The previous owner takes the device back: ONE transaction, the move guarded like
        every move. Change.reference is the return's own reference number.

        Confirmed only by the previous owner signed in (their kartabl password) AND holding
        that number's SIM (Owner.sim: its own line as the network vouches for it, or an SMS code
        keyed on this call): the password alone can be known to others (shop staff, whoever set
        up the phone), and a caller ID alone can be forged on a VoIP trunk; together they say the
        holder of the SIM that sold the device, who also got the SMS, agrees."""
        store = self.store
        no_sim = without_sim(store, "return_confirm", previous, imei=case.imei, origin=origin,
                             gateway=gateway)
        if no_sim is not None:
            return no_sim

        def work(conn: Connection) -> Change:
            now = store.now()
            row = store.device(conn, case.imei, lock=True)
            transfer = conn.execute(select(transfers)
                                    .where(transfers.c.reference == case.reference)).first()
            request = None if transfer is None else conn.execute(
                select(returns).where(returns.c.transfer_id == transfer.id)).first()
            refusal = _confirm_refusal(conn, previous, now, row, transfer, request)
            if refusal is not None:
                return refused(store, conn, "return_confirm", refusal, imei=case.imei,
                               actor=previous.msisdn, gateway=gateway, origin=origin, row=row)
            assert row is not None and request is not None
            reference = self.devices.move_row(conn, row, request.device_version,
                                              previous.msisdn, "return", now=now,
                                              actor=previous.msisdn, origin=origin,
                                              gateway=gateway)
            conn.execute(update(returns).where(returns.c.id == request.id)
                         .values(state=DONE, done_at=now))
            params = {"reference": reference, "imei": row.imei}
            outbox.queue(conn, previous.msisdn, "sms_return_done_previous", at=now,
                         origin=origin, number=national(request.new_owner), **params)
            outbox.queue(conn, request.new_owner, "sms_return_done_new", at=now,
                         origin=origin, number=national(previous.msisdn), **params)
            return Change(reference=reference,
                          device=as_device(row, now, version=row.version + 1))

        return store.write(work)

    # --- the guards ------------------------------------------------------------------------------
    def _transfer(self, conn: Connection, new_owner: str, reference: str, now: datetime, *,
                  lock: bool) -> tuple[Row[Any], Row[Any]] | Refusal:
        """The transfer to `new_owner` with this reference and its device row, if it can still
        be returned: not a return itself, from someone, the device's latest move and still
        theirs, within RETURN_WINDOW, not reported lost or stolen, not asked for already."""
        transfer = conn.execute(select(transfers)
                                .where(transfers.c.reference == reference)).first()
        if transfer is None or transfer.to_msisdn != new_owner or transfer.kind == "return" \
                or transfer.from_msisdn is None:
            return Refusal.NO_SUCH_TRANSFER
        row = self.store.device(conn, transfer.imei, lock=lock)
        if row is None or row.owner != new_owner or _latest(conn, row.id) != transfer.id:
            return Refusal.MOVED_ON
        if now > transfer.at + RETURN_WINDOW:
            return Refusal.RETURN_WINDOW_OVER
        if row.reported is not None:
            return Refusal.REPORTED
        asked = conn.execute(select(returns.c.state, returns.c.confirm_by)
                             .where(returns.c.transfer_id == transfer.id)).first()
        if asked is not None:  # one request per transfer: no renewal, no second SMS
            return (Refusal.ALREADY_REQUESTED if asked.state == PENDING
                    and now <= asked.confirm_by else Refusal.RETURN_WINDOW_OVER)
        return transfer, row


def _confirm_refusal(conn: Connection, previous: Owner, now: datetime,
                     row: Row[Any] | None, transfer: Row[Any] | None,
                     request: Row[Any] | None) -> Refusal | None:
    if row is None or transfer is None or request is None \
            or request.previous_owner != previous.msisdn:
        return Refusal.NO_SUCH_TRANSFER
    if request.state != PENDING:  # another call confirmed it first
        return Refusal.CHANGED
    if now > request.confirm_by:
        return Refusal.RETURN_WINDOW_OVER
    if row.owner != request.new_owner or _latest(conn, row.id) != transfer.id:
        return Refusal.MOVED_ON
    if row.version != request.device_version:
        return Refusal.CHANGED
    if row.reported is not None:
        return Refusal.REPORTED
    return None


def _latest(conn: Connection, device_id: int) -> int | None:
    """The id of the device's latest ownership move."""
    latest: int | None = conn.execute(select(func.max(transfers.c.id))
                                      .where(transfers.c.device_id == device_id)).scalar()
    return latest


def _case(transfer: Row[Any], row: Row[Any], version: int, *,
          requested_at: datetime | None = None, confirm_by: datetime | None = None) -> ReturnCase:
    return ReturnCase(reference=transfer.reference, imei=transfer.imei, brand=row.brand,
                      model=row.model, previous_owner=transfer.from_msisdn,
                      new_owner=transfer.to_msisdn, version=version,
                      transferred_at=transfer.at, requested_at=requested_at,
                      confirm_by=confirm_by)
