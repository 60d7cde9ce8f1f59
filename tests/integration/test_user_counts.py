"""``user_counts`` (the admin list's totals) stays equal to a count of ``users``.

The trigger must follow every kind of write: new users, bookings that give a user
their first counted booking or cancel their last, edits of the customer type or
role, deletions, plain SQL from the legacy app, and many checkouts at once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from rft_common.bookings import BookingRequest, place_booking
from tests.admin_helpers import add_user
from tests.factories import (
    add_session,
    add_staff_user,
    booking_body,
    generate_bookings,
    generate_customers,
    legacy_insert_booking,
)

RECOUNT = text("""
    SELECT role, coalesce(customer_type, '') AS customer_type, total_bookings > 0 AS has_bookings,
           count(*) AS total
    FROM users GROUP BY 1, 2, 3
""")
STORED = text("""
    SELECT role, customer_type, has_bookings, sum(total) AS total
    FROM user_counts GROUP BY 1, 2, 3 HAVING sum(total) <> 0
""")


def counts(db) -> tuple[set, set]:
    """(stored, recounted), each as a set of (role, customer type, has bookings, total)."""
    with db.connect() as connection:
        stored = {tuple(row) for row in connection.execute(STORED)}
        recounted = {tuple(row) for row in connection.execute(RECOUNT)}
    return stored, recounted


def test_counts_follow_inserts_bookings_cancellations_edits_and_deletes(db):
    with db.begin() as connection:
        generate_customers(connection, 60)
        generate_bookings(connection, 50, customers=40)
        add_staff_user(connection, "boss@reactfast.example", role="admin")
    stored, recounted = counts(db)
    assert stored == recounted

    with db.begin() as connection:
        connection.execute(text("UPDATE bookings SET status = 'cancelled' WHERE id % 3 = 0"))
        connection.execute(
            text(
                "UPDATE users SET customer_type = 'corporate' "
                "WHERE id % 5 = 0 AND role = 'customer'"
            )
        )
        connection.execute(text("UPDATE users SET role = 'instructor' WHERE id = 7"))
        connection.execute(text("DELETE FROM bookings WHERE user_id IN (11, 12)"))
        connection.execute(text("DELETE FROM users WHERE id IN (11, 12)"))
    stored, recounted = counts(db)
    assert stored == recounted


def test_statistics_refreshes_that_keep_has_bookings_touch_no_counter_row(db):
    with db.begin() as connection:
        session_id = add_session(connection)
        user_id = add_user(connection, "sam@example.com")
        legacy_insert_booking(
            connection,
            session_id=session_id,
            email="sam@example.com",
            user_id=user_id,
            reference="A",
        )
    with db.connect() as connection:
        before = connection.execute(text("SELECT xmin::text FROM user_counts")).scalars().all()

    with db.begin() as connection:
        legacy_insert_booking(
            connection,
            session_id=session_id,
            email="sam@example.com",
            user_id=user_id,
            reference="B",
        )

    with db.connect() as connection:
        after = connection.execute(text("SELECT xmin::text FROM user_counts")).scalars().all()
    assert after == before


@pytest.mark.usefixtures("customer_accounts_on")
def test_counts_stay_exact_under_many_concurrent_checkouts_by_new_customers(db):
    with db.begin() as connection:
        sessions = [add_session(connection, max_capacity=12) for _ in range(8)]
    start = threading.Barrier(len(sessions))

    def checkouts(worker: int) -> None:
        start.wait()
        for number in range(6):
            body = booking_body(
                sessions[worker],
                email=f"new{worker}-{number}@example.com",
                company="Acme" if number % 2 else None,
            )
            place_booking(BookingRequest.model_validate(body))

    with ThreadPoolExecutor(len(sessions)) as pool:
        list(pool.map(checkouts, range(len(sessions))))

    stored, recounted = counts(db)
    assert stored == recounted
    assert sum(total for *_, total in stored) == 48
