"""Erased attendees, and the indexes retention of participant details uses.

- ``booking_attendees.erased_at``: when an attendee's details (name, email, health data)
  were erased: by staff, for a person known only as a name on someone else's booking
  (``POST /api/admin/attendees/{attendee_id}/erase``), or by retention. The row, its
  place on the booking and its certificate stay; the renewals list leaves it out.
- ``ix_payment_checkouts_participants_created_at``: the checkouts still holding
  participant details, by age, so that retention finds the abandoned ones without
  reading every checkout.

Revision ID: 0023_attendee_retention
Revises: 0022_booking_stats_by_addition
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_attendee_retention"
down_revision: str | None = "0022_booking_stats_by_addition"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
ALTER TABLE booking_attendees ADD COLUMN erased_at timestamptz;
CREATE INDEX ix_payment_checkouts_participants_created_at ON payment_checkouts (created_at)
    WHERE participant_details IS NOT NULL;
"""

DOWNGRADE = """
DROP INDEX ix_payment_checkouts_participants_created_at;
ALTER TABLE booking_attendees DROP COLUMN erased_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
