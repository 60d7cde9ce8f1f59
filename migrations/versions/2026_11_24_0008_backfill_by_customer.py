"""Backfill by customer and bounded admin counts (issue 13).

Revision ID: 0008_backfill_by_customer
Revises: 0007_payments
Create Date: 2026-11-24
"""

from collections.abc import Sequence

revision: str = "0008_backfill_by_customer"
down_revision: str | None = "0007_payments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
