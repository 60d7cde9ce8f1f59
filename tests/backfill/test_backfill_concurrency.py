"""Backfill batches in parallel: threads each with their own database connection,
started together, over customers shared between batches (and with live checkouts)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text

from rft_common.backfill.service import BackfillMessage, process_batch
from rft_common.checkout.bookings import BookingRequest, place_booking
from tests.backfill_helpers import contact, insert_legacy_bookings, message
from tests.factories import add_session, add_staff_user, booking_body, stats_mismatches

pytestmark = pytest.mark.usefixtures("db")

BATCHES = 8
BOOKINGS_PER_BATCH = 60
PEOPLE = 25


def all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def shared_customer_bookings(db, seed: int) -> list[BackfillMessage]:
    """Batches whose bookings all come from one small pool of people, in random order."""
    rng = random.Random(seed)
    variants = [str.lower, str.upper, lambda e: f"  {e.title()} "]
    with db.begin() as connection:
        session_id = add_session(connection)
        add_staff_user(connection, "Person3@Example.com", role="admin")
        ids = insert_legacy_bookings(
            connection,
            session_id,
            [
                contact(
                    rng.choice(variants)(f"person{rng.randrange(PEOPLE)}@example.com"),
                    name=f"Name {rng.randrange(100)}",
                    phone=rng.choice([None, "07700 900001", "07700 900002"]),
                )
                for _ in range(BATCHES * BOOKINGS_PER_BATCH)
            ],
        )
    return [
        message(ids[start], ids[start + BOOKINGS_PER_BATCH - 1], batch_id=f"batch-{start}")
        for start in range(0, len(ids), BOOKINGS_PER_BATCH)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parallel_batches_sharing_customers_link_everything_exactly_once(db, seed):
    messages = shared_customer_bookings(db, seed)

    results = all_at_once([lambda m=m: process_batch(m) for m in messages])

    with db.connect() as connection:
        customers = connection.execute(
            text("SELECT email_normalized, count(*) FROM users GROUP BY 1 HAVING count(*) > 1")
        ).all()
        users = connection.execute(text("SELECT count(*) FROM users")).scalar_one()
        unlinked = connection.execute(
            text("SELECT count(*) FROM bookings WHERE user_id IS NULL")
        ).scalar_one()
        assert stats_mismatches(connection) == []
    assert customers == []
    assert users == PEOPLE
    assert unlinked == 0
    assert sum(result.bookings_linked for result in results) == BATCHES * BOOKINGS_PER_BATCH
    assert sum(result.customers_created for result in results) == PEOPLE - 1


def test_checkouts_during_the_backfill_share_its_customers_without_duplicates(
    db, customer_accounts_on
):
    messages = shared_customer_bookings(db, seed=4)
    with db.begin() as connection:
        sessions = [add_session(connection) for _ in range(PEOPLE)]
    checkouts = [
        BookingRequest.model_validate(
            booking_body(session_id, email=f"Person{index}@example.com ", phone=None)
        )
        for index, session_id in enumerate(sessions)
    ]

    all_at_once(
        [lambda m=m: process_batch(m) for m in messages]
        + [lambda request=request: place_booking(request) for request in checkouts]
    )

    with db.connect() as connection:
        users = connection.execute(text("SELECT count(*) FROM users")).scalar_one()
        unlinked = connection.execute(
            text("SELECT count(*) FROM bookings WHERE user_id IS NULL")
        ).scalar_one()
        assert stats_mismatches(connection) == []
    assert users == PEOPLE
    assert unlinked == 0
