"""Failed staff sign-ins are counted per client as well as per account.

Issue 23, outcome 8: ``admin_login_failures.client_key`` is a keyed fingerprint of the
address the attempt came from (``rft_common.aws.fingerprints``; no address is stored).
Five failures from one client refuse that client for the account; a hundred from all
clients together refuse everyone (the slow ceiling on distributed guessing). Rows from
before have ``''``: they count towards the ceiling only.

Revision ID: 0021_threat_defences_2
Revises: 0018_unpaid_holds
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_threat_defences_2"
down_revision: str | None = "0018_unpaid_holds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "admin_login_failures",
        sa.Column("client_key", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_column("admin_login_failures", "client_key")
