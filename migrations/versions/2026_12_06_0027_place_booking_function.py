"""A booking is placed by a database function, whose plan is kept.

``rft_place_booking(...)`` is the checkout's step 4 (``rft_common.checkout.bookings``),
unchanged: after the session's row lock, in one statement, it re-reads the session's
seats and active bookings (a fresh snapshot, taken after the lock) and inserts the
booking only if it fits, with its booker as attendee 1, the same email's superseded
unpaid holds and the session's seat count. It answers one row: the seats counted, whether
the email already booked, the refusal (null if placed), and the booking (null if none).

- Seats are summed from the bookings themselves rather than trusted from
  ``course_schedules.current_capacity``, which the legacy app may not maintain; the
  same scan finds this email's active booking.
- A paid booking is measured against the committed seats alone: an unpaid hold
  (``hold_expires_at``) never stands between money and a seat, and the same email's
  pending unpaid holds on the session are cancelled, superseded by the paid booking (a
  stranger's squat in the payer's email included).
- An unpaid booking is measured against every live hold, and, unless staff record it
  (``hold_minutes`` null), holds its seats for ``hold_minutes`` only.
- Only a booking without a payment window (paid, or recorded by staff) is refused
  because the email already booked the session: an anonymous caller's unpaid booking
  gets the same answer whether or not the email booked it (issue 23, outcome 7).
- A booking that does not fit is refused (no row), or, with ``record_unplaced`` (a paid
  booking from Stripe's webhook), stored pending with the reason and no seat.

It was one statement sent by ``checkout.bookings``. The functions connect through RDS
Proxy, so they send no named prepared statements (the proxy would pin the connection),
and PostgreSQL parsed and planned that five-part statement for every booking, about
0.45 ms of planning alone on the bench's machine; PL/pgSQL plans it once per connection,
as migration 0026 does for the booking's email.

Revision ID: 0027_place_booking_function
Revises: 0026_booking_email_function
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027_place_booking_function"
down_revision: str | None = "0026_booking_email_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = """rft_place_booking(
    given_session_id integer, given_email text, given_active_statuses text[],
    given_reference text, given_user_id integer, given_status text,
    given_payment_status text, given_amount numeric, given_payment_method text,
    given_payment_intent_id text, given_paid boolean, given_hold_minutes integer,
    given_record_unplaced boolean, given_forced_refusal text, given_attendees integer,
    given_max_capacity integer, given_contact_details json, given_first_name text,
    given_last_name text)"""


def _contact_email() -> str:
    """A booking's email as typed, in the identity's form (migration 0021's expression)."""
    migration_0021 = op.get_context().script.get_revision("0021_threat_defences_2").module
    return migration_0021.CANONICAL_EMAIL.replace("raw_email", "contact_details ->> 'email'")


def upgrade() -> None:
    contact_email = _contact_email()
    op.execute(f"""
CREATE FUNCTION {SIGNATURE}
RETURNS TABLE (
    seats_taken bigint, already_booked boolean, refusal text, id integer,
    booking_reference text, user_id integer, status text, payment_status text,
    payment_amount numeric, number_of_attendees integer, created_at timestamptz,
    unplaced_reason text, hold_expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH session_state AS (
        SELECT coalesce(sum(number_of_attendees)
                        FILTER (WHERE rft_booking_holds_place(status, unplaced_reason,
                                                              hold_expires_at)),
                        0) AS seats_held,
               coalesce(sum(number_of_attendees)
                        FILTER (WHERE rft_booking_holds_place(status, unplaced_reason,
                                                              hold_expires_at)
                                  AND hold_expires_at IS NULL),
                        0) AS seats_committed,
               coalesce(bool_or(status = ANY(given_active_statuses)
                                AND rft_booking_holds_place(status, unplaced_reason,
                                                            hold_expires_at)
                                AND (hold_expires_at IS NULL OR NOT given_paid)
                                AND {contact_email} = given_email),
                        false)
                   AND given_hold_minutes IS NULL AS already_booked
        FROM bookings WHERE course_schedule_id = given_session_id
    ), counted AS (
        SELECT already_booked,
               CASE WHEN given_paid THEN seats_committed ELSE seats_held END AS seats_taken
        FROM session_state
    ), decision AS (
        SELECT seats_taken, already_booked,
               coalesce(given_forced_refusal,
                        CASE WHEN already_booked THEN 'already_booked'
                             WHEN seats_taken + given_attendees > given_max_capacity
                             THEN 'session_full'
                        END) AS refusal
        FROM counted
    ), new_booking AS (
        INSERT INTO bookings (
            booking_reference, course_schedule_id, user_id, status, payment_status,
            payment_amount, payment_method, stripe_payment_intent_id, number_of_attendees,
            contact_details, payment_verified_at, unplaced_reason, hold_expires_at)
        SELECT given_reference, given_session_id, given_user_id,
               CASE WHEN refusal IS NULL THEN given_status ELSE 'pending' END,
               CASE WHEN EXISTS (SELECT 1 FROM stripe_events AS e
                                 WHERE e.payment_intent_id = given_payment_intent_id
                                   AND e.outcome IN ('refunded', 'refunded_before_booking'))
                    THEN 'refunded' ELSE given_payment_status END,
               given_amount, given_payment_method, given_payment_intent_id, given_attendees,
               given_contact_details, CASE WHEN given_paid THEN now() END, refusal,
               now() + make_interval(mins => given_hold_minutes)
        FROM decision
        WHERE refusal IS NULL OR given_record_unplaced
        RETURNING id, booking_reference, user_id, status, payment_status, payment_amount,
                  number_of_attendees, created_at, unplaced_reason, hold_expires_at
    ), booker_attends AS (
        INSERT INTO booking_attendees (booking_id, position, first_name, last_name, email,
                                       user_id)
        SELECT id, 1, given_first_name, given_last_name, given_email, user_id
        FROM new_booking
    ), superseded AS (
        UPDATE bookings SET status = 'cancelled', updated_at = now()
        WHERE course_schedule_id = given_session_id AND given_paid
          AND status = 'pending' AND payment_status = 'pending'
          AND hold_expires_at IS NOT NULL
          AND {contact_email} = given_email
          AND EXISTS (SELECT 1 FROM new_booking WHERE unplaced_reason IS NULL)
    ), seats AS (
        UPDATE course_schedules
        SET current_capacity = (SELECT seats_held FROM session_state) + given_attendees,
            status = CASE WHEN (SELECT seats_held FROM session_state) + given_attendees
                               >= max_capacity THEN 'full' ELSE status END,
            updated_at = now()
        WHERE id = given_session_id
          AND EXISTS (SELECT 1 FROM new_booking WHERE unplaced_reason IS NULL)
    )
    SELECT CAST(d.seats_taken AS bigint), d.already_booked, d.refusal, b.id,
           CAST(b.booking_reference AS text), b.user_id, CAST(b.status AS text),
           CAST(b.payment_status AS text), CAST(b.payment_amount AS numeric),
           b.number_of_attendees, b.created_at, CAST(b.unplaced_reason AS text),
           b.hold_expires_at
    FROM decision AS d LEFT JOIN new_booking AS b ON true;
END
$$
""")


def downgrade() -> None:
    op.execute("DROP FUNCTION rft_place_booking")  # the one function of that name
