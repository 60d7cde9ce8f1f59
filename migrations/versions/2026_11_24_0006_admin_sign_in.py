"""Staff sign-in: login attempts, token versions, account state (issue 10).

Revision ID: 0006_admin_sign_in
Revises: 0005_backfill
Create Date: 2026-11-24
"""

from collections.abc import Sequence

revision: str = "0006_admin_sign_in"
down_revision: str | None = "0005_backfill"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
