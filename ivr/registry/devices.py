"""Devices and ownership moves: the IMEI inquiry, an activation code verified once, the moves it
grants (direct transfer, activation), and a new or changed code.

A keyed activation code is checked in three steps (the same as a PIN, ivr.registry.kartabl):
1. a short write transaction checks the refusals a caller should hear first (unknown, changed
   since chosen, not the owner's, blocked, not registered, already the buyer's, no code), the
   device's code lock, *counts the attempt* and takes a snapshot (version and code hash);
2. the code is verified against the snapshot with no transaction open;
3. one write transaction resets the counter and answers a Grant, or counts a wrong code (locking
   the device's code on the third).
The move a Grant allows is then ONE write transaction with no hashing at all: the guarded update
`UPDATE devices … WHERE id = :id AND version = :seen` (the code hash must be the one verified). A
rowcount other than 1 means another call changed the device meanwhile: CHANGED, nothing written.
Of two calls moving one device at once exactly one wins. A new code is hashed between a read
snapshot and the same guarded write.

Wrong codes count on two ladders (ivr.registry.lockout): the signed-in owner's (a direct sale) and
the would-be buyers' (activation), so a stranger who knows an IMEI — it is printed on the box —
can lock the buyers' door but never stops the owner from selling. A calling line may key the codes
of at most LINE_DEVICES devices a day as a buyer. Every attempt's audit row names the calling line
and the call.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, select, update

from ivr.registry import lockout, observe, outbox, validate
from ivr.registry.lockout import BUYERS, OWNER, cleared
from ivr.registry.msisdn import try_normalize
from ivr.registry.reports import without_sim
from ivr.registry.store import GATEWAY_IVR, Abort, Store, as_device
from ivr.registry.tables import devices, transfers
from ivr.registry.types import (
    ADMIN,
    Change,
    CodeCheck,
    Device,
    Grant,
    ImeiStatus,
    Inquiry,
    Origin,
    Owner,
    Refusal,
    Reported,
)

# the audit event of each kind of ownership move (a transfers row)
MOVE_EVENTS = {"direct": "transfer", "activation": "activation", "return": "return"}


def new_code() -> str:
    """A fresh activation code: 8 random digits from the OS CSPRNG."""
    return f"{secrets.randbelow(10**validate.CODE_LEN):0{validate.CODE_LEN}d}"


def precheck(row: Row[Any] | None, *, owner: str | None = None, buyer: str | None = None,
             expected_version: int | None = None) -> Refusal | None:
    """The refusals a device earns before its code is looked at, in the order a caller should
    hear them."""
    if row is None:
        return Refusal.UNKNOWN_DEVICE
    if expected_version is not None and row.version != expected_version:
        return Refusal.CHANGED
    if owner is not None and row.owner != owner:
        return Refusal.NOT_OWNER
    refusal = standing(row.status, row.reported)
    if refusal is None and buyer is not None and row.owner == buyer:
        return Refusal.BUYER_IS_OWNER
    return refusal


def standing(status: str, reported: str | None) -> Refusal | None:
    """What stops any operation on a device, whoever asks: blocked, not registered, reported
    lost or stolen (ivr.registry.reports: frozen)."""
    if status == ImeiStatus.BLOCKED:
        return Refusal.BLOCKED
    if status != ImeiStatus.REGISTERED:
        return Refusal.NOT_REGISTERED
    if reported is not None:
        return Refusal.REPORTED
    return None


def on_choice(device: Device, *, sale: bool = False, reported_ok: bool = False) -> CodeCheck:
    """The registry's answer on a device its owner just chose from the kartabl read on this
    call, told before anything else is asked: what stops the operation (`standing`; for a
    `sale`, no code or its code locked), or go ahead. `reported_ok`: the operation is about the
    report, and a reported device can always be withdrawn, even one blocked since. The move
    itself checks again (`precheck`), on the row as it is then."""
    if reported_ok and device.reported is not None:
        return CodeCheck(device=device)
    refusal = standing(device.status, device.reported)
    if refusal is None and sale and not device.has_code:
        refusal = Refusal.NO_CODE
    if refusal is None and sale and device.code_locked_until is not None:
        refusal = Refusal.CODE_LOCKED
    return CodeCheck(refusal=refusal, device=device,
                     locked_until=device.code_locked_until if refusal else None)


CODE_EVENTS = ("code_ok", "code_failed", "code_locked")


def _set(conn: Connection, row_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(devices).where(devices.c.id == row_id).values(**values))


def _count_locks(events: list[str]) -> None:
    """A committed transaction's code locks, for the metrics (the lockout counter)."""
    observe.lockouts("code", events.count("code_locked"))


