"""The customer's email for a paid booking, end to end: the checkout's and Stripe's real
handlers, localstripe, a real PostgreSQL, the outbox drained into moto's SES, and the
messages read back as ``rft mail list`` reads them."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from rft_common.checkout.bookings import BookingRequest, create_booking
from rft_common.checkout.stripe_api import PaymentIntent
from rft_common.checkout.webhook import handle_event
from rft_common.db.postgres import run_transaction
from rft_common.email import outbox
from rft_tools.local.mail import sent_mail
from tests.checkout.test_payments import (
    EMAIL,
    call,
    new_session,
    paid_intent,
    post_booking,
    succeeded_event,
    webhook_event,
)
from tests.conftest import load_function
from tests.factories import booking_body

pytestmark = pytest.mark.usefixtures("db", "stripe_keys", "customer_accounts_on", "local_ses")


@pytest.fixture(scope="module")
def checkout_function():
    return load_function("create_booking", "emails")


@pytest.fixture(scope="module")
def webhook_function():
    return load_function("stripe_webhook", "emails")


def queued(db, session_id: int) -> list[tuple[str, str]]:
    with db.connect() as connection:
        return connection.execute(
            text(
                "SELECT o.kind, o.recipient FROM email_outbox AS o "
                "JOIN bookings AS b ON CAST(b.id AS text) = o.dedupe_key "
                "WHERE b.course_schedule_id = :s"
            ),
            {"s": session_id},
        ).all()


def test_racing_browser_and_webhook_and_redeliveries_send_one_confirmation(
    db, checkout_function, webhook_function, lambda_context, stripe_keys, local_ses
):
    sessions = []
    for _ in range(3):
        session_id = new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)
        payload = succeeded_event(stripe_keys, paid)
        body = booking_body(session_id, email=EMAIL, paymentIntentId=paid)
        barrier = threading.Barrier(3)

        def browser(body=body, barrier=barrier) -> None:
            barrier.wait()
            post_booking(checkout_function, lambda_context, body)

        def webhook(payload=payload, barrier=barrier) -> None:
            # The webhook's domain code, not its handler: two Powertools resolvers in
            # threads of one process share the current request (tests/checkout/
            # test_payments.py's race says why); Lambda runs one request per process.
            barrier.wait()
            handle_event(json.loads(payload))

        threads = [threading.Thread(target=t) for t in (browser, webhook, webhook)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        call(webhook_function, lambda_context, webhook_event(payload))  # redelivered later
        sessions.append(session_id)

    outbox.drain()
    outbox.drain()

    for session_id in sessions:
        assert queued(db, session_id) == [("booking_confirmation", EMAIL)]
    mails = sent_mail(local_ses, to=EMAIL)
    with db.connect() as connection:
        references = (
            connection.execute(text("SELECT booking_reference FROM bookings ORDER BY id DESC"))
            .scalars()
            .all()
        )
    assert [mail.subject.rsplit("(", 1)[1].rstrip(")") for mail in mails] == references
    first = mails[0]
    assert first.subject.startswith("Booking confirmed: Emergency First Aid at Work, ")
    for fact in (references[0], "Sheffield", "Places: 1", "Amount paid: £75.00", "Photo ID"):
        assert fact in first.text
    assert "07447 485644" in first.html


def test_a_paid_booking_without_a_seat_gets_the_staff_will_contact_you_email(
    db, checkout_function, webhook_function, lambda_context, stripe_keys, local_ses
):
    session_id = new_session(db, max_capacity=1)
    paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)
    other = booking_body(session_id, email="other@example.com")
    assert post_booking(checkout_function, lambda_context, other)[0] == 201  # unpaid: no email
    with db.begin() as connection:  # staff keep it (an unpaid hold alone yields to money)
        connection.execute(text("UPDATE bookings SET hold_expires_at = NULL"))

    call(webhook_function, lambda_context, webhook_event(succeeded_event(stripe_keys, paid)))
    outbox.drain()

    [mail] = sent_mail(local_ses)
    assert mail.to == [EMAIL]
    assert mail.subject.startswith("We have your payment for Emergency First Aid at Work")
    assert "was fully booked" in mail.text
    assert "will contact you" in mail.text
    assert queued(db, session_id) == [("booking_unplaced", EMAIL)]


def test_a_booking_that_rolls_back_sends_nothing(db, local_ses):
    session_id = new_session(db)
    request = BookingRequest.model_validate(booking_body(session_id, email=EMAIL))
    payment = PaymentIntent.from_stripe(
        {"id": "pi_rolled_back", "status": "succeeded", "amount": 7500, "currency": "gbp"}
    )

    def work(connection) -> None:
        create_booking(connection, request, link_customer=False, payment=payment)
        raise RuntimeError("the booking's transaction fails after the insert")

    with pytest.raises(RuntimeError):
        run_transaction(work)
    outbox.drain()

    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM email_outbox")).scalar_one() == 0
    assert sent_mail(local_ses) == []
