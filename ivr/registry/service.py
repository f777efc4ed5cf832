"""The registry service: every operation the IVR (and the admin CLI) performs.

All mobile numbers given to these methods may be in any accepted form (09…, 9…, 989…, +989…);
they are normalised with ivr.registry.msisdn.normalize and stored as E.164 (+989…). Nothing here
logs or stores a password or activation code in clear: only peppered argon2id hashes
(ivr.registry.hashing), and the audit log's `detail` never holds a secret.

Transactions and concurrency
----------------------------
Every change an operation makes commits in ONE write transaction (SQLite: `BEGIN IMMEDIATE`;
PostgreSQL: the rows involved are locked with `SELECT … FOR UPDATE`). Argon2 is slow on purpose
(tens of milliseconds), and on SQLite a write transaction locks the whole database, so a secret is
never verified or hashed while a lock is held. An operation that checks a secret runs in three
steps:

1. a short write transaction checks the refusals, *counts the attempt* (so that parallel guesses
   cannot exceed the lockout limit, and an attempt counts even if the call drops while the hash is
   being checked) and takes a snapshot: the stored hash and the device `version`;
2. the secret is verified against the snapshot, with no transaction open;
3. one write transaction applies the result: the attempt counter is reset (right secret) or the
   lock engaged (third wrong one), and the real change is made with a guarded update
   `UPDATE devices … WHERE id = :id AND version = :seen`. A rowcount other than 1 means another
   call changed the device in between: the operation is refused with Refusal.CHANGED and nothing
   is written. Of two calls transferring the same device at once exactly one wins.

Generating or changing a code hashes the new one between a read snapshot and the same guarded
write. Operations that take `expected_version` (the version of the Device the caller chose from the
kartabl) are refused with CHANGED when the device is no longer at that version.

Lockouts
--------
Kartabl password: 3 wrong in a row lock the number; the lock lasts 15 minutes, then 1 hour, then
24 hours for each further lock (LOCK_STEPS) until a right password resets the ladder. An attempt
made while locked (even with the right PIN) answers LOCKED and is not verified. Because attempts
are counted before they are verified, at most 3 guesses are ever verified per lock period, however
many calls guess in parallel; a right secret among those 3 succeeds even if a parallel,
over-the-limit attempt engaged the lock meanwhile. Activation codes have the
same rule per device (CODE_LOCKED). A number the registry does not know answers NO_PASSWORD, like
a number without a password, so the IVR does not reveal which numbers exist.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, and_, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ivr.registry import validate
from ivr.registry.db import WRITE, check_schema, make_engine
from ivr.registry.errors import AlreadyExists, InvalidInput, NotFound
from ivr.registry.hashing import OWASP_MINIMUM, HashParams, SecretHasher
from ivr.registry.models import audit_log, calls, devices, subscribers, transfers
from ivr.registry.msisdn import normalize, try_normalize
from ivr.registry.types import (
    Device,
    ImeiStatus,
    Inquiry,
    Outcome,
    PasswordCheck,
    PasswordStatus,
    Refusal,
)

log = logging.getLogger(__name__)

GATEWAY_IVR = "ivr"
GATEWAY_ADMIN = "admin"  # the CLI, standing in for the web portal

MAX_ATTEMPTS = 3
LOCK_STEPS = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=24))
REFERENCE_DIGITS = 10
WRITE_RETRIES = 5
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock (PostgreSQL)

T = TypeVar("T")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def lock_duration(level: int) -> timedelta:
    """How long the (level+1)-th lock since the last success lasts."""
    return LOCK_STEPS[min(level, len(LOCK_STEPS) - 1)]


def new_code() -> str:
    """A fresh activation code: 8 random digits from the OS CSPRNG."""
    return f"{secrets.randbelow(10**validate.CODE_LEN):0{validate.CODE_LEN}d}"


def new_reference() -> str:
    return f"{secrets.randbelow(10**REFERENCE_DIGITS):0{REFERENCE_DIGITS}d}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class _Abort(Exception):
    """Roll the write transaction back and answer `result` instead."""

    def __init__(self, result: Any) -> None:
        super().__init__("aborted")
        self.result = result


@dataclass(frozen=True)
class _Attempt:
    """Step 1's snapshot: what step 2 verifies against and step 3 guards on."""

    row: Row[Any]
    hash: str


@dataclass(frozen=True)
class _Counters:
    """An attempt counter's state after applying one decision (column values to write)."""

    failed: int
    level: int
    locked_until: datetime | None


def _live_lock(locked_until: datetime | None, now: datetime) -> datetime | None:
    return locked_until if locked_until is not None and now < locked_until else None


