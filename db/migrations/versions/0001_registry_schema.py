"""The registry schema: subscribers, devices, transfers, audit log, call log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)  # ivr.registry.models.UtcDateTime reads it back as UTC


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("msisdn", sa.String(16), nullable=False),
        sa.Column("national_id", sa.String(10), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("password_changed_at", UTC_TIME, nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("lock_level", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("msisdn", name=op.f("uq_subscribers_msisdn")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("imei", sa.String(15), nullable=False),
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_changed_at", UTC_TIME, nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("owner_since", UTC_TIME, nullable=True),
        sa.Column("code_hash", sa.String(255), nullable=True),
        sa.Column("code_changed_at", UTC_TIME, nullable=True),
        sa.Column("code_failed_attempts", sa.Integer(), nullable=False),
        sa.Column("code_lock_level", sa.Integer(), nullable=False),
        sa.Column("code_locked_until", UTC_TIME, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.CheckConstraint(
            "status IN ('registered', 'unregistered', 'blocked')", name=op.f("ck_devices_status")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["subscribers.id"], name=op.f("fk_devices_owner_id_subscribers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("imei", name=op.f("uq_devices_imei")),
    )
    op.create_index("ix_devices_kartabl", "devices", ["owner_id", "owner_since", "id"])
    op.create_table(
        "transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(16), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("imei", sa.String(15), nullable=False),
        sa.Column("from_msisdn", sa.String(16), nullable=True),
        sa.Column("to_msisdn", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("gateway", sa.String(16), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.CheckConstraint("kind IN ('direct', 'activation')", name=op.f("ck_transfers_kind")),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_transfers_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("reference", name=op.f("uq_transfers_reference")),
    )
    op.create_index(op.f("ix_transfers_device_id"), "transfers", ["device_id"])
    op.create_index(op.f("ix_transfers_imei"), "transfers", ["imei"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("msisdn", sa.String(16), nullable=True),
        sa.Column("imei", sa.String(15), nullable=True),
        sa.Column("gateway", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_imei"), "audit_log", ["imei"])
    op.create_index(op.f("ix_audit_log_msisdn"), "audit_log", ["msisdn"])
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("msisdn", sa.String(16), nullable=True),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("started", UTC_TIME, nullable=False),
        sa.Column("ended", UTC_TIME, nullable=True),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("call_id", name=op.f("uq_calls_call_id")),
    )
    op.create_index(op.f("ix_calls_started"), "calls", ["started"])


def downgrade() -> None:
    op.drop_table("calls")
    op.drop_table("audit_log")
    op.drop_table("transfers")
    op.drop_table("devices")
    op.drop_table("subscribers")
