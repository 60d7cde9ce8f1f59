"""Unpaid bookings hold a seat for a payment window only; provisional customer details.

Issue 23, outcomes 1 and 2:

- ``bookings.hold_expires_at``: set on an anonymous unpaid booking (the public checkout's
  ``POST /api/bookings`` without a payment), null on every other booking. Such a booking
  holds its seats only while ``hold_expires_at`` is in the future.
- ``rft_booking_holds_place(status, unplaced_reason, hold_expires_at)`` replaces the
  two-argument function: ``STABLE`` now (it reads ``now()``), still inlined by the planner.
- ``session_seats`` gains ``seats_committed``: the seats of the bookings that hold a place
  for good (everything but live unpaid holds). ``seats_taken`` counts live holds too.
  A paid checkout (the payment intent's check and the paid booking) is measured against
  ``seats_committed``: money beats a squatter. The sessions list and an unpaid booking
  read ``seats_taken``.
- ``users.details_source``: where a customer's name, phone and company came from:
  ``unpaid_booking`` (provisional: the first paid booking replaces them), ``paid_booking``
  or ``admin``; null for rows from before (legacy and the backfill: blanks are filled, as
  before, nothing replaced).

Revision ID: 0018_unpaid_holds
Revises: 0016_attendees_certificates
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision: str = "0018_unpaid_holds"
down_revision: str | None = "0016_attendees_certificates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DETAILS_SOURCES = ("unpaid_booking", "paid_booking", "admin")

HOLDS_PLACE_FUNCTION = """
CREATE FUNCTION rft_booking_holds_place(
    status text, unplaced_reason text, hold_expires_at timestamptz
) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN status <> 'cancelled' AND unplaced_reason IS NULL
       AND (hold_expires_at IS NULL OR hold_expires_at > now())
"""

OLD_HOLDS_PLACE_FUNCTION = """
CREATE FUNCTION rft_booking_holds_place(status text, unplaced_reason text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN status <> 'cancelled' AND unplaced_reason IS NULL
"""

SESSION_SEATS_VIEW = """
CREATE VIEW session_seats AS
SELECT s.id, s.course_id, s.status, s.start_datetime, s.end_datetime, s.venue,
       s.max_capacity,
       coalesce(s.price, (SELECT c.price FROM courses AS c WHERE c.id = s.course_id)) AS price,
       (SELECT coalesce(sum(b.number_of_attendees), 0) FROM bookings AS b
        WHERE b.course_schedule_id = s.id
          AND rft_booking_holds_place(b.status, b.unplaced_reason, b.hold_expires_at))
           AS seats_taken,
       (SELECT coalesce(sum(b.number_of_attendees), 0) FROM bookings AS b
        WHERE b.course_schedule_id = s.id AND b.hold_expires_at IS NULL
          AND rft_booking_holds_place(b.status, b.unplaced_reason, b.hold_expires_at))
           AS seats_committed
FROM course_schedules AS s
"""

OLD_SESSION_SEATS_VIEW = """
CREATE VIEW session_seats AS
SELECT s.id, s.course_id, s.status, s.start_datetime, s.end_datetime, s.venue,
       s.max_capacity,
       coalesce(s.price, (SELECT c.price FROM courses AS c WHERE c.id = s.course_id)) AS price,
       (SELECT coalesce(sum(b.number_of_attendees), 0) FROM bookings AS b
        WHERE b.course_schedule_id = s.id
          AND rft_booking_holds_place(b.status, b.unplaced_reason)) AS seats_taken
FROM course_schedules AS s
"""


def upgrade() -> None:
    op.add_column("bookings", sa.Column("hold_expires_at", TIMESTAMP(timezone=True)))
    op.add_column("users", sa.Column("details_source", sa.String(20)))
    op.create_check_constraint(
        "details_source",
        "users",
        f"details_source IS NULL OR details_source IN ({', '.join(map(repr, DETAILS_SOURCES))})",
    )
    op.execute("DROP VIEW session_seats")
    op.execute("DROP FUNCTION rft_booking_holds_place(text, text)")
    op.execute(HOLDS_PLACE_FUNCTION)
    op.execute(SESSION_SEATS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW session_seats")
    op.execute("DROP FUNCTION rft_booking_holds_place(text, text, timestamptz)")
    op.execute(OLD_HOLDS_PLACE_FUNCTION)
    op.execute(OLD_SESSION_SEATS_VIEW)
    op.drop_constraint("ck_users_details_source", "users")
    op.drop_column("users", "details_source")
    op.drop_column("bookings", "hold_expires_at")
