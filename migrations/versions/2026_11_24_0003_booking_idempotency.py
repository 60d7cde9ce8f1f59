"""Idempotency keys for POST /api/bookings, stored in the booking's transaction.

Revision ID: 0003_booking_idempotency
Revises: 0002_customer_accounts
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision: str = "0003_booking_idempotency"
down_revision: str | None = "0002_customer_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column(
            "booking_id",
            sa.Integer,
            sa.ForeignKey("bookings.id", name="fk_idempotency_keys_booking_id_bookings"),
        ),
        sa.Column("response_status", sa.Integer),
        sa.Column("response_body", JSONB),
        sa.Column(
            "created_at",
            TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
