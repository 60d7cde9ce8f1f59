"""Attendees of a booking: the booker and the checkout's named participants, through the
real handlers (intent, browser post, Stripe's webhook), PostgreSQL and localstripe."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from sqlalchemy import text

from rft_common.db.postgres import run_transaction
from tests.checkout.test_payments import (
    EMAIL,
    call,
    create_intent,
    intent_body,
    new_session,
    post_booking,
    rows,
    succeeded_event,
)
from tests.conftest import load_function
from tests.payment_helpers import pay, webhook_event

pytestmark = pytest.mark.usefixtures("db", "stripe_keys", "customer_accounts_on")

PARTICIPANTS = [
    {
        "firstName": "Ann",
        "lastName": "Lee",
        "email": " Ann.Lee@Example.com",
        "dietaryRequirements": "vegan",
    },
    {
        "firstName": "Bob",
        "lastName": "Khan",
        "email": "bob.khan@example.com",
        "medicalConditions": "asthma",
    },
    {"firstName": "Cat", "lastName": "Ng", "email": "cat.ng@example.com"},
    {"firstName": "Dan", "lastName": "Roe", "email": ""},
]
"""With the booker, five places: three more with emails (one already a customer), and
two by name only (Dan's blank email and the booker's place numbered 1)."""


@pytest.fixture(scope="module")
def checkout_function():
    return load_function("create_booking", "attendees")


@pytest.fixture(scope="module")
def webhook_function():
    return load_function("stripe_webhook", "attendees")


def group_intent(db, checkout_function, lambda_context, stripe_keys, participants=PARTICIPANTS):
    session_id = new_session(db)
    first = intent_body(session_id, 5, 33750, participantDetails=participants)
    status, answer = create_intent(checkout_function, lambda_context, first)
    assert status == 200, answer
    # The site's second call carries no participantDetails: what the first stored stays.
    status, again = create_intent(
        checkout_function, lambda_context, intent_body(session_id, 5, 33750)
    )
    assert status == 200 and again["paymentIntentId"] == answer["paymentIntentId"]
    pay(stripe_keys, answer["paymentIntentId"])
    return session_id, answer["paymentIntentId"]


def test_a_five_place_group_through_the_webhook_records_five_attendees(
    db, checkout_function, webhook_function, lambda_context, stripe_keys, caplog
):
    with db.begin() as connection:
        existing = connection.execute(
            text(
                "INSERT INTO users (email, name, role) "
                "VALUES ('cat.ng@example.com', 'Cat Ng', 'customer') "
                "RETURNING id"
            )
        ).scalar_one()
    # INFO, the functions' level: Powertools' own DEBUG echoes every request body.
    caplog.set_level(logging.INFO)
    _, paid = group_intent(db, checkout_function, lambda_context, stripe_keys)

    status, answer, _ = call(
        webhook_function, lambda_context, webhook_event(succeeded_event(stripe_keys, paid))
    )

    assert (status, answer["outcome"]) == (200, "booked")
    (booking,) = rows(db, "SELECT * FROM bookings")
    attendees = rows(db, "SELECT * FROM booking_attendees ORDER BY position")
    users = {u.email: u for u in rows(db, "SELECT * FROM users")}
    assert [(a.position, a.first_name, a.last_name, a.email) for a in attendees] == [
        (1, "Sam", "Patel", EMAIL),
        (2, "Ann", "Lee", "ann.lee@example.com"),
        (3, "Bob", "Khan", "bob.khan@example.com"),
        (4, "Cat", "Ng", "cat.ng@example.com"),
        (5, "Dan", "Roe", None),
    ]
    assert {a.booking_id for a in attendees} == {booking.id}
    assert [a.user_id for a in attendees] == [
        booking.user_id,
        users["ann.lee@example.com"].id,
        users["bob.khan@example.com"].id,
        existing,
        None,
    ]
    assert users["ann.lee@example.com"].name == "Ann Lee"
    assert (attendees[1].dietary_requirements, attendees[2].medical_conditions) == (
        "vegan",
        "asthma",
    )
    # Who paid and who learned: the booker's spend is the whole amount, nobody else's.
    assert users[EMAIL].total_spent == Decimal("337.50")
    assert {u.total_spent for e, u in users.items() if e != EMAIL} == {Decimal("0.00")}
    logged = caplog.text
    assert "asthma" not in logged and "vegan" not in logged


def test_the_browser_post_records_the_same_attendees_and_the_webhook_changes_nothing(
    db, checkout_function, webhook_function, lambda_context, stripe_keys
):
    session_id, paid = group_intent(db, checkout_function, lambda_context, stripe_keys)
    from tests.factories import booking_body

    body = booking_body(
        session_id, paymentIntentId=paid, numberOfParticipants=5, totalAmount="337.50"
    )
    status, answer = post_booking(checkout_function, lambda_context, body)
    assert status == 201, answer
    _, event, _ = call(
        webhook_function, lambda_context, webhook_event(succeeded_event(stripe_keys, paid))
    )

    assert event["outcome"] == "already_booked"
    positions = rows(db, "SELECT position, email FROM booking_attendees ORDER BY position")
    assert [p.position for p in positions] == [1, 2, 3, 4, 5]
    assert positions[0].email == EMAIL


def test_an_unpaid_single_booking_records_the_booker_alone(db, checkout_function, lambda_context):
    from tests.factories import booking_body, customer_of

    session_id = new_session(db)
    status, answer = post_booking(checkout_function, lambda_context, booking_body(session_id))
    assert status == 201, answer
    (attendee,) = rows(db, "SELECT * FROM booking_attendees")
    assert (attendee.position, attendee.user_id) == (1, customer_of(db, answer))


@pytest.mark.parametrize(
    ("participants", "field"),
    [
        ([*PARTICIPANTS, {"firstName": "Eve", "lastName": "Fox"}], "bookingData"),
        (
            [{"firstName": "Ann", "lastName": "Lee", "email": "not an email"}],
            "bookingData.participantDetails.0.email",
        ),
        ([{"firstName": "", "lastName": "Lee"}], "bookingData.participantDetails.0.firstName"),
    ],
)
def test_bad_participant_details_are_refused_naming_the_field(
    db, checkout_function, lambda_context, participants, field
):
    session_id = new_session(db)
    body = intent_body(session_id, 5, 33750, participantDetails=participants)
    status, answer = create_intent(checkout_function, lambda_context, body)
    assert status == 422, answer
    assert field in {error["field"] for error in answer["errors"]}
    assert rows(db, "SELECT * FROM payment_checkouts") == []


def test_participants_beyond_the_booked_places_are_neither_recorded_nor_made_customers(db):
    """The intent call never stores more participants than places less the booker's;
    should a checkout hold more (written by hand, or by an older version), those beyond
    the paid places are not recorded, nor made customers, and no copy is kept."""
    from rft_common.customers.attendees import record_participants
    from tests.factories import legacy_insert_booking

    places = 2
    session_id = new_session(db)
    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO payment_checkouts (checkout_key, generation, payment_intent_id, "
                "course_schedule_id, number_of_attendees, amount_pence, participant_details) "
                "VALUES ('k', 2, 'pi_fewer', :session, :places, 7500, CAST(:details AS jsonb))"
            ),
            {"session": session_id, "places": places, "details": json.dumps(PARTICIPANTS[1:3])},
        )
        booking_id = legacy_insert_booking(
            connection, session_id=session_id, email="booker@example.com", reference="RFT-FEWER"
        )

    run_transaction(
        lambda connection: record_participants(
            connection,
            booking_id=booking_id,
            places=places,
            payment_intent_id="pi_fewer",
            link_customers=True,
        )
    )

    assert rows(db, "SELECT participant_details FROM payment_checkouts")[0][0] is None
    assert [a.email for a in rows(db, "SELECT email FROM booking_attendees")] == [
        "bob.khan@example.com"
    ]
    assert [u.email for u in rows(db, "SELECT email FROM users ORDER BY id")] == [
        "bob.khan@example.com"
    ]
