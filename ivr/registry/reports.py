"""Lost or stolen, reported by phone: the signed-in owner reports a device of their kartabl and
hears a case number; the owner withdraws the report the same way when the phone is found.

A live report freezes the device: an inquiry tells a would-be buyer it is reported lost or stolen,
and transfer, activation, a new or changed code and a return are refused (ivr.registry.devices
.precheck reads `devices.reported` from the row it locks). A report or a withdrawal is ONE write
transaction on the locked device row, guarded by the version the owner saw when choosing it, and
bumps that version — so a transfer of the device already in flight on another call is refused as
CHANGED. Each is audited with the calling line and the call, and writes the owner's SMS receipt
in the same transaction (ivr.registry.outbox).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, and_, insert, select, update

from ivr.registry import outbox
from ivr.registry.store import GATEWAY_IVR, Abort, Store, as_device
from ivr.registry.tables import devices, reports
from ivr.registry.types import ADMIN, Change, Device, Origin, Owner, Refusal, Reported


def refused(store: Store, conn: Connection, op: str, refusal: Refusal, *, imei: str,
            actor: str | None, gateway: str, origin: Origin, row: Row[Any] | None) -> Change:
    """An audited refusal (committed with the transaction: the attempt stays on record), with
    the device as the caller may hear it."""
    store.audit(conn, "refused", msisdn=actor, imei=imei, gateway=gateway,
                detail=f"{op}: {refusal.value}", origin=origin)
    return Change(refusal=refusal,
                  device=as_device(row, store.now()) if row is not None else None)


def without_sim(store: Store, op: str, owner: Owner, *, imei: str, origin: Origin,
                gateway: str) -> Change | None:
    """NEEDS_SIM, audited, when the owner has not shown the number's SIM on this call (own
    vouched line or an SMS code, Owner.sim): what moves a device or a secret needs it. None when
    they have."""
    if owner.sim:
        return None
    return store.write(lambda conn: refused(store, conn, op, Refusal.NEEDS_SIM, imei=imei,
                                            actor=owner.msisdn, gateway=gateway, origin=origin,
                                            row=None))


class Reports:
    def __init__(self, store: Store) -> None:
        self.store = store

    def report(self, owner: Owner, device: Device, kind: Reported, *, origin: Origin = ADMIN,
               gateway: str = GATEWAY_IVR) -> Change:
        """Report the owner's device lost or stolen; Change.reference is the case number."""
        store, imei = self.store, device.imei

        def work(conn: Connection) -> Change:
            now = store.now()
            row = self._owned(conn, owner, device, "report", origin, gateway)
            if isinstance(row, Change):
                return row
            if row.reported is not None:
                return self._refused(conn, Refusal.REPORTED, owner, imei, row, "report",
                                     origin, gateway)
            self._set(conn, row, device.version, kind.value)
            case = store.unused_number(conn, reports.c.case_number)
            conn.execute(insert(reports).values(
                case_number=case, device_id=row.id, imei=imei, kind=kind.value,
                msisdn=owner.msisdn, at=now))
            store.audit(conn, f"reported_{kind.value}", msisdn=owner.msisdn, imei=imei,
                        gateway=gateway, at=now, origin=origin, detail=f"case {case}")
            outbox.queue(conn, owner.msisdn, f"sms_reported_{kind.value}", at=now, imei=imei,
                         origin=origin, reference=case)
            return Change(reference=case, device=as_device(row, now, version=row.version + 1))

        return store.write(work)

    def withdraw(self, owner: Owner, device: Device, *, origin: Origin = ADMIN,
                 gateway: str = GATEWAY_IVR) -> Change:
        """The owner found the device: the live report is withdrawn and the device works again.
        Change.reference is the withdrawn report's case number. Needs the SIM (Owner.sim): a
        thief who learnt the PIN must not make the phone sellable again; reporting stays open to
        the PIN alone, from any phone, since the SIM may be in the stolen phone."""
        store, imei = self.store, device.imei
        no_sim = without_sim(store, "withdraw", owner, imei=imei, origin=origin, gateway=gateway)
        if no_sim is not None:
            return no_sim

        def work(conn: Connection) -> Change:
            now = store.now()
            row = self._owned(conn, owner, device, "withdraw", origin, gateway)
            if isinstance(row, Change):
                return row
            live = conn.execute(select(reports.c.id, reports.c.case_number).where(and_(
                reports.c.device_id == row.id, reports.c.withdrawn_at.is_(None)))).first()
            if row.reported is None or live is None:  # nothing to withdraw: a stale choice
                return self._refused(conn, Refusal.CHANGED, owner, imei, row, "withdraw",
                                     origin, gateway)
            self._set(conn, row, device.version, None)
            conn.execute(update(reports).where(reports.c.id == live.id)
                         .values(withdrawn_at=now))
            store.audit(conn, "report_withdrawn", msisdn=owner.msisdn, imei=imei,
                        gateway=gateway, at=now, origin=origin,
                        detail=f"case {live.case_number}")
            outbox.queue(conn, owner.msisdn, "sms_report_withdrawn", at=now, imei=imei,
                         origin=origin, reference=live.case_number)
            return Change(reference=live.case_number,
                          device=as_device(row, now, version=row.version + 1))

        return store.write(work)

    def case_of(self, imei: str) -> str | None:
        """The live report's case number, if the device has one (what the owner hears before
        withdrawing it)."""
        with self.store.reading() as conn:
            found: str | None = conn.execute(
                select(reports.c.case_number).where(reports.c.imei == imei,
                                                    reports.c.withdrawn_at.is_(None))).scalar()
            return found

    # --- the guard both share --------------------------------------------------------------------
    def _owned(self, conn: Connection, owner: Owner, device: Device, op: str, origin: Origin,
               gateway: str) -> Row[Any] | Change:
        """The locked device row, or the audited refusal: unknown, changed since the owner
        chose it (the version), or no longer theirs."""
        row = self.store.device(conn, device.imei, lock=True)
        refusal = (Refusal.UNKNOWN_DEVICE if row is None
                   else Refusal.CHANGED if row.version != device.version
                   else Refusal.NOT_OWNER if row.owner != owner.msisdn else None)
        if refusal is None:
            assert row is not None
            return row
        return self._refused(conn, refusal, owner, device.imei, row, op, origin, gateway)

    def _refused(self, conn: Connection, refusal: Refusal, owner: Owner, imei: str,
                 row: Row[Any] | None, op: str, origin: Origin, gateway: str) -> Change:
        return refused(self.store, conn, op, refusal, imei=imei, actor=owner.msisdn,
                       gateway=gateway, origin=origin, row=row)

    @staticmethod
    def _set(conn: Connection, row: Row[Any], version: int, reported: str | None) -> None:
        """The guarded update (the row is locked, so it cannot miss; the guard is the rule)."""
        done = conn.execute(update(devices).where(and_(
            devices.c.id == row.id, devices.c.version == version))
            .values(reported=reported, version=devices.c.version + 1)).rowcount
        if done != 1:
            raise Abort(Change(refusal=Refusal.CHANGED))
