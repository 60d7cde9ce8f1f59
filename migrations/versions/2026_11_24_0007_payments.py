"""Payments: checkout intents, Stripe events, one booking per intent (issue 11).

Revision ID: 0007_payments
Revises: 0006_admin_sign_in
Create Date: 2026-11-24
"""

from collections.abc import Sequence

revision: str = "0007_payments"
down_revision: str | None = "0006_admin_sign_in"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