@dataclass(frozen=True)
class _Snapshot:
    """Step 1's snapshot: what step 2 verifies against and step 3 guards on."""

    version: int
    code_hash: str


class Devices:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _refused(self, conn: Connection, op: str, refusal: Refusal, *, imei: str,
                 actor: str | None, gateway: str, origin: Origin,
                 row: Row[Any] | None = None) -> Device | None:
        """Audit a refusal; the device as the caller may hear it, when known."""
        self.store.audit(conn, "refused", msisdn=actor, imei=imei, gateway=gateway,
                         detail=f"{op}: {refusal.value}", origin=origin)
        return as_device(row, self.store.now()) if row is not None else None

    # --- the inquiry -----------------------------------------------------------------------------
    def inquire(self, imei: str) -> Inquiry:
        if not validate.is_imei(imei):
            return Inquiry(imei=imei, status=ImeiStatus.INVALID)
        with self.store.reading() as conn:
            row = conn.execute(select(devices.c.status, devices.c.brand, devices.c.model,
                                      devices.c.reported)
                               .where(devices.c.imei == imei)).first()
        if row is None:
            return Inquiry(imei=imei, status=ImeiStatus.UNKNOWN)
        return Inquiry(imei=imei, status=ImeiStatus(row.status), brand=row.brand,
                       model=row.model,
                       reported=Reported(row.reported) if row.reported else None)

    # --- what a buyer meets before keying a code -------------------------------------------------
    def for_buyer(self, imei: str, buyer: str, origin: Origin = ADMIN) -> CodeCheck:
        """Can `buyer` activate this device with a code? Answered right after the IMEI, before
        any code is keyed: unknown, not registered, blocked, already the buyer's, no code, the
        buyers' code lock, this line's throttle. Reads only; counts nothing."""
        if not validate.is_imei(imei):
            return CodeCheck(refusal=Refusal.INVALID_IMEI)
        number = try_normalize(buyer)
        if number is None:
            return CodeCheck(refusal=Refusal.BUYER_INVALID)
        store = self.store
        with store.reading() as conn:
            row = store.device(conn, imei)
            now = store.now()
            refusal = precheck(row, buyer=number)
            if refusal is None and row is not None and row.code_hash is None:
                refusal = Refusal.NO_CODE
            if refusal is None and self._throttled(conn, imei, origin, now):
                refusal = Refusal.THROTTLED
        device = as_device(row, now) if row is not None else None
        if refusal is not None:
            return CodeCheck(refusal=refusal, device=device)
        assert row is not None
        locked = lockout.live_lock(BUYERS.read(row).locked_until, now)
        if locked is not None:
            return CodeCheck(refusal=Refusal.CODE_LOCKED, locked_until=locked, device=device)
        return CodeCheck(device=device)

    # --- a keyed activation code, verified once ---------------------------------------------------
    def check_code(self, imei: str, code: str, *, owner: Owner | None = None,
                   buyer: str | None = None, expected_version: int | None = None,
                   origin: Origin = ADMIN, gateway: str = GATEWAY_IVR) -> CodeCheck:
        """Verify the device's code for a move: by its signed-in `owner` (a direct transfer; the
        device must be in their kartabl) or by a `buyer` taking it over (activation). Counts
        toward the device's code lockout. A right code answers the Grant the move needs."""
        if not validate.is_imei(imei):
            return CodeCheck(refusal=Refusal.INVALID_IMEI)
        if buyer is not None:
            buyer = try_normalize(buyer)
            if buyer is None:
                return CodeCheck(refusal=Refusal.BUYER_INVALID)
        store = self.store
        actor = owner.msisdn if owner is not None else buyer
        op = "transfer_code" if owner is not None else "activation_code"
        scope = OWNER if owner is not None else BUYERS
        if owner is not None:  # a PIN alone may not even spend the owner's code tries
            no_sim = without_sim(store, op, owner, imei=imei, origin=origin, gateway=gateway)
            if no_sim is not None:
                return CodeCheck(refusal=Refusal.NEEDS_SIM)

        events: list[str] = []  # the committed transaction's audit events, for the metrics

        def audit(conn: Connection, event: str, now: datetime, detail: str) -> None:
            events.append(event)
            store.audit(conn, event, msisdn=actor, imei=imei, gateway=gateway, at=now,
                        detail=f"{op}: {detail}", origin=origin)

        def reserve(conn: Connection) -> CodeCheck | _Snapshot:
            events.clear()  # a retried transaction starts again
            now = store.now()
            row = store.device(conn, imei, lock=True)
            refusal = precheck(row, owner=owner.msisdn if owner else None, buyer=buyer,
                               expected_version=expected_version)
            if refusal is None and row is not None and row.code_hash is None:
                refusal = Refusal.NO_CODE
            if refusal is None and owner is None and self._throttled(conn, imei, origin, now):
                refusal = Refusal.THROTTLED
            if refusal is not None:
                return CodeCheck(refusal=refusal, device=self._refused(
                    conn, op, refusal, imei=imei, actor=actor, gateway=gateway, origin=origin,
                    row=row))
            assert row is not None
            before = scope.read(row)
            lock, counters = lockout.reserve(before, now)
            _set(conn, row.id, scope.values(counters))
            if lock is not None:
                audit(conn, "code_locked" if counters.level > before.level else "refused", now,
                      f"code_locked ({scope.name}) until {lock.isoformat()}")
                if counters.level > before.level:
                    outbox.locked(conn, row.owner, "sms_code_locked", until=lock, at=now,
                                  origin=origin, imei=imei)
                return CodeCheck(refusal=Refusal.CODE_LOCKED, locked_until=lock,
                                 device=as_device(row, now))
            return _Snapshot(row.version, row.code_hash)

        seen = store.write(reserve)
        _count_locks(events)
        if isinstance(seen, CodeCheck):
            return seen
        right = validate.is_code(code) and store.hasher.verify(seen.code_hash, "code", imei, code)

        def finish(conn: Connection) -> CodeCheck:
            events.clear()
            now = store.now()
            row = store.device(conn, imei, lock=True)
            if row is None or row.version != seen.version or row.code_hash != seen.code_hash:
                return CodeCheck(refusal=Refusal.CHANGED, device=self._refused(
                    conn, op, Refusal.CHANGED, imei=imei, actor=actor, gateway=gateway,
                    origin=origin, row=row))
            device = as_device(row, now)
            live = lockout.live_lock(scope.read(row).locked_until, now)
            if right:  # among the allowed guesses (step 1 counted it), even if locked meanwhile
                _set(conn, row.id, cleared(scope))
                audit(conn, "code_ok", now, scope.name)
                return CodeCheck(grant=Grant(imei, seen.version, seen.code_hash), device=device)
            if live is not None:  # a parallel attempt locked it meanwhile
                return CodeCheck(refusal=Refusal.CODE_LOCKED, locked_until=live, device=device)
            counters = lockout.after_wrong(scope.read(row), now)
            _set(conn, row.id, scope.values(counters))
            if counters.locked_until is not None:
                audit(conn, "code_locked", now, f"{counters.failed} wrong codes ({scope.name}); "
                      f"locked until {counters.locked_until.isoformat()}")
                outbox.locked(conn, row.owner, "sms_code_locked", until=counters.locked_until,
                              at=now, origin=origin, imei=imei)
                return CodeCheck(refusal=Refusal.CODE_LOCKED,
                                 locked_until=counters.locked_until, device=device)
            audit(conn, "code_failed", now,
                  f"wrong code {counters.failed} of {lockout.MAX_ATTEMPTS} ({scope.name})")
            return CodeCheck(refusal=Refusal.WRONG_CODE,
                             attempts_left=lockout.MAX_ATTEMPTS - counters.failed,
                             device=device)

        answer = store.write(finish)
        _count_locks(events)
        return answer

    def _throttled(self, conn: Connection, imei: str, origin: Origin, now: datetime) -> bool:
        """Has this calling line keyed the codes of too many devices as a buyer today?"""
        if origin == ADMIN:
            return False
        return self.store.targets_tried(
            conn, events=CODE_EVENTS, column="imei", origin=origin,
            since=now - lockout.THROTTLE_WINDOW, besides=(imei,)) >= lockout.LINE_DEVICES

    # --- ownership moves ----------------------------------------------------------------------
    def transfer(self, owner: Owner, grant: Grant, buyer: str, *, origin: Origin = ADMIN,
                 gateway: str = GATEWAY_IVR) -> Change:
        """Direct sale: the signed-in owner moves the granted device to the buyer's kartabl.
        Change.reference is the transfer's reference number."""
        buyer_number = try_normalize(buyer)
        if buyer_number is None:
            return Change(refusal=Refusal.BUYER_INVALID)
        return without_sim(self.store, "transfer_direct", owner, imei=grant.imei, origin=origin,
                           gateway=gateway) or \
            self._move("transfer_direct", "direct", grant, buyer_number, actor=owner.msisdn,
                       owner=owner.msisdn, origin=origin, gateway=gateway)

    def activate(self, buyer: str, grant: Grant, *, origin: Origin = ADMIN,
                 gateway: str = GATEWAY_IVR) -> Change:
        """Indirect sale: the buyer takes the granted device over into their own kartabl."""
        buyer_number = try_normalize(buyer)
        if buyer_number is None:
            return Change(refusal=Refusal.BUYER_INVALID)
        return self._move("activate", "activation", grant, buyer_number, actor=buyer_number,
                          origin=origin, gateway=gateway)

    def _move(self, op: str, kind: str, grant: Grant, buyer: str, *, actor: str,
              owner: str | None = None, origin: Origin, gateway: str) -> Change:
        store = self.store

        def work(conn: Connection) -> Change:
            now = store.now()
            row = store.device(conn, grant.imei, lock=True)
            refusal = precheck(row, owner=owner, buyer=buyer, expected_version=grant.version)
            if refusal is None and row is not None and row.code_hash != grant.code_hash:
                refusal = Refusal.CHANGED
            if refusal is not None:
                return Change(refusal=refusal, device=self._refused(
                    conn, op, refusal, imei=grant.imei, actor=actor, gateway=gateway,
                    origin=origin, row=row))
            assert row is not None
            reference = self.move_row(conn, row, grant.version, buyer, kind, now=now,
                                      actor=actor, origin=origin, gateway=gateway)
            outbox.moved(conn, direct=kind == "direct", imei=grant.imei, previous=row.owner,
                         buyer=buyer, reference=reference, at=now, origin=origin)
            return Change(reference=reference,
                          device=as_device(row, now, version=row.version + 1))

        return store.write(work)

    def move_row(self, conn: Connection, row: Row[Any], version: int, to: str, kind: str, *,
                 now: datetime, actor: str, origin: Origin, gateway: str) -> str:
        """The one ownership move every kind shares (a sale, an activation, a return), inside
        the caller's write transaction on the locked `row`: the guarded update (`WHERE version =
        :seen`; another outcome raises Abort(CHANGED), nothing written), the code cleared, the
        `transfers` row and its audit. The transfer's reference number."""
        to_id = self.store.ensure_subscriber(conn, to, now, gateway)
        done = conn.execute(
            update(devices)
            .where(and_(devices.c.id == row.id, devices.c.version == version))
            .values(owner_id=to_id, owner_since=now, code_hash=None, code_changed_at=now,
                    version=devices.c.version + 1, **cleared(OWNER, BUYERS))
        ).rowcount
        if done != 1:
            raise Abort(Change(refusal=Refusal.CHANGED, device=as_device(row, now)))
        reference = self.store.unused_number(conn, transfers.c.reference)
        conn.execute(insert(transfers).values(
            reference=reference, device_id=row.id, imei=row.imei, from_msisdn=row.owner,
            to_msisdn=to, kind=kind, gateway=gateway, at=now,
        ))
        self.store.audit(conn, MOVE_EVENTS[kind], msisdn=actor, imei=row.imei,
                         gateway=gateway, at=now, origin=origin,
                         detail=f"{row.owner or 'no owner'} -> {to}, reference {reference}")
        return reference

    # --- the owner's codes ----------------------------------------------------------------------
    def generate_code(self, owner: Owner, device: Device, *, origin: Origin = ADMIN,
                      gateway: str = GATEWAY_IVR) -> Change:
        """A fresh random 8-digit code in Change.code; the old one stops working."""
        code = new_code()
        change = self._replace_code(owner, device, code, origin=origin, gateway=gateway,
                                    op="generate_code")
        return Change(device=change.device, code=code) if change.ok else change

    def change_code(self, owner: Owner, device: Device, code: str, *, origin: Origin = ADMIN,
                    gateway: str = GATEWAY_IVR) -> Change:
        """The owner sets a code of their choosing (8 digits); the old one stops working."""
        if not validate.is_code(code):
            return Change(refusal=Refusal.INVALID_CODE)
        return self._replace_code(owner, device, code, origin=origin, gateway=gateway,
                                  op="change_code")

    def _replace_code(self, owner: Owner, device: Device, code: str, *, origin: Origin,
                      gateway: str, op: str) -> Change:
        """Snapshot, hash (no lock held), then the guarded write. Resets the code lockout: the
        new code is one nobody has been guessing."""
        store, imei = self.store, device.imei
        no_sim = without_sim(store, op, owner, imei=imei, origin=origin, gateway=gateway)
        if no_sim is not None:
            return no_sim
        with store.reading() as conn:
            seen = store.device(conn, imei)
        refusal = precheck(seen, owner=owner.msisdn, expected_version=device.version)
        code_hash = store.hasher.hash("code", imei, code) if refusal is None else None

        def work(conn: Connection) -> Change:
            now = store.now()
            row = store.device(conn, imei, lock=True)
            found = refusal or precheck(row, owner=owner.msisdn,
                                        expected_version=device.version)
            if found is not None:
                return Change(refusal=found, device=self._refused(
                    conn, op, found, imei=imei, actor=owner.msisdn, gateway=gateway,
                    origin=origin, row=row))
            assert row is not None
            done = conn.execute(
                update(devices)
                .where(and_(devices.c.id == row.id, devices.c.version == row.version))
                .values(code_hash=code_hash, code_changed_at=now,
                        version=devices.c.version + 1, **cleared(OWNER, BUYERS))
            ).rowcount
            if done != 1:
                raise Abort(Change(refusal=Refusal.CHANGED, device=as_device(row, now)))
            event = "code_generated" if op == "generate_code" else "code_changed"
            store.audit(conn, event, msisdn=owner.msisdn, imei=imei, gateway=gateway, at=now,
                        origin=origin)
            outbox.code_replaced(conn, owner.msisdn, imei, generated=op == "generate_code",
                                 at=now, origin=origin)
            return Change(device=as_device(row, now, version=row.version + 1))

        return store.write(work)
