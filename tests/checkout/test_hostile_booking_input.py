"""POST /api/bookings under hostile input: always a clear 4xx or a faithful 201, never 5xx."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.conftest import load_function, rest_event
from tests.factories import add_session, booking_body

pytestmark = pytest.mark.usefixtures("db", "customer_accounts_on")


@pytest.fixture(scope="module")
def create_booking():
    return load_function("create_booking")


@pytest.fixture
def session_id(db) -> int:
    with db.begin() as connection:
        return add_session(connection, max_capacity=100)


def post(handler, context, body, headers=None):
    response = handler.lambda_handler(
        rest_event("POST", "/api/bookings", body, headers=headers), context
    )
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("Robert'); DROP TABLE users;--", "O'Brien"),
        ("%_\\", "' OR '1'='1"),
        ("Zoë", "Ødegård-Łukasiewicz"),
        ("محمد", "العلي"),
        ("שרה", "כהן"),
        ("\u202eevil", "\u200bzero width"),
        ("🚑", "李"),
    ],
)
def test_names_are_stored_exactly_as_given(
    db, create_booking, lambda_context, session_id, first, last
):
    status, _ = post(
        create_booking, lambda_context, booking_body(session_id, firstName=first, lastName=last)
    )

    assert status == 201
    with db.connect() as connection:
        stored = connection.execute(text("SELECT name FROM users")).scalar_one()
        customers = connection.execute(text("SELECT count(*) FROM users")).scalar_one()
    assert stored == f"{first} {last}"
    assert customers == 1


@pytest.mark.parametrize(
    ("email", "stored"),
    [
        ("Sam+Training@Example.com", "sam+training@example.com"),
        ("info@BÜCHER.de", "info@bücher.de"),
        ("  tab.and.space@example.com\t", "tab.and.space@example.com"),
    ],
)
def test_unusual_but_valid_emails_are_normalised(
    db, create_booking, lambda_context, session_id, email, stored
):
    status, _ = post(create_booking, lambda_context, booking_body(session_id, email=email))

    assert status == 201
    with db.connect() as connection:
        assert connection.execute(text("SELECT email FROM users")).scalar_one() == stored


def test_a_plus_tag_is_a_different_customer(db, create_booking, lambda_context, session_id):
    post(create_booking, lambda_context, booking_body(session_id, email="sam@example.com"))
    post(create_booking, lambda_context, booking_body(session_id, email="sam+work@example.com"))

    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 2


@pytest.mark.parametrize(
    "email",
    [
        "sam@example.com.",
        "sam@@example.com",
        "sam@",
        "@example.com",
        "sam example@x.com",
        "sam@exa mple.com",
        "a" * 250 + "@example.com",
        "sam@example..com",
        "'; --@x.com",
        "",
    ],
)
def test_malformed_emails_are_422_naming_email(create_booking, lambda_context, session_id, email):
    status, body = post(create_booking, lambda_context, booking_body(session_id, email=email))

    assert status == 422
    assert [error["field"] for error in body["errors"]] == ["email"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"numberOfParticipants": -1}, "numberOfParticipants"),
        ({"numberOfParticipants": 10**20}, "numberOfParticipants"),
        ({"numberOfParticipants": 1.5}, "numberOfParticipants"),
        ({"totalAmount": 1e308}, "totalAmount"),
        ({"totalAmount": "NaN"}, "totalAmount"),
        ({"totalAmount": "Infinity"}, "totalAmount"),
        ({"totalAmount": 0}, "totalAmount"),
        ({"courseSessionId": -5}, "courseSessionId"),
        ({"courseSessionId": 0}, "courseSessionId"),
        ({"courseSessionId": 2**63}, "courseSessionId"),
        ({"courseSessionId": None}, "courseSessionId"),
        ({"firstName": ["a"]}, "firstName"),
        ({"email": {"$ne": ""}}, "email"),
    ],
)
def test_out_of_range_and_wrongly_typed_values_are_422(
    db, create_booking, lambda_context, session_id, change, field
):
    status, body = post(create_booking, lambda_context, booking_body(session_id, **change))

    assert status == 422
    assert field in [error["field"] for error in body["errors"]]
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM bookings")).scalar_one() == 0


def test_a_one_megabyte_body_is_422_not_500(create_booking, lambda_context, session_id):
    huge = booking_body(session_id, specialRequirements="x" * 1_000_000)

    status, body = post(create_booking, lambda_context, huge)

    assert status == 422
    assert body["errors"][0]["field"] == "specialRequirements"


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [("text/plain", "just words"), ("application/xml", "<booking><email>a@b</email></booking>")],
)
def test_a_body_that_is_not_json_is_415(create_booking, lambda_context, content_type, raw):
    status, body = post(create_booking, lambda_context, raw, headers={"Content-Type": content_type})

    assert status == 415
    assert body["errors"] == [{"field": "body", "message": "send the body as application/json"}]


def test_a_form_encoded_body_is_validated_like_json(create_booking, lambda_context):
    raw = "courseSessionId=1&email=a%40b.com"

    status, body = post(
        create_booking,
        lambda_context,
        raw,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert status == 422
    assert "firstName" in [error["field"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json", "\x00\x01\x02"),
        ("application/json", '{"courseSessionId": 1' + "," * 100000 + "}"),
        ("application/json", "[" * 10000 + "]" * 10000),
    ],
)
def test_bodies_that_are_not_a_json_object_are_422(
    create_booking, lambda_context, content_type, raw
):
    status, body = post(create_booking, lambda_context, raw, headers={"Content-Type": content_type})

    assert status == 422
    assert body["errors"][0]["field"] == "body"


@pytest.mark.usefixtures("stripe_keys")
@pytest.mark.parametrize(
    "intent_id", ["", "   ", "pi_1/../../customers", "cus_123", "pi_x?expand=y"]
)
def test_an_empty_or_malformed_payment_intent_id_is_422_naming_it_and_books_nothing(
    db, create_booking, lambda_context, session_id, intent_id
):
    body = booking_body(session_id, paymentIntentId=intent_id)

    status, answer = post(create_booking, lambda_context, body)

    assert status == 422, answer
    assert [error["field"] for error in answer["errors"]] == ["paymentIntentId"]
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM bookings")).scalar_one() == 0
