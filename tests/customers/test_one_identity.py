"""One identity per person everywhere (issue 23, outcome 6): an email whose accent is
composed (NFC, "é") and the same email with it decomposed (NFD, "e" + U+0301) are one
customer through the checkout, the PaymentIntent, the backfill, the "already booked"
guard (of bookings without a payment window: here, staff's) and the staff sign-in."""

from __future__ import annotations

import unicodedata

import pytest

from rft_common.backfill.service import process_batch
from rft_common.checkout.bookings import BookingRequest, create_booking
from rft_common.core.errors import Conflict
from rft_common.db.postgres import run_transaction
from rft_common.staff import service as staff
from tests.backfill_helpers import contact, insert_legacy_bookings, key_message
from tests.checkout.test_payments import (
    create_intent,
    intent_body,
    new_session,
    post_booking,
    rows,
)
from tests.factories import booking_body, customer_of
from tests.payment_helpers import pay

pytestmark = pytest.mark.usefixtures("db", "stripe_keys", "customer_accounts_on")

COMPOSED = "Jos\u00e9.Nu\u00f1ez@example.com"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)


@pytest.fixture(scope="module")
def checkout_function():
    from tests.conftest import load_function

    return load_function("create_booking", "identity")


def test_the_two_forms_differ_as_text():
    assert COMPOSED != DECOMPOSED and len(DECOMPOSED) == len(COMPOSED) + 2


def test_bookings_in_either_form_are_one_customer_and_the_second_is_already_booked(
    db, checkout_function, lambda_context
):
    first, second = new_session(db), new_session(db)

    decomposed = post_booking(
        checkout_function, lambda_context, booking_body(first, email=DECOMPOSED)
    )
    composed = post_booking(checkout_function, lambda_context, booking_body(second, email=COMPOSED))
    refusals = []
    for session, email in ((first, COMPOSED), (second, DECOMPOSED)):
        request = BookingRequest.model_validate(booking_body(session, email=email))
        with pytest.raises(Conflict) as refused:
            run_transaction(
                lambda connection, request=request: create_booking(
                    connection, request, link_customer=True, staff_recorded=True
                )
            )
        refusals.append(refused.value.message)

    assert composed[0] == decomposed[0] == 201
    assert customer_of(db, composed[1]) == customer_of(db, decomposed[1]) is not None
    assert all("already" in message for message in refusals)
    assert [row.email_normalized for row in rows(db, "SELECT email_normalized FROM users")] == [
        "josé.nuñez@example.com"
    ]


def test_an_intent_made_in_one_form_pays_a_booking_in_the_other(
    db, checkout_function, lambda_context, stripe_keys
):
    session_id = new_session(db)
    made = create_intent(checkout_function, lambda_context, intent_body(session_id, email=COMPOSED))
    replayed = create_intent(
        checkout_function, lambda_context, intent_body(session_id, email=DECOMPOSED)
    )
    pay(stripe_keys, made[1]["paymentIntentId"])

    booked = post_booking(
        checkout_function,
        lambda_context,
        booking_body(
            session_id,
            email=DECOMPOSED,
            firstName="Sam",
            lastName="Patel",
            company="Acme Ltd",
            paymentIntentId=made[1]["paymentIntentId"],
        ),
    )

    assert made[1]["paymentIntentId"] == replayed[1]["paymentIntentId"]
    assert booked[0] == 201, booked[1]
    assert booked[1]["paymentStatus"] == "paid"


def test_the_backfill_links_legacy_bookings_in_either_form_to_the_checkouts_customer(
    db, checkout_function, lambda_context
):
    first, second = new_session(db), new_session(db)
    answer = post_booking(checkout_function, lambda_context, booking_body(first, email=COMPOSED))[1]
    with db.begin() as connection:
        legacy = insert_legacy_bookings(
            connection, second, [contact(DECOMPOSED), contact(" JOSE\u0301.NU\u00d1EZ@Example.com")]
        )

    result = process_batch(key_message())

    linked = rows(db, "SELECT user_id FROM bookings WHERE id = ANY(:ids)", ids=legacy)
    assert {row.user_id for row in linked} == {customer_of(db, answer)}
    assert result.customers_created == 0
    assert rows(db, "SELECT count(*) FROM users")[0][0] == 1


def test_staff_sign_in_with_the_email_in_the_other_form(db, admin_secret):
    from tests.admin_helpers import add_user

    with db.begin() as connection:
        add_user(
            connection,
            "ren\u00e9e@reactfasttraining.co.uk",
            role="admin",
            password_hash=staff.hash_password("Correct-Horse-9", rounds=4),
        )

    session = staff.sign_in(
        unicodedata.normalize("NFD", "Ren\u00e9e@ReactFastTraining.co.uk"), "Correct-Horse-9"
    )

    assert session.user.email == "ren\u00e9e@reactfasttraining.co.uk"


def test_a_bounce_in_one_form_suppresses_mail_to_the_other(db):
    from rft_common.db.postgres import run_transaction
    from rft_common.email.suppression import suppress

    run_transaction(lambda connection: suppress(connection, "bounce", [DECOMPOSED.upper()]))

    stored = rows(db, "SELECT email_normalized FROM email_suppressions")
    assert [row.email_normalized for row in stored] == ["josé.nuñez@example.com"]


def test_operators_find_the_person_and_their_twins_in_either_form(db):
    from rft_common.privacy.service import user_id_for_email
    from rft_tools.checks.integrity import duplicate_customers
    from tests.admin_helpers import add_user

    with db.begin() as connection:
        person = add_user(connection, "jos\u00e9.nu\u00f1ez@example.com")
        # A row written around the checkout (a restored backup, the legacy app).
        twin = add_user(connection, DECOMPOSED)

        assert [(row.email, row.users) for row in duplicate_customers(connection)] == [
            ("josé.nuñez@example.com", 2)
        ]
    assert user_id_for_email(" " + DECOMPOSED.upper()) == person != twin
