"""Kartabl sign-in: the door before the PIN, the PIN verified once, the password lockouts and the
throttles that stop one line from trying many numbers.

`door(msisdn, origin)` answers before anything is keyed: no password (set one on the web portal
first), locked (until when), throttled (this line or call tried too many numbers), or ask for the
PIN. `sign_in(msisdn, pin, origin)` verifies the PIN exactly once and, when it is right, answers
the owner with the kartabl's devices: everything the next prompt needs.

Who asks decides which ladder counts (ivr.registry.lockout): a PIN keyed from the number's own
line *as the network vouches for it* (Origin.own_line) counts on its own ladder, one keyed from
any other line — a forged or unvouched caller ID included — on the other lines' ladder, so a
stranger's wrong guesses never lock the owner out of their own phone, nor add a second ladder.
Other lines must show the SIM first (SIM_FIRST: an SMS code, ivr.registry.sim_codes, before the
PIN is verified) once failed other-line sign-ins have spent the registry's budget, or once a
withheld or unvouched caller ID has tried too many numbers. Every attempt's audit row names the
calling line and the call.

A PIN is checked in three steps so that argon2 never runs while a transaction is open:
1. a short write transaction refuses a locked or throttled attempt, *counts the attempt* and
   takes a snapshot of the stored hash;
2. the PIN is verified against the snapshot, with no transaction open;
3. one write transaction resets the ladder (right PIN; the hash is upgraded to new argon2 costs if
   they were raised) or engages the lock on the third wrong one, and reads the kartabl. A PIN
   verified against a password the portal has replaced meanwhile counts as wrong.
A number the registry does not know answers NO_PASSWORD, like a number without a password, so the
IVR does not reveal which numbers exist.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from ivr.registry import lockout, observe, outbox, validate
from ivr.registry.lockout import OTHER_LINES, OWN_LINE, Scope
from ivr.registry.msisdn import try_normalize
from ivr.registry.store import GATEWAY_IVR, Store, as_device
from ivr.registry.tables import audit_log, devices, subscribers
from ivr.registry.types import ADMIN, Device, Origin, Owner, PasswordStatus, SignIn, SimProof

log = logging.getLogger(__name__)

ATTEMPT_EVENTS = ("login_ok", "login_failed", "login_locked", "login_while_locked")
FAILED_EVENTS = ("login_failed", "login_locked")


def scope_of(number: str, origin: Origin) -> Scope:
    """The number's own ladder only for its own line as the network vouches for it: a forged
    caller ID is one more other line, so it can neither add guesses nor lock the owner out."""
    return OWN_LINE if origin.own_line(number) else OTHER_LINES


class SprayAlarm:
    """Failed sign-ins across the whole registry: counted (for metrics), and one warning a minute
    while more than SPRAY_ALERT fail per SPRAY_WINDOW — a PIN-spraying wave is visible."""

    def __init__(self) -> None:
        self.failed = 0
        self._warned = 0.0
        self._lock = threading.Lock()

    def failure(self, conn: Connection, now: datetime) -> None:
        with self._lock:
            self.failed += 1
            if time.monotonic() - self._warned < lockout.SPRAY_WINDOW.total_seconds():
                return
        since = now - lockout.SPRAY_WINDOW
        count, numbers, lines = conn.execute(
            select(func.count(), func.count(func.distinct(audit_log.c.msisdn)),
                   func.count(func.distinct(audit_log.c.caller)))
            .where(audit_log.c.event.in_(FAILED_EVENTS), audit_log.c.at >= since)).one()
        if count >= lockout.SPRAY_ALERT:
            with self._lock:
                self._warned = time.monotonic()
            log.warning("possible PIN spraying: %d failed sign-ins in the last %ds, on %d "
                        "numbers, from %d calling lines", count,
                        lockout.SPRAY_WINDOW.total_seconds(), numbers, lines)


class Kartabl:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.alarm = SprayAlarm()

    def door(self, msisdn: str, origin: Origin = ADMIN) -> SignIn:
        """Before the PIN: ASK, NO_PASSWORD, LOCKED (with until when), THROTTLED or SIM_FIRST
        (an SMS code to the number before the PIN). Writes nothing."""
        number = try_normalize(msisdn)
        if number is None:
            return SignIn(PasswordStatus.NO_PASSWORD)
        with self.store.reading() as conn:
            row = self.store.subscriber(conn, number)
            if row is None or row.password_hash is None:
                return SignIn(PasswordStatus.NO_PASSWORD)
            gate = self._gate(conn, number, origin)
        if gate is PasswordStatus.THROTTLED:
            return SignIn(gate)
        locked = lockout.live_lock(scope_of(number, origin).read(row).locked_until,
                                   self.store.now())
        if locked is not None:
            return SignIn(PasswordStatus.LOCKED, locked_until=locked)
        return SignIn(gate or PasswordStatus.ASK)

    def _gate(self, conn: Connection, number: str, origin: Origin) -> PasswordStatus | None:
        """What stands before this PIN attempt besides the lock: THROTTLED (this call, or this
        vouched line, tried the PINs of too many numbers), SIM_FIRST (a caller not on the
        number's own vouched line while the registry's failed-sign-in budget is spent, or a
        withheld or unvouched caller ID that tried too many numbers: a forged or shared caller
        ID is refused nothing an owner with the SIM needs), or None."""
        if origin == ADMIN:
            return None
        since = self.store.now() - lockout.THROTTLE_WINDOW
        if origin.call_id is not None and self.store.targets_tried(
                conn, events=ATTEMPT_EVENTS, column="msisdn", origin=origin, since=since,
                by_call=True, besides=(number,)) >= lockout.CALL_NUMBERS:
            return PasswordStatus.THROTTLED
        if origin.own_line(number):
            return None
        if self._budget_spent(conn):
            return PasswordStatus.SIM_FIRST
        cap = lockout.LINE_NUMBERS if origin.caller else lockout.WITHHELD_NUMBERS
        if self.store.targets_tried(conn, events=ATTEMPT_EVENTS, column="msisdn",
                                    origin=origin, since=since,
                                    besides=(number, origin.caller)) < cap:
            return None
        return PasswordStatus.THROTTLED if origin.vouched else PasswordStatus.SIM_FIRST

    def _budget_spent(self, conn: Connection) -> bool:
        """Have failed other-line sign-ins spent the registry's budget (lockout.FAILURE_BUDGET
        within FAILURE_WINDOW)?"""
        since = self.store.now() - lockout.FAILURE_WINDOW
        failed = conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.at >= since, audit_log.c.event.in_(FAILED_EVENTS),
            audit_log.c.detail.like(f"{OTHER_LINES.name}:%"))).scalar_one()
        return int(failed) >= lockout.FAILURE_BUDGET

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

    def sign_in(self, msisdn: str, pin: str, origin: Origin = ADMIN,
                gateway: str = GATEWAY_IVR, proof: SimProof | None = None) -> SignIn:
        """Verify the kartabl password once; OK carries the owner and the kartabl. `proof`: the
        SMS code keyed on this call (ivr.registry.sim_codes), needed when the door says
        SIM_FIRST. The owner holds the SIM (Owner.sim) on the number's own vouched line, with a
        proof, or through the portal (ADMIN, which signs in with its own SMS code)."""
        store = self.store
        number = try_normalize(msisdn)
        if number is None:
            return SignIn(PasswordStatus.NO_PASSWORD)
        scope = scope_of(number, origin)
        proven = proof is not None and proof.msisdn == number and proof.call_id == origin.call_id
        sim = proven or origin.own_line(number) or origin == ADMIN

        events: list[str] = []  # the committed transaction's audit events, for the metrics

        def audit(conn: Connection, event: str, now: datetime, detail: str | None = None) -> None:
            events.append(event)
            store.audit(conn, event, msisdn=number, gateway=gateway, at=now, origin=origin,
                        detail=f"{scope.name}: {detail}" if detail else scope.name)

        def reserve(conn: Connection) -> SignIn | tuple[str, datetime | None]:
            events.clear()  # a retried transaction starts again
            now = store.now()
            row = store.subscriber(conn, number, lock=True)
            if row is None or row.password_hash is None:
                audit(conn, "login_no_password", now, None if row else "unknown number")
                return SignIn(PasswordStatus.NO_PASSWORD)
            gate = self._gate(conn, number, origin)
            if gate is PasswordStatus.THROTTLED:
                audit(conn, "login_throttled", now, "too many numbers from this line or call")
                return SignIn(PasswordStatus.THROTTLED)
            if gate is PasswordStatus.SIM_FIRST and not proven:
                audit(conn, "login_sim_first", now, "an SMS code before the PIN")
                return SignIn(PasswordStatus.SIM_FIRST)
            before = scope.read(row)
            lock, counters = lockout.reserve(before, now)
            conn.execute(update(subscribers).where(subscribers.c.id == row.id)
                         .values(**scope.values(counters)))
            if lock is not None:
                event = "login_locked" if counters.level > before.level else "login_while_locked"
                audit(conn, event, now, f"locked until {lock.isoformat()}")
                if event == "login_locked":
                    outbox.locked(conn, number, "sms_login_locked", until=lock, at=now,
                                  origin=origin)
                return SignIn(PasswordStatus.LOCKED, locked_until=lock)
            return str(row.password_hash), row.password_changed_at

        first = store.write(reserve)
        _count(events, verified=False)
        if isinstance(first, SignIn):
            return first
        seen, seen_changed_at = first
        right = validate.is_pin(pin) and store.hasher.verify(seen, "pin", number, pin)
        rehashed = None
        if right and store.hasher.needs_rehash(seen):  # costs raised since it was set
            rehashed = store.hasher.hash("pin", number, pin)

        def finish(conn: Connection) -> SignIn:
            events.clear()
            now = store.now()
            row = store.subscriber(conn, number, lock=True)
            if row is None or row.password_hash is None:
                return SignIn(PasswordStatus.NO_PASSWORD)
            live = lockout.live_lock(scope.read(row).locked_until, now)
            if live is not None and not right:  # locked by a parallel attempt meanwhile
                return SignIn(PasswordStatus.LOCKED, locked_until=live)
            # right against the password of step 1; the portal may have replaced it since (a rehash
            # by a parallel sign-in keeps password_changed_at, so it does not refuse a right PIN)
            if right and row.password_changed_at == seen_changed_at:
                values: dict[str, Any] = scope.values(lockout.CLEARED)
                if rehashed and row.password_hash == seen:  # not upgraded by a parallel sign-in
                    values["password_hash"] = rehashed
                conn.execute(update(subscribers).where(subscribers.c.id == row.id)
                             .values(**values))
                audit(conn, "login_ok", now)
                return SignIn(PasswordStatus.OK,
                              owner=Owner(number, self._devices(conn, number), sim=sim))
            counters = lockout.after_wrong(scope.read(row), now)
            conn.execute(update(subscribers).where(subscribers.c.id == row.id)
                         .values(**scope.values(counters)))
            self.alarm.failure(conn, now)
            if counters.locked_until is not None:
                audit(conn, "login_locked", now, f"{counters.failed} wrong passwords; locked "
                      f"until {counters.locked_until.isoformat()}")
                outbox.locked(conn, number, "sms_login_locked", until=counters.locked_until,
                              at=now, origin=origin)
                return SignIn(PasswordStatus.LOCKED, locked_until=counters.locked_until)
            audit(conn, "login_failed", now,
                  f"wrong password {counters.failed} of {lockout.MAX_ATTEMPTS}")
            return SignIn(PasswordStatus.WRONG,
                          attempts_left=lockout.MAX_ATTEMPTS - counters.failed)

        answer = store.write(finish)
        _count(events, verified=True)
        return answer


def _count(events: list[str], *, verified: bool) -> None:
    """The metrics of a committed sign-in transaction: wrong PINs (the spraying signal; only the
    transaction after the PIN was `verified` has them) and locks engaged."""
    for event in events:
        if verified and event in FAILED_EVENTS:
            observe.sign_in_failed()
        if event == "login_locked":
            observe.lockouts("pin", 1)
