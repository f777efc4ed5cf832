"""Kartabl sign-in: the door before the PIN, the PIN verified once, and the password lockout.

`door(msisdn)` answers before anything is keyed: no password (set one on the web portal first),
locked (until when), or ask for the PIN. `sign_in(msisdn, pin)` verifies the PIN exactly once and,
when it is right, answers the owner with the kartabl's devices: everything the next prompt needs.

A PIN is checked in three steps so that argon2 never runs while a transaction is open:
1. a short write transaction refuses a locked number, *counts the attempt* (ivr.registry.lockout)
   and takes a snapshot of the stored hash;
2. the PIN is verified against the snapshot, with no transaction open;
3. one write transaction resets the counter (right PIN; the hash is upgraded to new argon2 costs if
   they were raised) or engages the lock on the third wrong one, and reads the kartabl. A PIN
   verified against a password the portal has replaced meanwhile counts as wrong.
A number the registry does not know answers NO_PASSWORD, like a number without a password, so the
IVR does not reveal which numbers exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from ivr.registry import lockout, validate
from ivr.registry.lockout import Counters
from ivr.registry.msisdn import try_normalize
from ivr.registry.store import GATEWAY_IVR, Store, as_device
from ivr.registry.tables import devices, subscribers
from ivr.registry.types import Device, Owner, PasswordStatus, SignIn


def _counters(row: Row[Any]) -> Counters:
    return Counters(row.failed_attempts, row.lock_level, row.locked_until)


def _set_counters(conn: Connection, row_id: int, counters: Counters) -> None:
    conn.execute(update(subscribers).where(subscribers.c.id == row_id).values(
        failed_attempts=counters.failed, lock_level=counters.level,
        locked_until=counters.locked_until,
    ))


class Kartabl:
    def __init__(self, store: Store) -> None:
        self.store = store

    def door(self, msisdn: str) -> SignIn:
        """Before the PIN: ASK, NO_PASSWORD or LOCKED (with until when). Writes nothing."""
        number = try_normalize(msisdn)
        if number is None:
            return SignIn(PasswordStatus.NO_PASSWORD)
        with self.store.reading() as conn:
            row = self.store.subscriber(conn, number)
        if row is None or row.password_hash is None:
            return SignIn(PasswordStatus.NO_PASSWORD)
        locked = lockout.live_lock(row.locked_until, self.store.now())
        if locked is not None:
            return SignIn(PasswordStatus.LOCKED, locked_until=locked)
        return SignIn(PasswordStatus.ASK)

    def devices(self, msisdn: str) -> tuple[Device, ...]:
        """The kartabl, oldest entry first (the order the IVR reads and numbers it)."""
        number = try_normalize(msisdn)
        if number is None:
            return ()
        with self.store.reading() as conn:
            return self._devices(conn, number)

    def _devices(self, conn: Connection, msisdn: str) -> tuple[Device, ...]:
        query = (
            select(devices)
            .join(subscribers, devices.c.owner_id == subscribers.c.id)
            .where(subscribers.c.msisdn == msisdn)
            .order_by(devices.c.owner_since, devices.c.id)
        )
        now = self.store.now()
        return tuple(as_device(row, now) for row in conn.execute(query))

    def sign_in(self, msisdn: str, pin: str, gateway: str = GATEWAY_IVR) -> SignIn:
        """Verify the kartabl password once; OK carries the owner and the kartabl."""
        store = self.store
        number = try_normalize(msisdn)
        if number is None:
            return SignIn(PasswordStatus.NO_PASSWORD)

        def reserve(conn: Connection) -> SignIn | tuple[str, datetime | None]:
            now = store.now()
            row = store.subscriber(conn, number, lock=True)
            if row is None or row.password_hash is None:
                store.audit(conn, "login_no_password", msisdn=number, gateway=gateway, at=now,
                            detail=None if row else "unknown number")
                return SignIn(PasswordStatus.NO_PASSWORD)
            lock, counters = lockout.reserve(_counters(row), now)
            _set_counters(conn, row.id, counters)
            if lock is not None:
                event = "login_locked" if counters.level > row.lock_level else "login_while_locked"
                store.audit(conn, event, msisdn=number, gateway=gateway, at=now,
                            detail=f"locked until {lock.isoformat()}")
                return SignIn(PasswordStatus.LOCKED, locked_until=lock)
            return str(row.password_hash), row.password_changed_at

        first = store.write(reserve)
        if isinstance(first, SignIn):
            return first
        seen, seen_changed_at = first
        right = validate.is_pin(pin) and store.hasher.verify(seen, "pin", number, pin)
        rehashed = None
        if right and store.hasher.needs_rehash(seen):  # costs raised since it was set
            rehashed = store.hasher.hash("pin", number, pin)

        def finish(conn: Connection) -> SignIn:
            now = store.now()
            row = store.subscriber(conn, number, lock=True)
            if row is None or row.password_hash is None:
                return SignIn(PasswordStatus.NO_PASSWORD)
            live = lockout.live_lock(row.locked_until, now)
            if live is not None and not right:  # locked by a parallel attempt meanwhile
                return SignIn(PasswordStatus.LOCKED, locked_until=live)
            # right against the password of step 1; the portal may have replaced it since (a rehash
            # by a parallel sign-in keeps password_changed_at, so it does not refuse a right PIN)
            if right and row.password_changed_at == seen_changed_at:
                values: dict[str, Any] = {"failed_attempts": 0, "lock_level": 0,
                                          "locked_until": None}
                if rehashed and row.password_hash == seen:  # not replaced by the portal meanwhile
                    values["password_hash"] = rehashed
                conn.execute(update(subscribers).where(subscribers.c.id == row.id)
                             .values(**values))
                store.audit(conn, "login_ok", msisdn=number, gateway=gateway, at=now)
                return SignIn(PasswordStatus.OK, owner=Owner(number, self._devices(conn, number)))
            counters = lockout.after_wrong(_counters(row), now)
            _set_counters(conn, row.id, counters)
            if counters.locked_until is not None:
                store.audit(conn, "login_locked", msisdn=number, gateway=gateway, at=now,
                            detail=f"{counters.failed} wrong passwords; locked until "
                            f"{counters.locked_until.isoformat()}")
                return SignIn(PasswordStatus.LOCKED, locked_until=counters.locked_until)
            store.audit(conn, "login_failed", msisdn=number, gateway=gateway, at=now,
                        detail=f"wrong password {counters.failed} of {lockout.MAX_ATTEMPTS}")
            return SignIn(PasswordStatus.WRONG,
                          attempts_left=lockout.MAX_ATTEMPTS - counters.failed)

        return store.write(finish)
