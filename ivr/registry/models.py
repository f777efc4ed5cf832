"""The registry schema (SQLAlchemy 2). db/migrations/ creates it; a test checks the two agree.

Timestamps are stored in UTC and always read back timezone-aware (SQLite keeps no zone).
`devices.version` grows by one on every change a caller could have seen when choosing the device
(owner, status, activation code): an operation that carries the version it saw updates the row
only `WHERE version = :seen`, which is how a concurrent change is detected. Attempt counters do
not change the version, so checking a code does not invalidate the caller's choice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the registry; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Subscriber(Base):
    """A mobile number and its kartabl password (hash only) with its lockout state."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(16), unique=True)  # E.164: +989xxxxxxxxx
    national_id: Mapped[str | None] = mapped_column(String(10))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong PINs in a row
    lock_level: Mapped[int] = mapped_column(Integer, default=0)  # locks since the last success
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Device(Base):
    """A device by IMEI: registry status, owner (kartabl), activation code (hash only)."""

    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint("status IN ('registered', 'unregistered', 'blocked')", name="status"),
        Index("ix_devices_kartabl", "owner_id", "owner_since", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    imei: Mapped[str] = mapped_column(String(15), unique=True)
    brand: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id"))
    owner_since: Mapped[datetime | None] = mapped_column(UtcDateTime)  # kartabl order
    code_hash: Mapped[str | None] = mapped_column(String(255))
    code_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    code_failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    code_lock_level: Mapped[int] = mapped_column(Integer, default=0)
    code_locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Transfer(Base):
    """One change of ownership. Numbers are copied, so history survives later changes."""

    __tablename__ = "transfers"
    __table_args__ = (CheckConstraint("kind IN ('direct', 'activation')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    imei: Mapped[str] = mapped_column(String(15), index=True)
    from_msisdn: Mapped[str | None] = mapped_column(String(16))
    to_msisdn: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    gateway: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditEvent(Base):
    """A security-relevant event. `detail` is free text that never holds a secret."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    event: Mapped[str] = mapped_column(String(32))
    msisdn: Mapped[str | None] = mapped_column(String(16), index=True)
    imei: Mapped[str | None] = mapped_column(String(15), index=True)
    gateway: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)


class Call(Base):
    """The IVR call log: one row per call, the path of operations and how it ended."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    msisdn: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(128))
    started: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ended: Mapped[datetime | None] = mapped_column(UtcDateTime)
    path: Mapped[list[str]] = mapped_column(JSON, default=list)
    outcome: Mapped[str | None] = mapped_column(String(64))


subscribers = Subscriber.__table__
devices = Device.__table__
transfers = Transfer.__table__
audit_log = AuditEvent.__table__
calls = Call.__table__
