"""A session's seats and price, said once in the database for every statement that reads them.

The checkout's statements shared these rules as SQL fragments spliced into f-strings,
each assuming the table aliases of the statement it landed in. They now read:

- ``rft_booking_holds_place(status, unplaced_reason)``: a booking holds its seats
  unless it is cancelled or is a paid booking recorded without a seat
  (``unplaced_reason``). Inlined by the planner: the same plan as the expression.
- ``rft_course_type(course_name)``: the booking site's course code, the capitals of
  the course name ("Emergency First Aid at Work" is EFAW). Inlined as well.
- ``session_seats``: per session, its price per person (the session's own, else its
  course's) and its seats taken (the attendees of the bookings that hold a place),
  next to the session's own columns the checkout reads. The sessions list and the
  payment intent's check read it, and the booking locks its session through it
  (``FOR UPDATE``) and takes the price from it. The booking's insert-if-it-fits sums
  the same seats with ``rft_booking_holds_place`` in the scan that also looks for the
  email's active booking (reading the view there would scan and plan twice).
  The course's price is a subquery, not a join, so that ``FOR UPDATE`` through the view
  locks the session's row alone: a join would lock the course's row too, and one
  course's sessions would then take bookings one at a time. Each column is computed
  only when a statement reads it.

A view fixes the types of the columns it reads: a later migration that changes one
(say ``bookings.status``) drops the view first and creates it again after.
Views and functions are not SQLAlchemy tables, so ``alembic check`` does not see them.

Revision ID: 0013_session_seats
Revises: 0012_idempotency_booking_index
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_session_seats"
down_revision: str | None = "0012_idempotency_booking_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOLDS_PLACE_FUNCTION = """
CREATE FUNCTION rft_booking_holds_place(status text, unplaced_reason text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN status <> 'cancelled' AND unplaced_reason IS NULL
"""

COURSE_TYPE_FUNCTION = """
CREATE FUNCTION rft_course_type(course_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(course_name, '[^A-Z]', '', 'g')
"""

SESSION_SEATS_VIEW = """
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
    op.execute(HOLDS_PLACE_FUNCTION)
    op.execute(COURSE_TYPE_FUNCTION)
    op.execute(SESSION_SEATS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW session_seats")
    op.execute("DROP FUNCTION rft_course_type(text)")
    op.execute("DROP FUNCTION rft_booking_holds_place(text, text)")
