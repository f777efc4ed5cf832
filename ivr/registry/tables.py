"""The registry schema as SQLAlchemy Core tables: the one way every registry module touches the
database. db/migrations/ creates it; a test checks the two agree.

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
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
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
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# A mobile number and its kartabl password (hash only) with its lockout state.
subscribers = Table(
    "subscribers", metadata,
    Column("id", Integer, primary_key=True),
    Column("msisdn", String(16), nullable=False, unique=True),  # E.164: +989xxxxxxxxx
    Column("national_id", String(10)),
    Column("password_hash", String(255)),
    Column("password_changed_at", UtcDateTime),
    # wrong PINs keyed from the number's own line (caller ID = the number), and from other lines
    Column("failed_attempts", Integer, nullable=False, default=0),  # in a row
    Column("lock_level", Integer, nullable=False, default=0),  # locks since the last success
    Column("locked_until", UtcDateTime),
    Column("others_failed_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("others_lock_level", Integer, nullable=False, default=0, server_default="0"),
    Column("others_locked_until", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
)

# A device by IMEI: registry status, owner (kartabl), activation code (hash only).
devices = Table(
    "devices", metadata,
    Column("id", Integer, primary_key=True),
    Column("imei", String(15), nullable=False, unique=True),
    Column("brand", String(64), nullable=False),
    Column("model", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_changed_at", UtcDateTime, nullable=False),
    Column("owner_id", ForeignKey("subscribers.id")),
    Column("owner_since", UtcDateTime),  # kartabl order
    Column("code_hash", String(255)),
    Column("code_changed_at", UtcDateTime),
    # wrong codes keyed by the signed-in owner (a direct sale), and by would-be buyers
    Column("code_failed_attempts", Integer, nullable=False, default=0),
    Column("code_lock_level", Integer, nullable=False, default=0),
    Column("code_locked_until", UtcDateTime),
    Column("buyer_failed_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("buyer_lock_level", Integer, nullable=False, default=0, server_default="0"),
    Column("buyer_locked_until", UtcDateTime),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", UtcDateTime, nullable=False),
    # the owner's live lost/stolen report (ivr.registry.reports): on the device row, so every
    # guarded move reads it from the row it locks
    Column("reported", String(8)),
    CheckConstraint("status IN ('registered', 'unregistered', 'blocked')", name="status"),
    CheckConstraint("reported IN ('lost', 'stolen')", name="reported"),
    Index("ix_devices_kartabl", "owner_id", "owner_since", "id"),
)

# One change of ownership. Numbers are copied, so history survives later changes.
transfers = Table(
    "transfers", metadata,
    Column("id", Integer, primary_key=True),
    Column("reference", String(16), nullable=False, unique=True),
    Column("device_id", ForeignKey("devices.id"), nullable=False, index=True),
    Column("imei", String(15), nullable=False, index=True),
    Column("from_msisdn", String(16)),
    Column("to_msisdn", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("gateway", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    CheckConstraint("kind IN ('direct', 'activation', 'return')", name="kind"),
)

# A security-relevant event. `detail` is free text that never holds a secret.
audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("event", String(32), nullable=False),
    Column("msisdn", String(16), index=True),
    Column("imei", String(15), index=True),
    Column("gateway", String(16), nullable=False),
    Column("detail", Text),
    Column("caller", String(16), index=True),  # the calling line (E.164), None when withheld
    Column("call_id", String(64), index=True),
)

# The IVR call log: one row per call, the path of operations and how it ended.
calls = Table(
    "calls", metadata,
    Column("id", Integer, primary_key=True),
    Column("call_id", String(64), nullable=False, unique=True),
    Column("msisdn", String(16)),
    Column("channel", String(128), nullable=False),
    Column("started", UtcDateTime, nullable=False, index=True),
    Column("ended", UtcDateTime),
    Column("path", JSON, nullable=False, default=list),
    Column("outcome", String(64)),
    Column("server", String(128), index=True),  # which FastAGI server took it (host:port)
)

# Facts about the registry itself, e.g. the fingerprint of the pepper its hashes were made with.
registry_meta = Table(
    "registry_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

# Text messages (SMS) written in the same transaction as the change they tell of (a transactional
# outbox): nothing is sent for a change that rolled back, nothing lost for one that committed.
# `template` is a catalogue key (sms_…) and `params` its values — never a password or a code.
# The delivery worker (ivr.sms) hands each row to Kannel once, by `message_id`.
outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", String(32), nullable=False, unique=True),  # uuid4 hex
    Column("msisdn", String(16), nullable=False),  # E.164 recipient
    Column("template", String(48), nullable=False),
    Column("params", JSON, nullable=False, default=dict),
    Column("state", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("claimed_until", UtcDateTime),  # a worker's lease while it sends
    Column("claimed_by", String(32)),  # that worker's claim token: only it may mark the row
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("imei", String(15), index=True),
    Column("call_id", String(64)),  # the call that caused it, when a call did
    CheckConstraint("state IN ('pending', 'sent', 'dead')", name="state"),
    Index("ix_outbox_due", "state", "next_attempt_at"),
)

# A lost or stolen report by the device's owner, by case number (ivr.registry.reports). At most
# one live (not withdrawn) report per device; `devices.reported` mirrors the live one.
reports = Table(
    "reports", metadata,
    Column("id", Integer, primary_key=True),
    Column("case_number", String(16), nullable=False, unique=True),
    Column("device_id", ForeignKey("devices.id"), nullable=False, index=True),
    Column("imei", String(15), nullable=False, index=True),
    Column("kind", String(8), nullable=False),
    Column("msisdn", String(16), nullable=False),  # the owner who reported it
    Column("at", UtcDateTime, nullable=False),
    Column("withdrawn_at", UtcDateTime),
    CheckConstraint("kind IN ('lost', 'stolen')", name="kind"),
)

# A return of a transfer within 7 days (ivr.registry.returns): asked by the new owner, confirmed
# by the previous owner. One row per transfer; asking again renews it while it is pending.
returns = Table(
    "returns", metadata,
    Column("id", Integer, primary_key=True),
    Column("transfer_id", ForeignKey("transfers.id"), nullable=False, unique=True),
    Column("device_id", ForeignKey("devices.id"), nullable=False, index=True),
    Column("imei", String(15), nullable=False),
    Column("new_owner", String(16), nullable=False),  # asked for it
    Column("previous_owner", String(16), nullable=False, index=True),  # confirms it
    Column("device_version", Integer, nullable=False),  # the device as it was when asked
    Column("requested_at", UtcDateTime, nullable=False),
    Column("confirm_by", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("done_at", UtcDateTime),
    CheckConstraint("state IN ('pending', 'done')", name="state"),
)

# One-time SMS codes that prove a caller holds a number's SIM (ivr.registry.sim_codes): sent to
# the number, keyed on the same call. Only a hash is kept, and only while the code is live (a
# used, expired or spent code keeps no hash); the rows count the codes a number got per day.
sim_codes = Table(
    "sim_codes", metadata,
    Column("id", Integer, primary_key=True),
    Column("msisdn", String(16), nullable=False),  # E.164: where the code went
    Column("call_id", String(64)),  # the call that asked for it and may key it
    Column("caller", String(16)),  # that call's calling line, as given (None when withheld)
    Column("purpose", String(24), nullable=False),  # what the SMS said it is for
    Column("code_hash", String(255)),  # None once the code is no longer live
    Column("failed", Integer, nullable=False, default=0),
    Column("state", String(8), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime),
    CheckConstraint("state IN ('live', 'used', 'void', 'unsent')", name="state"),
    Index("ix_sim_codes_msisdn_created_at", "msisdn", "created_at"),
    Index("ix_sim_codes_call_id", "call_id"),
)
