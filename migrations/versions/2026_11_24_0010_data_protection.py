"""Data protection: erasure, suppression list, renewals (issue 15).

Revision ID: 0010_data_protection
Revises: 0009_duplicate_customers
Create Date: 2026-11-24
"""

from collections.abc import Sequence

revision: str = "0010_data_protection"
down_revision: str | None = "0009_duplicate_customers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
