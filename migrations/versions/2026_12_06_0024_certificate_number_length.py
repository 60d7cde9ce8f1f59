"""Certificate numbers fit the longest course-type code.

``RFT-<course type>-<year>-<attendee id>`` is 41 characters for
``ANNUAL_SKILLS_REFRESHER`` with an 8-digit attendee id, and more as ids grow, but the
column held 40: issuing is one statement, so a single such booking stopped the
certificates job for everyone. 64 characters hold the longest code the booking site knows
with any 32-bit attendee id. Widening a varchar rewrites nothing.

Revision ID: 0024_certificate_number_length
Revises: 0023_attendee_retention
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_certificate_number_length"
down_revision: str | None = "0023_attendee_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column(
        "certificates",
        "certificate_number",
        type_=sa.String(64),
        existing_type=sa.String(40),
        existing_nullable=False,
    )


def downgrade() -> None:
    """Refused while a number longer than 40 characters exists (PostgreSQL says so)."""
    op.alter_column(
        "certificates",
        "certificate_number",
        type_=sa.String(40),
        existing_type=sa.String(64),
        existing_nullable=False,
    )
