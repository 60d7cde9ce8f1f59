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

from rft_common.backfill import service as backfill
from rft_common.backfill.service import process_batch
from rft_common.checkout.bookings import BookingRequest, place_booking
from rft_tools.data.legacy import seed_legacy
from tests.admin_helpers import add_user
from tests.backfill_helpers import contact, insert_legacy_bookings, key_message, message
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


@pytest.mark.usefixtures("customer_accounts_on")
def test_parallel_backfill_batches_and_checkouts_keep_counts_exact(db):
    """Batches defer their counter changes to their last statement; the totals stay
    equal to a recount while batches of both versions and checkouts by the same
    customers (and new ones) run at once."""
    with db.begin() as connection:
        seed_legacy(connection, bookings=1500, customers=400)
        session_id = add_session(connection, max_capacity=100)
        legacy_emails = connection.execute(
            text("SELECT DISTINCT contact_details ->> 'email' FROM bookings WHERE id % 50 = 7")
        ).scalars()
        emails = [email.strip() for email in legacy_emails if email and "@" in email][:8]
        add_staff_user(connection, "trainer@reactfast.example", role="instructor")
        connection.execute(
            text(
                "UPDATE bookings SET contact_details = json_build_object("
                "'email', 'Trainer@ReactFast.example', 'name', 'T') WHERE id % 97 = 0"
            )
        )
    quarter = 2**30
    messages = [
        key_message(-(2**31) + index * quarter, -(2**31) + (index + 1) * quarter - 1, f"k{index}")
        for index in range(4)
    ] + [message(1, 400, "old-v1")]
    start = threading.Barrier(len(messages) + 4)

    def batch(item) -> None:
        start.wait()
        process_batch(item)

    def checkout(number: int) -> None:
        start.wait()
        for email in [*emails[number::4], f"buyer{number}@example.com"]:
            place_booking(BookingRequest.model_validate(booking_body(session_id, email=email)))

    with ThreadPoolExecutor(max_workers=len(messages) + 4) as pool:
        jobs = [pool.submit(batch, item) for item in messages]
        jobs += [pool.submit(checkout, number) for number in range(4)]
        for job in jobs:
            job.result()

    stored, recounted = counts(db)
    assert stored == recounted
    with db.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM bookings WHERE user_id IS NULL")
            ).scalar_one()
            == connection.execute(text("SELECT count(*) FROM backfill_unlinkable")).scalar_one()
        )


def test_a_batch_touches_no_counter_row_before_its_last_statement(db, monkeypatch):
    with db.begin() as connection:
        session_id = add_session(connection)
        insert_legacy_bookings(
            connection, session_id, [contact(f"new{i}@example.com") for i in range(5)]
        )
    seen: list[int] = []

    def finish_and_look(connection, parameters):
        seen.append(connection.execute("SELECT count(*) FROM user_counts").scalar_one())
        finish(connection, parameters)
        seen.append(connection.execute("SELECT count(*) FROM user_counts").scalar_one())

    finish = backfill._finish_batch
    monkeypatch.setattr(backfill, "_finish_batch", finish_and_look)

    process_batch(key_message())

    assert seen[0] == 0 and seen[1] > 0
    stored, recounted = counts(db)
    assert stored == recounted
