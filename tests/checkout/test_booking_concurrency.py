"""Many Lambdas at once: parallel threads, each with its own database connection."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rft_common.checkout.bookings import LOCK_SESSION, BookingRequest, place_booking
from rft_common.core.errors import DomainError
from rft_common.db.postgres import run_transaction, sqlstate
from rft_common.http.api import STATUS_BY_ERROR
from tests.factories import add_session, booking_body, stats_mismatches

pytestmark = pytest.mark.usefixtures("db", "customer_accounts_on")


def run_at_once(
    requests: list[tuple[dict[str, Any], dict[str, str] | None]],
) -> list[tuple[int, dict]]:
    """Place every booking simultaneously, each on its own thread and DB connection.

    This is the code each Lambda runs after parsing the event (``place_booking``);
    the resolver itself keeps per-process state, which Lambda never shares.
    """
    parsed = [(BookingRequest.model_validate(body), headers) for body, headers in requests]
    start = threading.Barrier(len(parsed))

    def call(index: int) -> tuple[int, dict]:
        request, headers = parsed[index]
        start.wait()
        try:
            outcome = place_booking(request, idempotency_key=(headers or {}).get("Idempotency-Key"))
        except DomainError as error:
            return STATUS_BY_ERROR[type(error)], {"message": error.message}
        return 201, outcome.body

    with ThreadPoolExecutor(max_workers=len(parsed)) as pool:
        return list(pool.map(call, range(len(parsed))))


def with_sessions(db, count: int, **session: Any) -> list[int]:
    with db.begin() as connection:
        return [add_session(connection, **session) for _ in range(count)]


EMAIL_VARIANTS: list[Callable[[int], str]] = [
    lambda i: "jo.bloggs@example.com",
    lambda i: "JO.BLOGGS@EXAMPLE.COM",
    lambda i: " Jo.Bloggs@Example.com",
    lambda i: "jo.bloggs@example.com   ",
]


def test_32_simultaneous_bookings_by_one_person_make_one_customer(db):
    sessions = with_sessions(db, 32)
    requests = [
        (booking_body(session_id, email=EMAIL_VARIANTS[i % 4](i)), None)
        for i, session_id in enumerate(sessions)
    ]

    results = run_at_once(requests)

    assert Counter(status for status, _ in results) == {201: 32}
    assert len({body["customerId"] for _, body in results}) == 1
    with db.connect() as connection:
        customers = connection.execute(text("SELECT * FROM users")).all()
        linked = connection.execute(
            text("SELECT count(*) FROM bookings WHERE user_id = :id"), {"id": customers[0].id}
        ).scalar_one()
        assert stats_mismatches(connection) == []
    assert len(customers) == 1
    assert linked == 32
    # Unpaid bookings (no paymentIntentId): 32 bookings, nothing spent yet.
    assert (customers[0].total_bookings, customers[0].total_spent) == (32, Decimal("0.00"))


def test_30_buyers_for_12_seats_sell_exactly_12(db):
    [session_id] = with_sessions(db, 1, max_capacity=12)
    requests = [(booking_body(session_id, email=f"buyer{i}@example.com"), None) for i in range(30)]

    results = run_at_once(requests)

    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 12, 409: 18}
    with db.connect() as connection:
        seats = connection.execute(
            text("SELECT sum(number_of_attendees) FROM bookings WHERE course_schedule_id = :id"),
            {"id": session_id},
        ).scalar_one()
        session = connection.execute(text("SELECT * FROM course_schedules")).one()
        assert stats_mismatches(connection) == []
    assert seats == 12
    assert (session.current_capacity, session.status) == (12, "full")


def test_concurrent_retries_with_one_idempotency_key_create_one_booking(db):
    [session_id] = with_sessions(db, 1)
    body = booking_body(session_id)
    requests = [(body, {"Idempotency-Key": "checkout-42"}) for _ in range(10)]

    results = run_at_once(requests)

    assert Counter(status for status, _ in results) == {201: 10}
    assert len({json.dumps(body, sort_keys=True) for _, body in results}) == 1
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM bookings")).scalar_one() == 1
        assert connection.execute(text("SELECT total_bookings FROM users")).scalar_one() == 1


def test_the_booking_locks_its_session_row_and_not_its_course_row(db):
    """``session_seats`` reads the course's price in a subquery: locking through the
    view takes the session's row alone, so one course's sessions book in parallel."""
    [session_id] = with_sessions(db, 1)
    with db.connect() as connection:
        course_id = connection.execute(
            text("SELECT course_id FROM course_schedules WHERE id = :id"), {"id": session_id}
        ).scalar_one()

    def lockable_elsewhere(statement: str, row_id: int) -> bool:
        with db.connect() as other:
            try:
                other.execute(text(statement), {"id": row_id})
            except DBAPIError as error:
                assert sqlstate(error) == "55P03"  # lock_not_available
                return False
            return True

    def while_locked(connection) -> tuple[bool, bool]:
        connection.execute(LOCK_SESSION, {"session_id": session_id}).one()
        return (
            lockable_elsewhere(
                "SELECT 1 FROM course_schedules WHERE id = :id FOR UPDATE NOWAIT", session_id
            ),
            lockable_elsewhere("SELECT 1 FROM courses WHERE id = :id FOR UPDATE NOWAIT", course_id),
        )

    session_lockable, course_lockable = run_transaction(while_locked)

    assert (session_lockable, course_lockable) == (False, True)
