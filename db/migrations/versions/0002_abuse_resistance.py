"""Abuse resistance: lockouts counted apart for the owner's own line and for other lines, who asked
(calling line and call id) on every audit row, the server that handled a call, and the pepper's
fingerprint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("others_failed_attempts", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("others_lock_level", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("others_locked_until", UTC_TIME, nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("buyer_failed_attempts", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("buyer_lock_level", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("buyer_locked_until", UTC_TIME, nullable=True))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("caller", sa.String(16), nullable=True))
        batch.add_column(sa.Column("call_id", sa.String(64), nullable=True))
        batch.create_index("ix_audit_log_caller", ["caller"])
        batch.create_index("ix_audit_log_call_id", ["call_id"])
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("server", sa.String(128), nullable=True))
        batch.create_index("ix_calls_server", ["server"])
    op.create_table(
        "registry_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_registry_meta")),
    )


def downgrade() -> None:
    op.drop_table("registry_meta")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_server")
        batch.drop_column("server")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_call_id")
        batch.drop_index("ix_audit_log_caller")
        batch.drop_column("call_id")
        batch.drop_column("caller")
    with op.batch_alter_table("devices") as batch:
        for column in ("buyer_locked_until", "buyer_lock_level", "buyer_failed_attempts"):
            batch.drop_column(column)
    with op.batch_alter_table("subscribers") as batch:
        for column in ("others_locked_until", "others_lock_level", "others_failed_attempts"):
            batch.drop_column(column)
