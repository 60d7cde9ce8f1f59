"""Invariants of the data, checked by the tests and by ``make stress`` alike.

Each check is an independent recomputation from ``bookings`` (not the triggers'
function) and returns the offending rows: an empty list means the invariant holds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from rft_common.core.emails import EMAIL_WHITESPACE, normalized_email_sql

STATS_RECOMPUTATION = text("""
    SELECT u.id,
           u.total_bookings, u.total_spent, u.first_booking_at, u.last_booking_at,
           count(b.id) FILTER (WHERE b.status <> 'cancelled') AS expected_bookings,
           coalesce(sum(b.payment_amount) FILTER (WHERE b.payment_status = 'paid'), 0)
               AS expected_spent,
           min(b.created_at) FILTER (WHERE b.status <> 'cancelled') AS expected_first,
           max(b.created_at) FILTER (WHERE b.status <> 'cancelled') AS expected_last
    FROM users AS u LEFT JOIN bookings AS b ON b.user_id = u.id
    GROUP BY u.id
""")
OVERSOLD_SESSIONS = text("""
    SELECT s.id, s.max_capacity, sum(b.number_of_attendees) AS seats_sold
    FROM course_schedules AS s JOIN bookings AS b ON b.course_schedule_id = s.id
    WHERE b.status <> 'cancelled' AND b.unplaced_reason IS NULL AND b.hold_expires_at IS NULL
      AND s.id = ANY(:session_ids)
    GROUP BY s.id HAVING sum(b.number_of_attendees) > s.max_capacity
""")
DUPLICATE_CUSTOMERS = text(f"""
    SELECT {normalized_email_sql("email")} AS email, count(*) AS users
    FROM users GROUP BY 1 HAVING count(*) > 1
""")
"""Users sharing an email in the identity's form (composed or decomposed accents alike)."""


def stats_mismatches(connection: Connection) -> list[Any]:
    """Users whose stored statistics differ from a recomputation from bookings."""
    return [
        row
        for row in connection.execute(STATS_RECOMPUTATION)
        if (row.total_bookings, row.total_spent, row.first_booking_at, row.last_booking_at)
        != (row.expected_bookings, row.expected_spent, row.expected_first, row.expected_last)
    ]


def oversold_sessions(connection: Connection, session_ids: list[int]) -> list[Any]:
    """Sessions among ``session_ids`` holding more attendees than seats (paid bookings
    recorded without a seat, ``unplaced_reason``, hold none).

    Only sessions sold through this system are expected to hold: the legacy app
    never checked capacity, so historical sessions may well be overbooked.
    """
    return list(connection.execute(OVERSOLD_SESSIONS, {"session_ids": session_ids}))


def duplicate_customers(connection: Connection) -> list[Any]:
    return list(connection.execute(DUPLICATE_CUSTOMERS, {"whitespace": EMAIL_WHITESPACE}))
