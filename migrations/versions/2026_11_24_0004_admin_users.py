"""Admin users API: the audit trail of profile edits.

Revision ID: 0004_admin_users
Revises: 0003_booking_idempotency
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision: str = "0004_admin_users"
down_revision: str | None = "0003_booking_idempotency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column(
            "changed_at", TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("changes", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_user_audit_log"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_audit_log_user_id_users"),
    )
    op.create_index(
        "ix_user_audit_log_user_id_changed_at", "user_audit_log", ["user_id", "changed_at"]
    )


def downgrade() -> None:
    op.drop_table("user_audit_log")
