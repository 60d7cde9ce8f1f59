"""Money beats a squatter (issue 23): an unpaid booking holds its seats for a payment window
only, never against a paid checkout, and never blocks or rewrites the paying customer."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import text

from rft_common.checkout.bookings import BookingRequest, create_booking
from rft_common.core.vocabulary import UNPAID_HOLD_MINUTES
from rft_common.db.postgres import run_transaction
from rft_tools.checks.integrity import oversold_sessions
from tests.checkout.test_booking_concurrency import run_at_once
from tests.checkout.test_payments import (
    EMAIL,
    call,
    create_intent,
    intent_body,
    new_session,
    paid_intent,
    post_booking,
    rows,
)
from tests.conftest import load_function, rest_event
from tests.factories import booking_body, stats_mismatches
from tests.payment_helpers import pay

pytestmark = pytest.mark.usefixtures("db", "stripe_keys", "customer_accounts_on")


@pytest.fixture(scope="module")
def checkout_function():
    return load_function("create_booking", "holds")


def listed_spots(handler, context, session_id: int) -> int | None:
    """The session's ``availableSpots`` in the public list, None when it is not listed."""
    status, sessions, _ = call(
        handler, context, rest_event("GET", "/api/courses/sessions/available")
    )
    assert status == 200
    return next((item["availableSpots"] for item in sessions if item["id"] == session_id), None)


def squat(handler, context, session_id: int, email: str, places: int = 1, **details) -> dict:
    body = booking_body(
        session_id, email=email, numberOfParticipants=places, totalAmount=75 * places
    )
    status, answer = post_booking(handler, context, body | details)
    assert status == 201, answer
    assert (answer["status"], answer["paymentStatus"]) == ("pending", "pending")
    return answer


def test_an_unpaid_booking_holds_its_seat_for_the_payment_window_only(
    db, checkout_function, lambda_context
):
    session_id = new_session(db, max_capacity=1)
    squat(checkout_function, lambda_context, session_id, "squatter@example.com")
    assert listed_spots(checkout_function, lambda_context, session_id) is None
    (window,) = rows(db, "SELECT hold_expires_at - created_at AS window FROM bookings")
    assert window.window.total_seconds() == UNPAID_HOLD_MINUTES * 60

    with db.begin() as connection:  # the payment window passes
        connection.execute(text("UPDATE bookings SET hold_expires_at = now() - interval '1s'"))

    assert listed_spots(checkout_function, lambda_context, session_id) == 1
    squat(checkout_function, lambda_context, session_id, "next@example.com")
    assert listed_spots(checkout_function, lambda_context, session_id) is None


def test_a_paid_checkout_wins_seats_held_by_unpaid_bookings_at_the_intent_and_the_booking(
    db, checkout_function, lambda_context, stripe_keys
):
    session_id = new_session(db, max_capacity=2)
    for n in range(2):
        squat(checkout_function, lambda_context, session_id, f"squatter{n}@example.com")
    assert listed_spots(checkout_function, lambda_context, session_id) is None

    paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id, 2, 15000)
    body = booking_body(
        session_id, email=EMAIL, paymentIntentId=paid, numberOfParticipants=2, totalAmount=150
    )
    status, answer = post_booking(checkout_function, lambda_context, body)

    assert status == 201, answer
    assert (answer["status"], answer["paymentStatus"]) == ("confirmed", "paid")
    with db.connect() as connection:
        assert oversold_sessions(connection, [session_id]) == []
    # The squatters' holds no longer fit: no one else is offered or given a seat.
    assert listed_spots(checkout_function, lambda_context, session_id) is None
    late = booking_body(session_id, email="late@example.com")
    assert post_booking(checkout_function, lambda_context, late)[0] == 409


