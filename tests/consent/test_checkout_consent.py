"""What a paid checkout records about its buyer's consent (issue 26): explicit consent,
a soft opt-in resting on the purchase, an objection; never a resubscription."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from rft_common.consent.service import object_to
from rft_common.core.settings import get_settings
from rft_common.core.vocabulary import MARKETING_EMAIL, RENEWAL_REMINDERS
from rft_common.db.postgres import run_transaction
from tests.checkout.test_payments import (
    EMAIL,
    call,
    create_intent,
    intent_body,
    new_session,
    post_booking,
    succeeded_event,
)
from tests.conftest import load_function
from tests.factories import booking_body
from tests.payment_helpers import pay, webhook_event

pytestmark = pytest.mark.usefixtures("db", "stripe_keys", "customer_accounts_on")

NOTICE = "checkout-2026-12"


@pytest.fixture(scope="module")
def checkout_function():
    return load_function("create_booking", "consent")


@pytest.fixture(scope="module")
def webhook_function():
    return load_function("stripe_webhook", "consent")


@pytest.fixture
def notice_version(monkeypatch):
    monkeypatch.setenv("CHECKOUT_CONSENT_NOTICE_VERSION", NOTICE)
    get_settings.cache_clear()


def consents(db) -> list[tuple[Any, ...]]:
    with db.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT e.purpose, e.basis, e.source, e.notice_version, b.booking_reference "
                    "FROM consent_events AS e LEFT JOIN bookings AS b ON b.id = e.booking_id "
                    "ORDER BY e.id"
                )
            ).all()
        ]


def customer(db) -> Any:
    with db.connect() as connection:
        return connection.execute(
            text("SELECT id, marketing_consent FROM users WHERE email_normalized = :email"),
            {"email": EMAIL},
        ).one()


def paid_booking(checkout, context, stripe_keys, db, *, via="browser", webhook=None, **choices):
    """A paid checkout with ``choices`` in its ``bookingData`` (and in the browser's
    booking body when ``via`` is ``browser``): its booking reference."""
    session_id = new_session(db)
    status, answer = create_intent(checkout, context, intent_body(session_id, **choices))
    assert status == 200, answer
    intent_id = answer["paymentIntentId"]
    pay(stripe_keys, intent_id)
    if via == "browser":
        body = booking_body(session_id, email=EMAIL, paymentIntentId=intent_id) | choices
        status, answer = post_booking(checkout, context, body)
        assert status == 201, answer
        return answer["bookingReference"]
    status, answer, _ = call(
        webhook, context, webhook_event(succeeded_event(stripe_keys, intent_id))
    )
    assert (status, answer["outcome"]) == (200, "booked"), answer
    with db.connect() as connection:
        return connection.execute(
            text("SELECT booking_reference FROM bookings WHERE stripe_payment_intent_id = :id"),
            {"id": intent_id},
        ).scalar_one()


@pytest.mark.usefixtures("notice_version")
def test_a_paid_booking_gives_its_buyer_a_soft_opt_in_to_reminders_resting_on_it(
    db, checkout_function, lambda_context, stripe_keys
):
    reference = paid_booking(checkout_function, lambda_context, stripe_keys, db)

    assert consents(db) == [(RENEWAL_REMINDERS, "soft_opt_in", "checkout", NOTICE, reference)]
    assert customer(db).marketing_consent is False


def test_without_a_configured_opt_out_notice_no_soft_opt_in_is_recorded(
    db, checkout_function, lambda_context, stripe_keys
):
    paid_booking(checkout_function, lambda_context, stripe_keys, db)

    assert consents(db) == []


@pytest.mark.usefixtures("notice_version")
def test_an_unpaid_booking_records_nothing(db, checkout_function, lambda_context):
    session_id = new_session(db)
    body = booking_body(session_id, marketingConsent=True)
    status, answer = post_booking(checkout_function, lambda_context, body)

    assert status == 201, answer
    assert consents(db) == []


@pytest.mark.usefixtures("notice_version")
@pytest.mark.parametrize("via", ["browser", "webhook"])
def test_explicit_consent_from_the_checkout_covers_both_purposes(
    db, checkout_function, webhook_function, lambda_context, stripe_keys, via
):
    reference = paid_booking(
        checkout_function,
        lambda_context,
        stripe_keys,
        db,
        via=via,
        webhook=webhook_function,
        marketingConsent=True,
    )

    assert consents(db) == [
        (MARKETING_EMAIL, "explicit_consent", "checkout", NOTICE, reference),
        (RENEWAL_REMINDERS, "explicit_consent", "checkout", NOTICE, reference),
    ]
    assert customer(db).marketing_consent is True


@pytest.mark.usefixtures("notice_version")
@pytest.mark.parametrize("via", ["browser", "webhook"])
def test_an_opt_out_is_an_objection_that_a_later_checkout_does_not_undo(
    db, checkout_function, webhook_function, lambda_context, stripe_keys, via
):
    first = paid_booking(
        checkout_function,
        lambda_context,
        stripe_keys,
        db,
        via=via,
        webhook=webhook_function,
        renewalRemindersOptOut=True,
    )
    paid_booking(checkout_function, lambda_context, stripe_keys, db)
    paid_booking(checkout_function, lambda_context, stripe_keys, db, renewalRemindersOptOut=True)

    assert consents(db) == [(RENEWAL_REMINDERS, "objection", "checkout", NOTICE, first)]


@pytest.mark.usefixtures("notice_version")
def test_after_unsubscribing_a_checkout_does_not_resubscribe_without_new_consent(
    db, checkout_function, lambda_context, stripe_keys
):
    paid_booking(checkout_function, lambda_context, stripe_keys, db)
    user_id = customer(db).id
    run_transaction(lambda c: object_to(c, [user_id], RENEWAL_REMINDERS, "unsubscribe_link"))

    paid_booking(checkout_function, lambda_context, stripe_keys, db)
    with db.connect() as connection:
        state = connection.execute(
            text("SELECT basis, source FROM current_consents WHERE purpose = :purpose"),
            {"purpose": RENEWAL_REMINDERS},
        ).one()
    assert tuple(state) == ("objection", "unsubscribe_link")

    renewed = paid_booking(
        checkout_function, lambda_context, stripe_keys, db, marketingConsent=True
    )
    assert consents(db)[-1] == (RENEWAL_REMINDERS, "explicit_consent", "checkout", NOTICE, renewed)


@pytest.mark.parametrize("value", ["perhaps", "true", 0, 1])
def test_consent_fields_must_be_booleans(db, checkout_function, lambda_context, value):
    session_id = new_session(db)
    status, answer = post_booking(
        checkout_function, lambda_context, booking_body(session_id, marketingConsent=value)
    )

    assert status in (400, 422), answer
    assert "marketingConsent" in str(answer)
