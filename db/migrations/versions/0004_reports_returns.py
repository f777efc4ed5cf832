"""Lost or stolen reports by phone and the 7-day mutual return: the `reports` and `returns`
tables, the device's live report on its row (so every guarded move reads it from the row it
locks), and `return` as a kind of transfer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
KINDS_BEFORE = "kind IN ('direct', 'activation')"
KINDS_AFTER = "kind IN ('direct', 'activation', 'return')"


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("reported", sa.String(8), nullable=True))
        batch.create_check_constraint("reported", "reported IN ('lost', 'stolen')")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_constraint(op.f("ck_transfers_kind"), type_="check")
        batch.create_check_constraint("kind", KINDS_AFTER)
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_number", sa.String(16), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("imei", sa.String(15), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("msisdn", sa.String(16), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("withdrawn_at", UTC_TIME, nullable=True),
        sa.CheckConstraint("kind IN ('lost', 'stolen')", name=op.f("ck_reports_kind")),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"],
                                name=op.f("fk_reports_device_id_devices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("case_number", name=op.f("uq_reports_case_number")),
    )
    op.create_index(op.f("ix_reports_device_id"), "reports", ["device_id"])
    op.create_index(op.f("ix_reports_imei"), "reports", ["imei"])
    op.create_table(
        "returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("imei", sa.String(15), nullable=False),
        sa.Column("new_owner", sa.String(16), nullable=False),
        sa.Column("previous_owner", sa.String(16), nullable=False),
        sa.Column("device_version", sa.Integer(), nullable=False),
        sa.Column("requested_at", UTC_TIME, nullable=False),
        sa.Column("confirm_by", UTC_TIME, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("done_at", UTC_TIME, nullable=True),
        sa.CheckConstraint("state IN ('pending', 'done')", name=op.f("ck_returns_state")),
        sa.ForeignKeyConstraint(["transfer_id"], ["transfers.id"],
                                name=op.f("fk_returns_transfer_id_transfers")),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"],
                                name=op.f("fk_returns_device_id_devices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_returns_transfer_id")),
    )
    op.create_index(op.f("ix_returns_device_id"), "returns", ["device_id"])
    op.create_index(op.f("ix_returns_previous_owner"), "returns", ["previous_owner"])


def downgrade() -> None:
    op.drop_index(op.f("ix_returns_previous_owner"), table_name="returns")
    op.drop_index(op.f("ix_returns_device_id"), table_name="returns")
    op.drop_table("returns")
    op.drop_index(op.f("ix_reports_imei"), table_name="reports")
    op.drop_index(op.f("ix_reports_device_id"), table_name="reports")
    op.drop_table("reports")
    op.execute("DELETE FROM transfers WHERE kind = 'return'")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_constraint(op.f("ck_transfers_kind"), type_="check")
        batch.create_check_constraint("kind", KINDS_BEFORE)
    with op.batch_alter_table("devices") as batch:
        batch.drop_constraint(op.f("ck_devices_reported"), type_="check")
        batch.drop_column("reported")
