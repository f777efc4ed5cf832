"""How every registry module touches the database: one write transaction per change, reads, the
audit log, and the rows the modules share (a subscriber, a device with its owner's number).

Every change commits in ONE write transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the rows
involved are locked with `SELECT … FOR UPDATE`), retried on a PostgreSQL serialization failure or
deadlock. Argon2 is slow on purpose and on SQLite a write transaction locks the whole database, so
no module hashes or verifies a secret while a transaction is open (see ivr.registry.devices).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, Engine, Row, func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from ivr.registry.db import WRITE
from ivr.registry.hashing import SecretHasher
from ivr.registry.lockout import live_lock
from ivr.registry.tables import audit_log, devices, subscribers
from ivr.registry.types import ADMIN, Device, ImeiStatus, Origin, Reported
from ivr.registry.validate import REFERENCE_LEN

log = logging.getLogger(__name__)

GATEWAY_IVR = "ivr"
GATEWAY_ADMIN = "admin"  # the CLI, standing in for the web portal
WRITE_RETRIES = 5
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock (PostgreSQL)
# unique random numbers (Store.unused_number): a parallel duplicate is retried, not an error
RANDOM_NUMBER_COLUMNS = ("reference", "case_number")

T = TypeVar("T")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Abort(Exception):
    """Raised inside a write: roll the transaction back and answer `result` instead."""

    def __init__(self, result: Any) -> None:
        super().__init__("aborted")
        self.result = result


class Store:
    """The engine, the clock and the hasher every registry module shares. Thread-safe."""

    def __init__(self, engine: Engine, hasher: SecretHasher, clock: Clock | None = None) -> None:
        self.engine = engine
        self.hasher = hasher
        self.clock: Clock = clock or utc_now
        self.postgres = engine.dialect.name == "postgresql"
        self._writer = engine.execution_options(**WRITE)

    def now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the registry clock must return an aware UTC datetime")
        return now.astimezone(UTC)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction; `work` raises Abort to roll back and answer."""
        for attempt in range(1, WRITE_RETRIES + 1):
            try:
                with self._writer.connect() as conn, conn.begin():
                    return work(conn)
            except Abort as abort:
                return abort.result  # type: ignore[no-any-return]
            except DBAPIError as exc:
                if attempt < WRITE_RETRIES and _retryable(exc):
                    log.info("write transaction retried (%s)", type(exc.orig).__name__)
                    continue
                raise
        raise AssertionError("unreachable")

    def audit(self, conn: Connection, event: str, *, msisdn: str | None = None,
              imei: str | None = None, gateway: str = GATEWAY_IVR, detail: str | None = None,
              at: datetime | None = None, origin: Origin = ADMIN) -> None:
        conn.execute(insert(audit_log).values(
            at=at or self.now(), event=event, msisdn=msisdn, imei=imei, gateway=gateway,
            detail=detail, caller=origin.caller, call_id=bounded(origin.call_id, 64),
        ))

    @staticmethod
    def targets_tried(conn: Connection, *, events: tuple[str, ...], column: str,
                      origin: Origin, since: datetime, by_call: bool = False,
                      besides: tuple[str | None, ...] = ()) -> int:
        """How many distinct numbers or IMEIs (`column`) the origin's line — or, `by_call`,
        its call — has tried a secret on since `since`, `besides` these, from the audit log."""
        subject = audit_log.c[column]
        who = (audit_log.c.call_id == bounded(origin.call_id, 64) if by_call
               else audit_log.c.caller == origin.caller if origin.caller is not None
               else audit_log.c.caller.is_(None))
        query = select(func.count(func.distinct(subject))).where(
            who, audit_log.c.event.in_(events), audit_log.c.at >= since, subject.is_not(None))
        excluded = [b for b in besides if b is not None]
        if excluded:
            query = query.where(subject.not_in(excluded))
        return int(conn.execute(query).scalar_one())

    @staticmethod
    def unused_number(conn: Connection, column: Column[str]) -> str:
        """A random REFERENCE_LEN-digit number (OS CSPRNG) not yet in the unique `column`: a
        transfer's reference, a report's case number. A parallel duplicate trips the unique
        constraint and `write` retries (RANDOM_NUMBER_COLUMNS)."""
        while True:
            number = f"{secrets.randbelow(10**REFERENCE_LEN):0{REFERENCE_LEN}d}"
            if conn.execute(select(column).where(column == number)).first() is None:
                return number

    # --- shared rows ----------------------------------------------------------------------------
    @staticmethod
    def subscriber(conn: Connection, msisdn: str, *, lock: bool = False) -> Row[Any] | None:
        query = select(subscribers).where(subscribers.c.msisdn == msisdn)
        if lock:
            query = query.with_for_update()
        return conn.execute(query).first()

    @staticmethod
    def device(conn: Connection, imei: str, *, lock: bool = False) -> Row[Any] | None:
        """The device row with its owner's number as `owner`."""
        query = (
            select(devices, subscribers.c.msisdn.label("owner"))
            .outerjoin(subscribers, devices.c.owner_id == subscribers.c.id)
            .where(devices.c.imei == imei)
        )
        if lock:
            query = query.with_for_update(of=devices)
        return conn.execute(query).first()

    def ensure_subscriber(self, conn: Connection, msisdn: str, now: datetime,
                          gateway: str) -> int:
        """The subscriber's id, creating a bare one (no password) for a number new to the
        registry, e.g. a buyer whose kartabl was empty until now."""
        row = self.subscriber(conn, msisdn)
        if row is not None:
            return int(row.id)
        if self.postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(subscribers).values(**new_subscriber(msisdn, now))
                         .on_conflict_do_nothing(index_elements=["msisdn"]))
        else:
            conn.execute(insert(subscribers).values(**new_subscriber(msisdn, now)))
        self.audit(conn, "subscriber_added", msisdn=msisdn, gateway=gateway, at=now,
                   detail="first device in this kartabl")
        row = self.subscriber(conn, msisdn)
        assert row is not None
        return int(row.id)


def bounded(text: str | None, limit: int) -> str | None:
    """A value from outside (an AGI unique id, a channel name) cut to its column's size."""
    return text if text is None else text[:limit]


def new_subscriber(msisdn: str, now: datetime) -> dict[str, Any]:
    return {"msisdn": msisdn, "national_id": None, "password_hash": None,
            "password_changed_at": None, "failed_attempts": 0, "lock_level": 0,
            "locked_until": None, "others_failed_attempts": 0, "others_lock_level": 0,
            "others_locked_until": None, "created_at": now}


def as_device(row: Row[Any], now: datetime, *, version: int | None = None) -> Device:
    """A device row (from `Store.device` or a kartabl listing) as the flows see it."""
    return Device(imei=row.imei, brand=row.brand, model=row.model,
                  status=ImeiStatus(row.status), version=version or row.version,
                  has_code=row.code_hash is not None,
                  code_locked_until=live_lock(row.code_locked_until, now),
                  reported=Reported(row.reported) if row.reported else None)


def _retryable(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if state in RETRYABLE_SQLSTATES:
        return True
    return isinstance(exc, IntegrityError) and any(
        name in str(exc.orig) for name in RANDOM_NUMBER_COLUMNS)
