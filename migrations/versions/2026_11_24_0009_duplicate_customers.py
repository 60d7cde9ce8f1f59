"""Duplicate customers: email aliases, merges, not-duplicate pairs (issue 14).

Revision ID: 0009_duplicate_customers
Revises: 0008_backfill_by_customer
Create Date: 2026-11-24
"""

from collections.abc import Sequence

revision: str = "0009_duplicate_customers"
down_revision: str | None = "0008_backfill_by_customer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