def test_paid_checkouts_racing_unpaid_bookings_for_the_last_seats_never_oversell(
    db, checkout_function, lambda_context, stripe_keys
):
    session_id = new_session(db, max_capacity=3)
    payers = [f"payer{n}@example.com" for n in range(2)]
    intents = []
    for payer in payers:  # both intents are taken while the seats are free
        status, answer = create_intent(
            checkout_function,
            lambda_context,
            intent_body(session_id, 2, 15000, email=payer),
        )
        assert status == 200, answer
        pay(stripe_keys, answer["paymentIntentId"])
        intents.append(answer["paymentIntentId"])
    paid_bodies = [
        booking_body(
            session_id, email=payer, paymentIntentId=pi, numberOfParticipants=2, totalAmount=150
        )
        for payer, pi in zip(payers, intents, strict=True)
    ]
    unpaid_bodies = [booking_body(session_id, email=f"squat{n}@example.com") for n in range(10)]

    results = run_at_once([(body, None) for body in paid_bodies + unpaid_bodies])

    paid_results = Counter(
        (status, body.get("status")) for status, body in results[: len(paid_bodies)]
    )
    assert paid_results == {(201, "confirmed"): 1, (409, None): 1}
    unpaid_accepted = sum(status == 201 for status, _ in results[len(paid_bodies) :])
    assert unpaid_accepted <= 3
    with db.connect() as connection:
        assert oversold_sessions(connection, [session_id]) == []
        assert stats_mismatches(connection) == []
        committed = connection.execute(
            text("SELECT seats_committed, seats_taken FROM session_seats WHERE id = :id"),
            {"id": session_id},
        ).one()
    assert committed.seats_committed == 2


def test_a_strangers_unpaid_booking_neither_blocks_nor_rewrites_the_paying_customer(
    db, checkout_function, lambda_context, stripe_keys
):
    session_id = new_session(db)
    squatted = squat(
        checkout_function,
        lambda_context,
        session_id,
        EMAIL,
        firstName="Mallory",
        lastName="Planted",
        phone="07000 666666",
        company="Squat Ltd",
    )
    (planted,) = rows(db, "SELECT name, phone, company_name, details_source FROM users")
    assert tuple(planted) == ("Mallory Planted", "07000 666666", "Squat Ltd", "unpaid_booking")

    paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)
    body = booking_body(session_id, email=EMAIL, paymentIntentId=paid, company=None)
    status, answer = post_booking(checkout_function, lambda_context, body)

    assert status == 201, answer
    assert (answer["status"], answer["paymentStatus"]) == ("confirmed", "paid")
    (customer,) = rows(
        db, "SELECT name, phone, company_name, customer_type, details_source FROM users"
    )
    assert tuple(customer) == ("Sam Patel", "07700 900123", None, "individual", "paid_booking")
    (superseded,) = rows(db, "SELECT status FROM bookings WHERE id = :id", id=squatted["bookingId"])
    assert superseded.status == "cancelled"
    with db.connect() as connection:
        assert stats_mismatches(connection) == []

    # A later stranger's unpaid booking (another session) changes nothing.
    squat(
        checkout_function,
        lambda_context,
        new_session(db),
        EMAIL,
        firstName="Mallory",
        lastName="Again",
        phone="07000 666666",
    )
    (after,) = rows(db, "SELECT name, phone, company_name, details_source FROM users")
    assert tuple(after) == ("Sam Patel", "07700 900123", None, "paid_booking")


def test_staff_can_record_an_unpaid_booking_that_keeps_its_seats(db):
    session_id = new_session(db, max_capacity=1)
    request = BookingRequest.model_validate(booking_body(session_id, email="invoice@example.com"))

    outcome = run_transaction(
        lambda connection: create_booking(
            connection, request, link_customer=True, staff_recorded=True
        )
    )

    assert (outcome.body["status"], outcome.body["paymentStatus"]) == ("pending", "pending")
    (booking,) = rows(db, "SELECT hold_expires_at FROM bookings")
    assert booking.hold_expires_at is None
    (seats,) = rows(db, "SELECT seats_committed FROM session_seats WHERE id = :id", id=session_id)
    assert seats.seats_committed == 1