def _reserve(failed: int, level: int, locked_until: datetime | None, now: datetime
             ) -> tuple[datetime | None, _Counters]:
    """Step 1 of a secret check: (lock in force or None, counters to write).

    An expired lock starts a fresh round of attempts; a round already used up (a crash between
    steps 1 and 3) locks now. Otherwise the attempt is counted before it is verified.
    """
    live = _live_lock(locked_until, now)
    if live is not None:
        return live, _Counters(failed, level, locked_until)
    if locked_until is not None:  # the lock ran out: a fresh round
        failed, locked_until = 0, None
    if failed >= MAX_ATTEMPTS:
        until = now + lock_duration(level)
        return until, _Counters(failed, level + 1, until)
    return None, _Counters(failed + 1, level, None)


class Registry:
    """Synchronous and thread-safe; the FastAGI server runs it through
    ivr.registry.aio.AsyncRegistry (worker threads), so hashing never blocks an event loop."""

    def __init__(self, engine: Engine, hasher: SecretHasher, *, clock: Clock | None = None
                 ) -> None:
        self.engine = engine
        self._writer = engine.execution_options(**WRITE)
        self.hasher = hasher
        self.clock: Clock = clock or utc_now
        self._postgres = engine.dialect.name == "postgresql"

    @classmethod
    def open(
        cls, url: str | None = None, *, pepper: bytes | None = None,
        hash_params: HashParams = OWASP_MINIMUM, clock: Clock | None = None,
        check: bool = True,
    ) -> Registry:
        """Connect (ivr.config.db_url/load_pepper when not given). Does not migrate: see
        ivr.registry.db.upgrade(url), which `hamta-ivr db upgrade` runs. With `check`, a database
        that is not at the latest migration raises SchemaNotReady naming the fix.
        `hash_params` below the OWASP minimum are for tests only."""
        from ivr.config import db_url, load_pepper

        engine = make_engine(db_url(url))
        try:
            if check:
                check_schema(engine)
            hasher = SecretHasher(pepper if pepper is not None else load_pepper(), hash_params)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, hasher, clock=clock)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions ---------------------------------------------------------------------------
    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the registry clock must return an aware UTC datetime")
        return now.astimezone(UTC)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction; retried on a PostgreSQL serialization failure or
        deadlock, or a transfer-reference collision. `work` raises _Abort to roll back."""
        for attempt in range(1, WRITE_RETRIES + 1):
            try:
                with self._writer.connect() as conn, conn.begin():
                    return work(conn)
            except _Abort as abort:
                return abort.result  # type: ignore[no-any-return]
            except DBAPIError as exc:
                if attempt < WRITE_RETRIES and _retryable(exc):
                    log.info("write transaction retried (%s)", type(exc.orig).__name__)
                    continue
                raise
        raise AssertionError("unreachable")

    def _audit(self, conn: Connection, event: str, *, msisdn: str | None = None,
               imei: str | None = None, gateway: str = GATEWAY_IVR, detail: str | None = None,
               at: datetime | None = None) -> None:
        conn.execute(insert(audit_log).values(
            at=at or self._now(), event=event, msisdn=msisdn, imei=imei, gateway=gateway,
            detail=detail,
        ))

    # --- rows -------------------------------------------------------------------------------------
    def _subscriber(self, conn: Connection, msisdn: str, *, lock: bool = False
                    ) -> Row[Any] | None:
        query = select(subscribers).where(subscribers.c.msisdn == msisdn)
        if lock:
            query = query.with_for_update()
        return conn.execute(query).first()

    def _device(self, conn: Connection, imei: str, *, lock: bool = False) -> Row[Any] | None:
        """The device with its owner's number as `owner`."""
        query = (
            select(devices, subscribers.c.msisdn.label("owner"))
            .outerjoin(subscribers, devices.c.owner_id == subscribers.c.id)
            .where(devices.c.imei == imei)
        )
        if lock:
            query = query.with_for_update(of=devices)
        return conn.execute(query).first()

    def _ensure_subscriber(self, conn: Connection, msisdn: str, now: datetime,
                           gateway: str) -> int:
        """The subscriber's id, creating a bare one (no password) for a number new to the
        registry, e.g. a buyer whose kartabl was empty until now."""
        row = self._subscriber(conn, msisdn)
        if row is not None:
            return int(row.id)
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(subscribers).values(**_new_subscriber(msisdn, now))
                         .on_conflict_do_nothing(index_elements=["msisdn"]))
        else:
            conn.execute(insert(subscribers).values(**_new_subscriber(msisdn, now)))
        self._audit(conn, "subscriber_added", msisdn=msisdn, gateway=gateway, at=now,
                    detail="first device in this kartabl")
        row = self._subscriber(conn, msisdn)
        assert row is not None
        return int(row.id)

    # --- administration (stands in for the web portal; used by the CLI, demo data, tests) ------
    def add_subscriber(
        self, msisdn: str, *, password: str | None = None, national_id: str | None = None
    ) -> None:
        """Raises InvalidInput (bad number/PIN/national ID) or AlreadyExists."""
        number = normalize(msisdn)
        nid = validate.national_id(national_id) if national_id is not None else None
        pin_hash = None
        if password is not None:
            pin_hash = self.hasher.hash("pin", number, validate.pin(password))
        now = self._now()

        def work(conn: Connection) -> None:
            if self._subscriber(conn, number, lock=True) is not None:
                raise AlreadyExists(f"{number} is already a subscriber")
            values = _new_subscriber(number, now)
            values.update(national_id=nid, password_hash=pin_hash,
                          password_changed_at=now if pin_hash else None)
            conn.execute(insert(subscribers).values(**values))
            self._audit(conn, "subscriber_added", msisdn=number, gateway=GATEWAY_ADMIN, at=now,
                        detail="with a kartabl password" if pin_hash else "no kartabl password")

        try:
            self._write(work)
        except IntegrityError as exc:  # added by someone else at the same moment
            raise AlreadyExists(f"{number} is already a subscriber") from exc

    def set_password(self, msisdn: str, pin: str) -> None:
        """Set (or replace) the kartabl password; also lifts a lock (the portal proved who it
        is). Raises InvalidInput or NotFound."""
        number = normalize(msisdn)
        pin_hash = self.hasher.hash("pin", number, validate.pin(pin))
        now = self._now()

        def work(conn: Connection) -> None:
            row = self._subscriber(conn, number, lock=True)
            if row is None:
                raise NotFound(f"{number} is not a subscriber; add it with "
                               "`hamta-ivr subscriber add`")
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                password_hash=pin_hash, password_changed_at=now, failed_attempts=0,
                lock_level=0, locked_until=None,
            ))
            self._audit(conn, "password_set", msisdn=number, gateway=GATEWAY_ADMIN, at=now)

        self._write(work)

    def add_device(
        self, imei: str, *, owner: str | None, brand: str, model: str,
        status: str = "registered", activation_code: str | None = None,
    ) -> None:
        """Register a device (the owner's kartabl entry is created if the number is new).
        Raises InvalidInput or AlreadyExists."""
        number = validate.imei(imei)
        owner_number = normalize(owner) if owner is not None else None
        validate.status(status)
        brand, model = (brand or "").strip(), (model or "").strip()
        if not brand or not model:
            raise InvalidInput("a device needs a brand and a model (e.g. Samsung, Galaxy A54)")
        code_hash = None
        if activation_code is not None:
            code_hash = self.hasher.hash("code", number, validate.code(activation_code))
        now = self._now()

        def work(conn: Connection) -> None:
            if self._device(conn, number) is not None:
                raise AlreadyExists(f"a device with IMEI {number} is already registered")
            owner_id = None
            if owner_number is not None:
                owner_id = self._ensure_subscriber(conn, owner_number, now, GATEWAY_ADMIN)
            conn.execute(insert(devices).values(
                imei=number, brand=brand, model=model, status=status, status_changed_at=now,
                owner_id=owner_id, owner_since=now if owner_id else None, code_hash=code_hash,
                code_changed_at=now if code_hash else None, code_failed_attempts=0,
                code_lock_level=0, code_locked_until=None, version=1, created_at=now,
            ))
            self._audit(conn, "device_added", msisdn=owner_number, imei=number,
                        gateway=GATEWAY_ADMIN, at=now,
                        detail=f"{status}, {'with' if code_hash else 'no'} activation code")

        try:
            self._write(work)
        except IntegrityError as exc:
            raise AlreadyExists(f"a device with IMEI {number} is already registered") from exc

    def set_device_status(self, imei: str, status: str) -> None:
        """Change a device's registry status (e.g. block a stolen phone). Bumps its version."""
        number, status = validate.imei(imei), validate.status(status)
        now = self._now()

        def work(conn: Connection) -> None:
            row = self._device(conn, number, lock=True)
            if row is None:
                raise NotFound(f"no device with IMEI {number}")
            conn.execute(update(devices).where(devices.c.id == row.id).values(
                status=status, status_changed_at=now, version=devices.c.version + 1))
            self._audit(conn, "status_changed", msisdn=row.owner, imei=number,
                        gateway=GATEWAY_ADMIN, at=now, detail=f"{row.status} -> {status}")

        self._write(work)

    def device_info(self, imei: str) -> dict | None:
        """JSON-ready: imei, owner, status, brand, model, has_activation_code, version, …"""
        number = validate.imei(imei)
        now = self._now()
        with self._reading() as conn:
            row = self._device(conn, number)
        if row is None:
            return None
        locked = _live_lock(row.code_locked_until, now)
        return {
            "imei": row.imei, "brand": row.brand, "model": row.model, "status": row.status,
            "owner": row.owner, "owner_since": _iso(row.owner_since),
            "has_activation_code": row.code_hash is not None,
            "code_changed_at": _iso(row.code_changed_at),
            "code_failed_attempts": row.code_failed_attempts if row.code_locked_until is None
            or locked else 0,
            "code_locked_until": _iso(locked),
            "status_changed_at": _iso(row.status_changed_at),
            "version": row.version, "created_at": _iso(row.created_at),
        }

    def subscriber_info(self, msisdn: str) -> dict | None:
        """JSON-ready: msisdn, has_password, failed_attempts, locked_until (None), …"""
        number = normalize(msisdn)
        now = self._now()
        with self._reading() as conn:
            row = self._subscriber(conn, number)
            if row is None:
                return None
            count = conn.execute(
                select(func.count()).select_from(devices).where(devices.c.owner_id == row.id)
            ).scalar_one()
        locked = _live_lock(row.locked_until, now)
        return {
            "msisdn": row.msisdn, "national_id": row.national_id,
            "has_password": row.password_hash is not None,
            "password_changed_at": _iso(row.password_changed_at),
            "failed_attempts": row.failed_attempts if row.locked_until is None or locked else 0,
            "locked_until": _iso(locked), "lock_level": row.lock_level,
            "devices": count, "created_at": _iso(row.created_at),
        }

    def transfers(self, *, imei: str | None = None, msisdn: str | None = None) -> list[dict]:
        """Oldest first; `msisdn` matches either side of a transfer."""
        query = select(transfers).order_by(transfers.c.at, transfers.c.id)
        if imei is not None:
            query = query.where(transfers.c.imei == validate.imei(imei))
        if msisdn is not None:
            number = normalize(msisdn)
            query = query.where(or_(transfers.c.from_msisdn == number,
                                    transfers.c.to_msisdn == number))
        with self._reading() as conn:
            rows = conn.execute(query).all()
        return [
            {"reference": r.reference, "imei": r.imei, "from_msisdn": r.from_msisdn,
             "to_msisdn": r.to_msisdn, "kind": r.kind, "gateway": r.gateway, "at": _iso(r.at)}
            for r in rows
        ]

    def audit(self, *, msisdn: str | None = None, imei: str | None = None,
              limit: int | None = None) -> list[dict]:
        """Oldest first (the last `limit` events when given)."""
        query = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        if msisdn is not None:
            query = query.where(audit_log.c.msisdn == normalize(msisdn))
        if imei is not None:
            query = query.where(audit_log.c.imei == validate.imei(imei))
        if limit is not None:
            query = query.limit(limit)
        with self._reading() as conn:
            rows = conn.execute(query).all()
        return [
            {"at": _iso(r.at), "event": r.event, "msisdn": r.msisdn, "imei": r.imei,
             "gateway": r.gateway, "detail": r.detail}
            for r in reversed(rows)
        ]

    def calls(self) -> list[dict]:
        """The call log, newest first: call_id, msisdn, channel, started, ended, path, outcome."""
        query = select(calls).order_by(calls.c.started.desc(), calls.c.id.desc())
        with self._reading() as conn:
            rows = conn.execute(query).all()
        return [
            {"call_id": r.call_id, "msisdn": r.msisdn, "channel": r.channel,
             "started": _iso(r.started), "ended": _iso(r.ended), "path": list(r.path or []),
             "outcome": r.outcome}
            for r in rows
        ]

    # --- queries -------------------------------------------------------------------------------
    def inquire_imei(self, imei: str) -> Inquiry:
        if not validate.is_imei(imei):
            return Inquiry(imei=imei, status=ImeiStatus.INVALID)
        with self._reading() as conn:
            row = conn.execute(select(devices.c.status, devices.c.brand, devices.c.model)
                               .where(devices.c.imei == imei)).first()
        if row is None:
            return Inquiry(imei=imei, status=ImeiStatus.UNKNOWN)
        return Inquiry(imei=imei, status=ImeiStatus(row.status), brand=row.brand,
                       model=row.model)

    def devices_of(self, msisdn: str) -> list[Device]:
        """The kartabl, oldest entry first (the order the IVR reads and numbers it)."""
        number = try_normalize(msisdn)
        if number is None:
            return []
        query = (
            select(devices)
            .join(subscribers, devices.c.owner_id == subscribers.c.id)
            .where(subscribers.c.msisdn == number)
            .order_by(devices.c.owner_since, devices.c.id)
        )
        with self._reading() as conn:
            return [_device(row) for row in conn.execute(query)]

    # --- kartabl password --------------------------------------------------------------------
    def check_password(self, msisdn: str, pin: str, gateway: str = GATEWAY_IVR) -> PasswordCheck:
        number = try_normalize(msisdn)
        if number is None:
            return PasswordCheck(PasswordStatus.NO_PASSWORD)

        def reserve(conn: Connection) -> PasswordCheck | _Attempt:
            now = self._now()
            row = self._subscriber(conn, number, lock=True)
            if row is None or row.password_hash is None:
                self._audit(conn, "login_no_password", msisdn=number, gateway=gateway, at=now,
                            detail=None if row else "unknown number")
                return PasswordCheck(PasswordStatus.NO_PASSWORD)
            lock, counters = _reserve(row.failed_attempts, row.lock_level, row.locked_until, now)
            self._set_pin_counters(conn, row.id, counters)
            if lock is not None:
                event = "login_locked" if counters.level > row.lock_level else "login_while_locked"
                self._audit(conn, event, msisdn=number, gateway=gateway, at=now,
                            detail=f"locked until {lock.isoformat()}")
                return PasswordCheck(PasswordStatus.LOCKED, locked_until=lock)
            return _Attempt(row, row.password_hash)

        first = self._write(reserve)
        if isinstance(first, PasswordCheck):
            return first
        right = validate.is_pin(pin) and self.hasher.verify(first.hash, "pin", number, pin)
        rehashed = None
        if right and self.hasher.needs_rehash(first.hash):  # costs raised since it was set
            rehashed = self.hasher.hash("pin", number, pin)

        def finish(conn: Connection) -> PasswordCheck:
            now = self._now()
            row = self._subscriber(conn, number, lock=True)
            if row is None or row.password_hash is None:
                return PasswordCheck(PasswordStatus.NO_PASSWORD)
            live = _live_lock(row.locked_until, now)
            if live is not None and not right:  # locked by a parallel attempt meanwhile
                return PasswordCheck(PasswordStatus.LOCKED, locked_until=live)
            if right and row.password_hash == first.hash:
                values: dict[str, Any] = {"failed_attempts": 0, "lock_level": 0,
                                          "locked_until": None}
                if rehashed:
                    values["password_hash"] = rehashed
                conn.execute(update(subscribers).where(subscribers.c.id == row.id)
                             .values(**values))
                self._audit(conn, "login_ok", msisdn=number, gateway=gateway, at=now)
                return PasswordCheck(PasswordStatus.OK)
            # wrong (or the password was replaced meanwhile: not verified, counts as wrong)
            failed = max(row.failed_attempts, 1)
            if failed >= MAX_ATTEMPTS:
                until = now + lock_duration(row.lock_level)
                self._set_pin_counters(conn, row.id, _Counters(failed, row.lock_level + 1, until))
                self._audit(conn, "login_locked", msisdn=number, gateway=gateway, at=now,
                            detail=f"{failed} wrong passwords; locked until {until.isoformat()}")
                return PasswordCheck(PasswordStatus.LOCKED, locked_until=until)
            self._audit(conn, "login_failed", msisdn=number, gateway=gateway, at=now,
                        detail=f"wrong password {failed} of {MAX_ATTEMPTS}")
            return PasswordCheck(PasswordStatus.WRONG, attempts_left=MAX_ATTEMPTS - failed)

        return self._write(finish)

    @staticmethod
    def _set_pin_counters(conn: Connection, row_id: int, counters: _Counters) -> None:
        conn.execute(update(subscribers).where(subscribers.c.id == row_id).values(
            failed_attempts=counters.failed, lock_level=counters.level,
            locked_until=counters.locked_until,
        ))

    # --- activation codes: the shared three steps -----------------------------------------------
    def _refusal(self, conn: Connection, op: str, refusal: Refusal, *, imei: str,
                 msisdn: str | None, gateway: str, row: Row[Any] | None = None,
                 **extra: Any) -> Outcome:
        """Audit a refusal and build its Outcome (with the device, when it is known)."""
        self._audit(conn, "refused", msisdn=msisdn, imei=imei, gateway=gateway,
                    detail=f"{op}: {refusal.value}")
        return Outcome(refusal=refusal, device=_device(row) if row is not None else None,
                       **extra)

    @staticmethod
    def _precheck(row: Row[Any] | None, *, owner: str | None = None, buyer: str | None = None,
                  expected_version: int | None = None) -> Refusal | None:
        """The refusals a device can earn before its code is looked at, in the order a caller
        should hear them."""
        if row is None:
            return Refusal.UNKNOWN_DEVICE
        if expected_version is not None and row.version != expected_version:
            return Refusal.CHANGED
        if owner is not None and row.owner != owner:
            return Refusal.NOT_OWNER
        if row.status == ImeiStatus.BLOCKED:
            return Refusal.BLOCKED
        if row.status != ImeiStatus.REGISTERED:
            return Refusal.NOT_REGISTERED
        if buyer is not None and row.owner == buyer:
            return Refusal.BUYER_IS_OWNER
        return None

    def _code_attempt(self, op: str, imei: str, *, actor: str | None, owner: str | None = None,
                      buyer: str | None = None, expected_version: int | None = None,
                      gateway: str) -> Outcome | _Attempt:
        """Step 1: refusals, the device's code lock, count the attempt, snapshot."""

        def work(conn: Connection) -> Outcome | _Attempt:
            now = self._now()
            row = self._device(conn, imei, lock=True)
            refusal = self._precheck(row, owner=owner, buyer=buyer,
                                     expected_version=expected_version)
            if refusal is None and row is not None and row.code_hash is None:
                refusal = Refusal.NO_CODE
            if refusal is not None:
                return self._refusal(conn, op, refusal, imei=imei, msisdn=actor,
                                     gateway=gateway, row=row)
            assert row is not None
            lock, counters = _reserve(row.code_failed_attempts, row.code_lock_level,
                                      row.code_locked_until, now)
            self._set_code_counters(conn, row.id, counters)
            if lock is not None:
                event = "code_locked" if counters.level > row.code_lock_level else "refused"
                self._audit(conn, event, msisdn=actor, imei=imei, gateway=gateway, at=now,
                            detail=f"{op}: code_locked until {lock.isoformat()}")
                return Outcome(refusal=Refusal.CODE_LOCKED, locked_until=lock,
                               device=_device(row))
            return _Attempt(row, row.code_hash)

        return self._write(work)

    def _code_wrong(self, conn: Connection, op: str, row: Row[Any], *, actor: str | None,
                    gateway: str) -> Outcome:
        """Step 3 for a wrong code: the attempt is already counted; lock on the third."""
        now = self._now()
        failed = max(row.code_failed_attempts, 1)
        if failed >= MAX_ATTEMPTS:
            until = now + lock_duration(row.code_lock_level)
            self._set_code_counters(conn, row.id, _Counters(failed, row.code_lock_level + 1,
                                                            until))
            self._audit(conn, "code_locked", msisdn=actor, imei=row.imei, gateway=gateway,
                        at=now, detail=f"{op}: {failed} wrong codes; locked until "
                        f"{until.isoformat()}")
            return Outcome(refusal=Refusal.CODE_LOCKED, locked_until=until, device=_device(row))
        self._audit(conn, "code_failed", msisdn=actor, imei=row.imei, gateway=gateway, at=now,
                    detail=f"{op}: wrong code {failed} of {MAX_ATTEMPTS}")
        return Outcome(refusal=Refusal.WRONG_CODE, attempts_left=MAX_ATTEMPTS - failed,
                       device=_device(row))

    def _code_verified(self, attempt: _Attempt, imei: str, code: str) -> bool:
        """Step 2: no transaction open."""
        return validate.is_code(code) and self.hasher.verify(attempt.hash, "code", imei, code)

    def _code_unchanged(self, conn: Connection, op: str, attempt: _Attempt, right: bool, *,
                        actor: str | None, gateway: str) -> Row[Any] | Outcome:
        """Step 3 starts here: the device (locked) if it is still the one the snapshot saw;
        otherwise the refusal. A wrong code finds the lock a parallel attempt engaged meanwhile;
        a right one was among the allowed guesses (step 1 counted it) and goes ahead."""
        row = self._device(conn, attempt.row.imei, lock=True)
        if row is None or row.version != attempt.row.version or row.code_hash != attempt.hash:
            return self._refusal(conn, op, Refusal.CHANGED, imei=attempt.row.imei,
                                 msisdn=actor, gateway=gateway, row=row)
        live = _live_lock(row.code_locked_until, self._now())
        if live is not None and not right:
            return Outcome(refusal=Refusal.CODE_LOCKED, locked_until=live, device=_device(row))
        return row

    @staticmethod
    def _set_code_counters(conn: Connection, row_id: int, counters: _Counters) -> None:
        conn.execute(update(devices).where(devices.c.id == row_id).values(
            code_failed_attempts=counters.failed, code_lock_level=counters.level,
            code_locked_until=counters.locked_until,
        ))

    # --- activation codes --------------------------------------------------------------------
    def check_activation_code(
        self, imei: str, code: str, *, owner: str | None = None, gateway: str = GATEWAY_IVR
    ) -> Outcome:
        """Verify a device's code (counts toward the device's lockout). With `owner`, also
        refuses NOT_OWNER. Used to tell the caller early, before the final confirmation."""
        if not validate.is_imei(imei):
            return Outcome(refusal=Refusal.INVALID_IMEI)
        owner_number = try_normalize(owner) if owner is not None else None
        if owner is not None and owner_number is None:
            return Outcome(refusal=Refusal.NOT_OWNER)
        op = "check_code"
        attempt = self._code_attempt(op, imei, actor=owner_number, owner=owner_number,
                                     gateway=gateway)
        if isinstance(attempt, Outcome):
            return attempt
        right = self._code_verified(attempt, imei, code)

        def finish(conn: Connection) -> Outcome:
            row = self._code_unchanged(conn, op, attempt, right, actor=owner_number,
                                       gateway=gateway)
            if isinstance(row, Outcome):
                return row
            if not right:
                return self._code_wrong(conn, op, row, actor=owner_number, gateway=gateway)
            self._set_code_counters(conn, row.id, _Counters(0, 0, None))
            self._audit(conn, "code_ok", msisdn=owner_number, imei=imei, gateway=gateway)
            return Outcome(device=_device(row))

        return self._write(finish)

    def generate_activation_code(
        self, owner: str, imei: str, *, expected_version: int | None = None,
        gateway: str = GATEWAY_IVR,
    ) -> Outcome:
        """A fresh random 8-digit code in Outcome.code; the old one stops working."""
        code = new_code()
        outcome = self._replace_code(owner, imei, code, expected_version=expected_version,
                                     gateway=gateway, op="generate_code")
        return Outcome(device=outcome.device, code=code) if outcome.ok else outcome

    def change_activation_code(
        self, owner: str, imei: str, new_code: str, *, expected_version: int | None = None,
        gateway: str = GATEWAY_IVR,
    ) -> Outcome:
        """The owner sets a code of their choosing (8 digits); the old one stops working."""
        if not validate.is_code(new_code):
            return Outcome(refusal=Refusal.INVALID_CODE)
        return self._replace_code(owner, imei, new_code, expected_version=expected_version,
                                  gateway=gateway, op="change_code")

    def _replace_code(self, owner: str, imei: str, code: str, *, expected_version: int | None,
                      gateway: str, op: str) -> Outcome:
        """Snapshot, hash (no lock held), then the guarded write. Resets the code lockout: the
        new code is one nobody has been guessing."""
        if not validate.is_imei(imei):
            return Outcome(refusal=Refusal.INVALID_IMEI)
        owner_number = try_normalize(owner)
        if owner_number is None:
            return Outcome(refusal=Refusal.NOT_OWNER)
        with self._reading() as conn:
            seen = self._device(conn, imei)
        refusal = self._precheck(seen, owner=owner_number, expected_version=expected_version)
        code_hash = self.hasher.hash("code", imei, code) if refusal is None else None

        def work(conn: Connection) -> Outcome:
            now = self._now()
            row = self._device(conn, imei, lock=True)
            found = refusal or self._precheck(row, owner=owner_number,
                                              expected_version=expected_version)
            if found is not None:
                return self._refusal(conn, op, found, imei=imei, msisdn=owner_number,
                                     gateway=gateway, row=row)
            assert row is not None
            done = conn.execute(
                update(devices)
                .where(and_(devices.c.id == row.id, devices.c.version == row.version))
                .values(code_hash=code_hash, code_changed_at=now, code_failed_attempts=0,
                        code_lock_level=0, code_locked_until=None,
                        version=devices.c.version + 1)
            ).rowcount
            if done != 1:
                raise _Abort(Outcome(refusal=Refusal.CHANGED, device=_device(row)))
            event = "code_generated" if op == "generate_code" else "code_changed"
            self._audit(conn, event, msisdn=owner_number, imei=imei, gateway=gateway, at=now)
            return Outcome(device=_device(row, version=row.version + 1))

        return self._write(work)

    # --- ownership -----------------------------------------------------------------------------
    def transfer_direct(
        self, owner: str, imei: str, code: str, buyer: str, *,
        expected_version: int | None = None, gateway: str = GATEWAY_IVR,
    ) -> Outcome:
        """Seller moves the device to the buyer. Outcome.reference is the transfer reference."""
        if not validate.is_imei(imei):
            return Outcome(refusal=Refusal.INVALID_IMEI)
        owner_number = try_normalize(owner)
        if owner_number is None:
            return Outcome(refusal=Refusal.NOT_OWNER)
        buyer_number = try_normalize(buyer)
        if buyer_number is None:
            return Outcome(refusal=Refusal.BUYER_INVALID)
        return self._move(
            "transfer_direct", "direct", imei, code, buyer_number, actor=owner_number,
            owner=owner_number, expected_version=expected_version, gateway=gateway,
        )

    def activate(self, buyer: str, imei: str, code: str, *, gateway: str = GATEWAY_IVR) -> Outcome:
        """The buyer takes the device over with its code (indirect sale)."""
        if not buyer:
            return Outcome(refusal=Refusal.NO_CALLER_ID)
        buyer_number = try_normalize(buyer)
        if buyer_number is None:
            return Outcome(refusal=Refusal.BUYER_INVALID)
        if not validate.is_imei(imei):
            return Outcome(refusal=Refusal.INVALID_IMEI)
        return self._move("activate", "activation", imei, code, buyer_number,
                          actor=buyer_number, gateway=gateway)

    def _move(self, op: str, kind: str, imei: str, code: str, buyer: str, *, actor: str,
              owner: str | None = None, expected_version: int | None = None,
              gateway: str) -> Outcome:
        """Ownership to `buyer`, in the three steps the module docstring describes."""
        attempt = self._code_attempt(op, imei, actor=actor, owner=owner, buyer=buyer,
                                     expected_version=expected_version, gateway=gateway)
        if isinstance(attempt, Outcome):
            return attempt
        right = self._code_verified(attempt, imei, code)

        def finish(conn: Connection) -> Outcome:
            row = self._code_unchanged(conn, op, attempt, right, actor=actor, gateway=gateway)
            if isinstance(row, Outcome):
                return row
            if not right:
                return self._code_wrong(conn, op, row, actor=actor, gateway=gateway)
            now = self._now()
            buyer_id = self._ensure_subscriber(conn, buyer, now, gateway)
            done = conn.execute(
                update(devices)
                .where(and_(devices.c.id == row.id, devices.c.version == attempt.row.version))
                .values(owner_id=buyer_id, owner_since=now, code_hash=None, code_changed_at=now,
                        code_failed_attempts=0, code_lock_level=0, code_locked_until=None,
                        version=devices.c.version + 1)
            ).rowcount
            if done != 1:
                raise _Abort(Outcome(refusal=Refusal.CHANGED, device=_device(row)))
            reference = self._unused_reference(conn)
            conn.execute(insert(transfers).values(
                reference=reference, device_id=row.id, imei=imei, from_msisdn=row.owner,
                to_msisdn=buyer, kind=kind, gateway=gateway, at=now,
            ))
            self._audit(conn, "transfer" if kind == "direct" else "activation", msisdn=actor,
                        imei=imei, gateway=gateway, at=now,
                        detail=f"{row.owner or 'no owner'} -> {buyer}, reference {reference}")
            return Outcome(reference=reference, device=_device(row, version=row.version + 1))

        return self._write(finish)

    @staticmethod
    def _unused_reference(conn: Connection) -> str:
        """A random reference not yet used (a parallel duplicate trips the unique constraint,
        and _write retries)."""
        while True:
            reference = new_reference()
            taken = conn.execute(select(transfers.c.id).where(transfers.c.reference == reference))
            if taken.first() is None:
                return reference

    # --- call log ------------------------------------------------------------------------------
    def call_started(self, call_id: str, msisdn: str | None, channel: str, at: datetime) -> None:
        number = try_normalize(msisdn)

        def work(conn: Connection) -> None:
            found = conn.execute(select(calls.c.id).where(calls.c.call_id == call_id)).first()
            if found is None:
                conn.execute(insert(calls).values(call_id=call_id, msisdn=number,
                                                  channel=channel, started=at, path=[]))
            else:
                conn.execute(update(calls).where(calls.c.id == found.id)
                             .values(msisdn=number, channel=channel, started=at))

        self._write(work)

    def call_ended(self, call_id: str, path: list[str], outcome: str, at: datetime) -> None:
        def work(conn: Connection) -> None:
            done = conn.execute(update(calls).where(calls.c.call_id == call_id)
                                .values(path=list(path), outcome=outcome, ended=at)).rowcount
            if done == 0:  # the start was never logged (e.g. the database was down then)
                conn.execute(insert(calls).values(call_id=call_id, msisdn=None, channel="",
                                                  started=at, ended=at, path=list(path),
                                                  outcome=outcome))

        self._write(work)


def _new_subscriber(msisdn: str, now: datetime) -> dict[str, Any]:
    return {"msisdn": msisdn, "national_id": None, "password_hash": None,
            "password_changed_at": None, "failed_attempts": 0, "lock_level": 0,
            "locked_until": None, "created_at": now}


def _device(row: Row[Any], *, version: int | None = None) -> Device:
    return Device(imei=row.imei, brand=row.brand, model=row.model,
                  status=ImeiStatus(row.status), version=version or row.version)


def _retryable(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if state in RETRYABLE_SQLSTATES:
        return True
    return isinstance(exc, IntegrityError) and "reference" in str(exc.orig)
