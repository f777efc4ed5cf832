"""One-time SMS codes: the SIM as a second factor for what moves a device or a secret when the
caller is not on the kartabl's own vouched line (ivr.registry.sim_codes).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sim_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("msisdn", sa.String(16), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("caller", sa.String(16), nullable=True),
        sa.Column("purpose", sa.String(24), nullable=False),
        sa.Column("code_hash", sa.String(255), nullable=True),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("used_at", UTC_TIME, nullable=True),
        sa.CheckConstraint("state IN ('live', 'used', 'void', 'unsent')",
                           name=op.f("ck_sim_codes_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sim_codes")),
    )
    op.create_index("ix_sim_codes_msisdn_created_at", "sim_codes", ["msisdn", "created_at"])
    op.create_index("ix_sim_codes_call_id", "sim_codes", ["call_id"])


def downgrade() -> None:
    op.drop_index("ix_sim_codes_call_id", table_name="sim_codes")
    op.drop_index("ix_sim_codes_msisdn_created_at", table_name="sim_codes")
    op.drop_table("sim_codes")
