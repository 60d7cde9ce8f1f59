"""Checkout payments end to end: the real handlers, a real PostgreSQL and localstripe.

The browser's part (Stripe.js confirming the card) is played with the stripe SDK
against localstripe; Stripe's webhook deliveries are signed here with Stripe's scheme.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from rft_common.checkout.pricing import booking_price
from rft_common.checkout.webhook import handle_event
from rft_tools.checks.integrity import oversold_sessions
from tests.admin_helpers import call as admin_call
from tests.conftest import load_function, rest_event
from tests.factories import add_session, booking_body
from tests.payment_helpers import (
    intent,
    pay,
    refund_event,
    stripe_client,
    stripe_event,
    webhook_event,
)

pytestmark = pytest.mark.usefixtures("db", "stripe_keys", "customer_accounts_on")

EMAIL = "sam.patel@example.com"


@pytest.fixture(scope="module")
def checkout_function():
    return load_function("create_booking", "payments")


@pytest.fixture(scope="module")
def webhook_function():
    return load_function("stripe_webhook", "payments")


def call(handler, context, event) -> tuple[int, Any, dict]:
    response = handler.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"]), response


def intent_body(session_id: int, participants: int = 1, amount: int = 7500, **details):
    booking_data = {
        "firstName": "Sam",
        "lastName": "Patel",
        "email": EMAIL,
        "phone": "07700 900123",
        "companyName": "Acme Ltd",
        "specialRequirements": "wheelchair access",
        "numberOfParticipants": participants,
    } | details
    return {"courseSessionId": session_id, "amount": amount, "bookingData": booking_data}


def create_intent(
    handler,
    context,
    body,
    *,
    source_ip: str = "127.0.0.1",
    user_agent: str = "pytest",
    idempotency_key: str | None = None,
) -> tuple[int, Any]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    event = rest_event("POST", "/api/bookings/create-payment-intent", body, headers=headers)
    event["requestContext"]["identity"] = {"sourceIp": source_ip, "userAgent": user_agent}
    status, answer, _ = call(handler, context, event)
    return status, answer


def post_booking(handler, context, body) -> tuple[int, Any]:
    status, answer, _ = call(handler, context, rest_event("POST", "/api/bookings", body))
    return status, answer


def paid_intent(handler, context, stripe_keys, session_id, participants=1, amount=7500):
    status, answer = create_intent(handler, context, intent_body(session_id, participants, amount))
    assert status == 200, answer
    pay(stripe_keys, answer["paymentIntentId"])
    return answer["paymentIntentId"]


def succeeded_event(stripe_keys: str, intent_id: str, event_id: str | None = None) -> str:
    return stripe_event("payment_intent.succeeded", intent(stripe_keys, intent_id), event_id)


def rows(db, sql: str, **params) -> list[Any]:
    with db.connect() as connection:
        return connection.execute(text(sql), params).all()


def new_session(db, **options) -> int:
    with db.begin() as connection:
        return add_session(connection, **options)


class TestPricing:
    @pytest.mark.parametrize(
        ("price", "participants", "expected"),
        [
            ("75.00", 1, "75.00"),
            ("75.00", 4, "300.00"),
            ("75.00", 5, "337.50"),
            ("75.00", 12, "810.00"),
            ("33.33", 5, "149.99"),  # 166.65 less 16.665 = 149.985, half-up
            ("0.05", 5, "0.23"),  # 0.225 half-up
        ],
    )
    def test_price_times_participants_less_ten_percent_from_five(
        self, price, participants, expected
    ):
        assert booking_price(Decimal(price), participants) == Decimal(expected)

    def test_the_discount_is_configurable(self, monkeypatch):
        from rft_common.core import settings

        monkeypatch.setenv("GROUP_DISCOUNT_PERCENT", "20")
        monkeypatch.setenv("GROUP_DISCOUNT_MIN_PARTICIPANTS", "3")
        settings.get_settings.cache_clear()
        try:
            assert booking_price(Decimal("75.00"), 3) == Decimal("180.00")
            assert booking_price(Decimal("75.00"), 2) == Decimal("150.00")
        finally:
            monkeypatch.undo()
            settings.get_settings.cache_clear()


class TestPaymentIntent:
    def test_group_discount_five_at_75_charge_337_50_end_to_end(
        self, db, checkout_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)

        status, answer = create_intent(
            checkout_function, lambda_context, intent_body(session_id, 5, 33750)
        )
        assert status == 200, answer
        assert answer["success"] is True
        assert answer["clientSecret"] == answer["paymentIntent"]["client_secret"]
        assert answer["paymentIntent"]["amount"] == 33750
        assert answer["paymentIntent"]["currency"] == "gbp"
        pay(stripe_keys, answer["paymentIntentId"])

        status, booking = post_booking(
            checkout_function,
            lambda_context,
            booking_body(
                session_id,
                paymentIntentId=answer["paymentIntentId"],
                email=EMAIL,
                numberOfParticipants=5,
                totalAmount=337.50,
            ),
        )

        assert status == 201, booking
        assert (booking["status"], booking["paymentStatus"], booking["amount"]) == (
            "confirmed",
            "paid",
            "337.50",
        )
        (customer,) = rows(db, "SELECT total_spent FROM users")
        assert customer.total_spent == Decimal("337.50")

    def test_an_amount_other_than_the_servers_price_is_422_in_the_sites_shape(
        self, db, checkout_function, lambda_context
    ):
        session_id = new_session(db)

        status, answer = create_intent(
            checkout_function, lambda_context, intent_body(session_id, 5, 37500)
        )

        assert status == 422
        assert answer["success"] is False and "33750" in answer["error"]
        assert answer["errors"][0]["field"] == "amount"
        assert rows(db, "SELECT * FROM payment_checkouts") == []

    def test_invalid_body_full_started_and_unknown_sessions_are_refused_in_the_sites_shape(
        self, db, checkout_function, lambda_context
    ):
        full = new_session(db, max_capacity=2)
        started = new_session(db)
        with db.begin() as connection:
            connection.execute(
                text(
                    "UPDATE course_schedules SET start_datetime = now() - interval '1 hour' "
                    "WHERE id = :id"
                ),
                {"id": started},
            )

        cases = {
            "invalid": intent_body(full, 1, 7500, email="not an email"),
            "full": intent_body(full, 3, 22500),
            "started": intent_body(started, 1, 7500),
            "unknown": intent_body(999_999, 1, 7500),
        }
        answers = {
            name: create_intent(checkout_function, lambda_context, body)
            for name, body in cases.items()
        }

        assert {name: status for name, (status, _) in answers.items()} == {
            "invalid": 422,
            "full": 409,
            "started": 409,
            "unknown": 404,
        }
        assert all(answer["success"] is False for _, answer in answers.values())
        assert answers["invalid"][1]["errors"][0]["field"] == "bookingData.email"
        assert "already started" in answers["started"][1]["error"]
        assert rows(db, "SELECT * FROM payment_checkouts") == []

    def test_the_sites_first_call_shape_with_course_schedule_id_and_extra_fields_works(
        self, db, checkout_function, lambda_context
    ):
        session_id = new_session(db)
        body = intent_body(session_id, participantDetails=[], agreedToTerms=True)
        body["courseScheduleId"] = body.pop("courseSessionId")

        status, answer = create_intent(checkout_function, lambda_context, body)

        assert status == 200 and answer["success"] is True

    def test_the_double_call_and_ten_concurrent_retries_make_one_intent(
        self, db, checkout_function, lambda_context
    ):
        session_id = new_session(db)
        first = create_intent(checkout_function, lambda_context, intent_body(session_id))[1]
        second = create_intent(
            checkout_function,
            lambda_context,
            intent_body(session_id, email=" Sam.Patel@Example.COM"),
        )[1]
        handlers = [load_function("create_booking", f"retry{n}") for n in range(10)]
        answers: list[Any] = []

        def retry(handler) -> None:
            answers.append(create_intent(handler, lambda_context, intent_body(session_id)))

        threads = [threading.Thread(target=retry, args=(handler,)) for handler in handlers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        ids = {first["paymentIntentId"], second["paymentIntentId"]} | {
            answer["paymentIntentId"] for status, answer in answers if status == 200
        }
        assert [status for status, _ in answers] == [200] * 10
        assert len(ids) == 1
        assert rows(db, "SELECT count(*) FROM payment_checkouts")[0][0] == 1

    def test_a_cancelled_or_day_old_intent_is_replaced_by_a_new_one(
        self, db, checkout_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)
        first = create_intent(checkout_function, lambda_context, intent_body(session_id))[1]
        stripe_client(stripe_keys).v1.payment_intents.cancel(first["paymentIntentId"])
        second = create_intent(checkout_function, lambda_context, intent_body(session_id))[1]
        with db.begin() as connection:
            connection.execute(
                text("UPDATE payment_checkouts SET created_at = now() - interval '25 hours'")
            )
        third = create_intent(checkout_function, lambda_context, intent_body(session_id))[1]
        again = create_intent(checkout_function, lambda_context, intent_body(session_id))[1]

        ids = [answer["paymentIntentId"] for answer in (first, second, third, again)]
        assert len(set(ids[:3])) == 3 and ids[3] == ids[2]
        assert [row.generation for row in rows(db, "SELECT generation FROM payment_checkouts")] == [
            0,
            1,
            2,
        ]

    def test_stripe_unreachable_is_502_and_records_nothing(
        self, db, checkout_function, lambda_context, monkeypatch
    ):
        from rft_common.checkout import stripe_api
        from rft_common.core import settings

        session_id = new_session(db)
        monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:9")  # nothing listens
        settings.get_settings.cache_clear()
        stripe_api._client.cache_clear()

        intent_answer = create_intent(checkout_function, lambda_context, intent_body(session_id))
        booking_answer = post_booking(
            checkout_function,
            lambda_context,
            booking_body(session_id, email=EMAIL, paymentIntentId="pi_somewhere"),
        )

        assert intent_answer[0] == booking_answer[0] == 502
        assert intent_answer[1]["success"] is False
        assert rows(db, "SELECT * FROM payment_checkouts") == []
        assert rows(db, "SELECT * FROM bookings") == []

    def test_another_checkout_gets_another_intent(self, db, checkout_function, lambda_context):
        session_id = new_session(db)

        one = create_intent(checkout_function, lambda_context, intent_body(session_id))[1]
        two = create_intent(checkout_function, lambda_context, intent_body(session_id, 2, 15000))[1]

        assert one["paymentIntentId"] != two["paymentIntentId"]

    def test_a_stranger_sending_the_same_checkout_never_gets_its_client_secret(
        self, db, checkout_function, lambda_context
    ):
        session_id = new_session(db)
        body = intent_body(session_id)
        owner = create_intent(checkout_function, lambda_context, body)[1]

        answers = [
            create_intent(checkout_function, lambda_context, body, source_ip="203.0.113.9"),
            create_intent(checkout_function, lambda_context, body, user_agent="curl/8.5"),
            create_intent(checkout_function, lambda_context, body, idempotency_key="mine"),
        ]
        again = create_intent(checkout_function, lambda_context, body)[1]

        assert [status for status, _ in answers] == [200, 200, 200]
        secrets = {answer["clientSecret"] for _, answer in answers}
        assert owner["clientSecret"] not in secrets and len(secrets) == 3
        assert again["clientSecret"] == owner["clientSecret"]

    def test_the_same_caller_with_other_details_gets_another_intent(
        self, db, checkout_function, lambda_context
    ):
        session_id = new_session(db)

        one = create_intent(checkout_function, lambda_context, intent_body(session_id))[1]
        two = create_intent(
            checkout_function, lambda_context, intent_body(session_id, phone="07700 900999")
        )[1]

        assert one["paymentIntentId"] != two["paymentIntentId"]

    def test_an_idempotency_key_replays_its_body_only(self, db, checkout_function, lambda_context):
        session_id = new_session(db)
        body = intent_body(session_id)
        first = create_intent(checkout_function, lambda_context, body, idempotency_key="k-1")
        elsewhere = create_intent(
            checkout_function,
            lambda_context,
            body,
            idempotency_key="k-1",
            source_ip="198.51.100.7",
        )
        other_body = create_intent(
            checkout_function,
            lambda_context,
            intent_body(session_id, firstName="Mallory"),
            idempotency_key="k-1",
        )

        assert first[0] == elsewhere[0] == 200
        assert first[1]["paymentIntentId"] == elsewhere[1]["paymentIntentId"]
        assert other_body[0] == 422 and other_body[1]["success"] is False
        assert other_body[1]["errors"][0]["field"] == "Idempotency-Key"
        assert "clientSecret" not in other_body[1]

    def test_metadata_carries_the_booking_within_stripes_limits(
        self, db, checkout_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)
        answer = create_intent(
            checkout_function,
            lambda_context,
            intent_body(session_id, specialRequirements="x" * 500),
        )[1]

        metadata = intent(stripe_keys, answer["paymentIntentId"])["metadata"]

        assert metadata["rft_course_session_id"] == str(session_id)
        assert metadata["rft_participants"] == "1"
        assert len(metadata) <= 50
        assert all(len(key) <= 40 and len(value) <= 500 for key, value in metadata.items())

    def test_no_log_line_holds_the_client_secret(
        self, db, checkout_function, lambda_context, captured_logs
    ):
        session_id = new_session(db)

        answer = create_intent(checkout_function, lambda_context, intent_body(session_id))[1]

        assert answer["clientSecret"]
        assert answer["clientSecret"] not in captured_logs.getvalue()
        assert "_secret_" not in captured_logs.getvalue()


class TestFakePayments:
    """Each refused booking stores nothing."""

    def refused(self, db, checkout_function, lambda_context, body) -> tuple[int, Any]:
        before = rows(db, "SELECT count(*) FROM bookings")[0][0]
        status, answer = post_booking(checkout_function, lambda_context, body)
        assert rows(db, "SELECT count(*) FROM bookings")[0][0] == before
        return status, answer

    def test_a_made_up_intent_id_is_402(self, db, checkout_function, lambda_context):
        session_id = new_session(db)

        status, answer = self.refused(
            db,
            checkout_function,
            lambda_context,
            booking_body(session_id, paymentIntentId="pi_123"),
        )

        assert status == 402
        assert answer["errors"][0]["field"] == "paymentIntentId"

    def test_an_unpaid_intent_is_402(self, db, checkout_function, lambda_context):
        session_id = new_session(db)
        unpaid = create_intent(checkout_function, lambda_context, intent_body(session_id))[1]

        status, _ = self.refused(
            db,
            checkout_function,
            lambda_context,
            booking_body(session_id, email=EMAIL, paymentIntentId=unpaid["paymentIntentId"]),
        )

        assert status == 402

    def test_an_intent_for_another_amount_is_422(
        self, db, checkout_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)
        with db.begin() as connection:  # the price changes after the payment
            connection.execute(
                text("UPDATE course_schedules SET price = 80 WHERE id = :id"), {"id": session_id}
            )

        status, answer = self.refused(
            db,
            checkout_function,
            lambda_context,
            booking_body(session_id, email=EMAIL, paymentIntentId=paid, totalAmount=80.00),
        )

        assert status == 422
        assert answer["errors"][0]["field"] == "paymentIntentId"

    def test_an_intent_for_another_session_or_participants_is_422(
        self, db, checkout_function, lambda_context, stripe_keys
    ):
        session_id, other = new_session(db), new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)

        other_session = self.refused(
            db,
            checkout_function,
            lambda_context,
            booking_body(other, email=EMAIL, paymentIntentId=paid),
        )
        other_email = self.refused(
            db,
            checkout_function,
            lambda_context,
            booking_body(session_id, email="someone.else@example.com", paymentIntentId=paid),
        )

        assert other_session[0] == other_email[0] == 422

    def test_an_intent_already_used_by_another_booking_is_409(
        self, db, checkout_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)
        body = booking_body(session_id, email=EMAIL, paymentIntentId=paid)
        assert post_booking(checkout_function, lambda_context, body)[0] == 201
        with db.begin() as connection:  # the same email and intent on another booking
            connection.execute(text("UPDATE bookings SET number_of_attendees = 2"))

        status, answer = self.refused(db, checkout_function, lambda_context, body)

        assert status == 409
        assert answer["errors"][0]["field"] == "paymentIntentId"

    def test_a_booking_without_payment_intent_stays_pending(
        self, db, checkout_function, lambda_context
    ):
        session_id = new_session(db)

        status, answer = post_booking(checkout_function, lambda_context, booking_body(session_id))

        assert status == 201
        assert (answer["status"], answer["paymentStatus"]) == ("pending", "pending")


class TestWebhook:
    def test_a_bad_or_missing_signature_is_400_and_changes_nothing(
        self, db, checkout_function, webhook_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)
        payload = succeeded_event(stripe_keys, paid)

        statuses = [
            call(webhook_function, lambda_context, webhook_event(payload, header))[0]
            for header in ("t=1,v1=deadbeef", "", "t=1700000000,v1=" + "0" * 64)
        ]
        tampered = payload.replace('"amount": 7500', '"amount": 1')
        from tests.payment_helpers import signature

        statuses.append(
            call(
                webhook_function,
                lambda_context,
                webhook_event(tampered, signature(payload)),
            )[0]
        )
        statuses.append(
            call(
                webhook_function,
                lambda_context,
                webhook_event(payload, signature(payload, secret="whsec_someone_else")),
            )[0]
        )

        assert statuses == [400] * 5
        assert rows(db, "SELECT * FROM bookings") == []
        assert rows(db, "SELECT * FROM stripe_events") == []

    def test_the_webhook_alone_makes_exactly_one_linked_booking(
        self, db, checkout_function, webhook_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id, 5, 33750)

        status, answer, _ = call(
            webhook_function, lambda_context, webhook_event(succeeded_event(stripe_keys, paid))
        )

        assert (status, answer["outcome"]) == (200, "booked")
        (booking,) = rows(db, "SELECT * FROM bookings")
        (customer,) = rows(db, "SELECT * FROM users")
        assert booking.user_id == customer.id and customer.email == EMAIL
        assert (booking.status, booking.payment_status) == ("confirmed", "paid")
        assert (booking.payment_amount, booking.number_of_attendees) == (Decimal("337.50"), 5)
        assert booking.stripe_payment_intent_id == paid
        assert booking.contact_details["phone"] == "07700 900123"
        assert customer.total_spent == Decimal("337.50")

    def test_the_same_event_three_times_makes_one_booking(
        self, db, checkout_function, webhook_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)
        payload = succeeded_event(stripe_keys, paid, "evt_same_three_times")
        handlers = [load_function("stripe_webhook", f"dup{n}") for n in range(3)]
        outcomes: list[str] = []

        def deliver(handler) -> None:
            outcomes.append(call(handler, lambda_context, webhook_event(payload))[1]["outcome"])

        threads = [threading.Thread(target=deliver, args=(handler,)) for handler in handlers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(outcomes) == ["booked", "duplicate", "duplicate"]
        assert len(rows(db, "SELECT * FROM bookings")) == 1
        assert rows(db, "SELECT id, outcome FROM stripe_events") == [
            ("evt_same_three_times", "booked")
        ]

    @pytest.mark.parametrize("first", ["browser", "webhook"])
    def test_browser_and_webhook_in_either_order_make_one_booking(
        self, db, checkout_function, webhook_function, lambda_context, stripe_keys, first
    ):
        session_id = new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)
        payload = succeeded_event(stripe_keys, paid)
        body = booking_body(session_id, email=EMAIL, paymentIntentId=paid)

        def browser() -> tuple[int, Any]:
            return post_booking(checkout_function, lambda_context, body)

        def webhook() -> tuple[int, Any]:
            status, answer, _ = call(webhook_function, lambda_context, webhook_event(payload))
            return status, answer

        order = [browser, webhook] if first == "browser" else [webhook, browser]
        results = [step() for step in order]

        assert [status for status, _ in results] == [201 if s is browser else 200 for s in order]
        (booking,) = rows(db, "SELECT id, status, payment_status FROM bookings")
        browser_answer = results[order.index(browser)][1]
        assert browser_answer["bookingId"] == booking.id
        assert (booking.status, booking.payment_status) == ("confirmed", "paid")

    def test_the_browsers_retries_with_an_idempotency_key_after_the_webhook_replay_it(
        self, db, checkout_function, webhook_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)
        call(webhook_function, lambda_context, webhook_event(succeeded_event(stripe_keys, paid)))
        event = rest_event(
            "POST",
            "/api/bookings",
            booking_body(session_id, email=EMAIL, paymentIntentId=paid),
            headers={"Idempotency-Key": "checkout-after-webhook"},
        )

        first = call(checkout_function, lambda_context, event)
        again = call(checkout_function, lambda_context, event)

        assert first[0] == again[0] == 201
        assert first[1] == again[1]
        assert again[2]["multiValueHeaders"]["Idempotent-Replayed"] == ["true"]
        assert len(rows(db, "SELECT * FROM bookings")) == 1

    def test_browser_and_webhook_racing_make_one_booking(self, db, lambda_context, stripe_keys):
        """The browser's booking (through its handler) and Stripe's event (through the
        webhook's domain code) race for one PaymentIntent. The webhook side skips its
        handler: Powertools keeps the current request in a class attribute shared by every
        resolver of a process, so two handlers in threads of one process read each other's
        request, which Lambda (one request at a time per process) never does."""
        for _ in range(5):
            handler = load_function("create_booking", "race")
            session_id = new_session(db)
            paid = paid_intent(handler, lambda_context, stripe_keys, session_id)
            event = json.loads(succeeded_event(stripe_keys, paid))
            body = booking_body(session_id, email=EMAIL, paymentIntentId=paid)
            barrier = threading.Barrier(2)
            outcomes: dict[str, Any] = {}

            def browser(handler=handler, body=body, barrier=barrier, outcomes=outcomes) -> None:
                barrier.wait()
                outcomes["browser"] = post_booking(handler, lambda_context, body)[0]

            def webhook(event=event, barrier=barrier, outcomes=outcomes) -> None:
                barrier.wait()
                outcomes["webhook"] = handle_event(event).outcome

            threads = [threading.Thread(target=browser), threading.Thread(target=webhook)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

            assert outcomes["browser"] == 201
            assert outcomes["webhook"] in ("booked", "already_booked"), outcomes
            assert (
                len(rows(db, "SELECT 1 FROM bookings WHERE course_schedule_id = :s", s=session_id))
                == 1
            )

    def test_a_full_session_records_the_paid_booking_for_staff(
        self,
        db,
        checkout_function,
        webhook_function,
        lambda_context,
        stripe_keys,
        signed_in_admin,
        admin_users_function,
    ):
        session_id = new_session(db, max_capacity=2)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id, 2, 15000)
        # Meanwhile someone else takes the last seats, and staff keep them (an invoice
        # customer): an unpaid hold alone would not stand before a payment.
        other = booking_body(session_id, email="other@example.com", numberOfParticipants=2)
        assert (
            post_booking(checkout_function, lambda_context, other | {"totalAmount": 150})[0] == 201
        )
        with db.begin() as connection:
            connection.execute(text("UPDATE bookings SET hold_expires_at = NULL"))

        status, answer, _ = call(
            webhook_function, lambda_context, webhook_event(succeeded_event(stripe_keys, paid))
        )
        browser = post_booking(
            checkout_function,
            lambda_context,
            booking_body(
                session_id,
                email=EMAIL,
                paymentIntentId=paid,
                numberOfParticipants=2,
                totalAmount=150,
            ),
        )

        assert (status, answer["outcome"]) == (200, "unplaced")
        assert browser[0] == 409
        unplaced = rows(
            db,
            "SELECT status, payment_status, unplaced_reason FROM bookings "
            "WHERE stripe_payment_intent_id = :pi",
            pi=paid,
        )
        assert unplaced == [("pending", "paid", "session_full")]
        (session,) = rows(db, "SELECT current_capacity FROM course_schedules")
        assert session.current_capacity == 2
        with db.connect() as connection:
            assert oversold_sessions(connection, [session_id]) == []
        listed = admin_call(admin_users_function, "GET", "/api/admin/payments/unplaced")
        assert listed[0] == 200
        assert [(item["paymentIntentId"], item["reason"]) for item in listed[1]["data"]] == [
            (paid, "session_full")
        ]

    def test_a_full_refund_updates_the_booking_and_statistics(
        self, db, checkout_function, webhook_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)
        call(webhook_function, lambda_context, webhook_event(succeeded_event(stripe_keys, paid)))
        partial = refund_event(paid, 7500, 2500)
        full = refund_event(paid, 7500, 7500)

        outcomes = [
            call(webhook_function, lambda_context, webhook_event(payload))[1]["outcome"]
            for payload in (partial, full, full)
        ]

        assert outcomes == ["partial_refund", "refunded", "duplicate"]
        (booking,) = rows(db, "SELECT payment_status FROM bookings")
        (customer,) = rows(db, "SELECT total_bookings, total_spent FROM users")
        assert booking.payment_status == "refunded"
        assert (customer.total_bookings, customer.total_spent) == (1, Decimal("0.00"))

    def test_a_refund_before_the_succeeded_event_is_not_lost(
        self, db, checkout_function, webhook_function, lambda_context, stripe_keys
    ):
        session_id = new_session(db)
        paid = paid_intent(checkout_function, lambda_context, stripe_keys, session_id)

        first = call(
            webhook_function, lambda_context, webhook_event(refund_event(paid, 7500, 7500))
        )
        then = call(
            webhook_function, lambda_context, webhook_event(succeeded_event(stripe_keys, paid))
        )

        assert (first[1]["outcome"], then[1]["outcome"]) == ("refunded_before_booking", "booked")
        assert rows(db, "SELECT payment_status FROM bookings") == [("refunded",)]

    def test_unknown_event_types_get_200_and_are_ignored(
        self, webhook_function, lambda_context, db
    ):
        payload = stripe_event("customer.created", {"id": "cus_1", "object": "customer"})

        status, answer, _ = call(webhook_function, lambda_context, webhook_event(payload))

        assert (status, answer["outcome"]) == (200, "ignored")

    @pytest.mark.parametrize(
        "data_object",
        [
            {},
            {"id": 7, "amount": "lots"},
            {"id": "pi_foreign", "status": "succeeded", "amount": 100, "currency": "gbp"},
            {"id": "pi_odd", "status": "succeeded", "amount": 7500, "metadata": "x"},
        ],
    )
    def test_signed_events_with_odd_or_foreign_intents_book_nothing_and_get_200(
        self, webhook_function, lambda_context, db, data_object
    ):
        payload = stripe_event("payment_intent.succeeded", data_object)

        status, answer, _ = call(webhook_function, lambda_context, webhook_event(payload))

        assert status == 200 and answer["outcome"] in ("ignored", "not_ours")
        assert rows(db, "SELECT * FROM bookings") == []


class TestAvailableSessions:
    def test_the_list_counts_seats_as_the_booking_path_does(
        self, db, checkout_function, lambda_context
    ):
        session_id = new_session(db, max_capacity=5)
        new_session(db, max_capacity=1, course_name="First Aid at Work", course_type="FAW")
        cancelled = new_session(db, status="cancelled")
        with db.begin() as connection:
            connection.execute(
                text("UPDATE course_schedules SET current_capacity = 0")
            )  # a stale counter must not matter
        for email, participants in (("a@example.com", 2), ("b@example.com", 1)):
            body = booking_body(
                session_id,
                email=email,
                numberOfParticipants=participants,
                totalAmount=75 * participants,
            )
            assert post_booking(checkout_function, lambda_context, body)[0] == 201

        status, sessions, response = call(
            checkout_function,
            lambda_context,
            rest_event("GET", "/api/courses/sessions/available", query={"course": "efaw"}),
        )

        assert status == 200
        assert response["multiValueHeaders"]["Cache-Control"] == ["public, max-age=5"]
        assert [item["id"] for item in sessions] == [session_id]
        (listed,) = sessions
        assert (listed["availableSpots"], listed["maxCapacity"], listed["isFull"]) == (2, 5, False)
        assert (listed["courseType"], listed["price"]) == ("EFAW", "75.00")
        assert cancelled not in [item["id"] for item in sessions]
        # The booking path agrees: 3 more places are refused, 2 are accepted.
        over = booking_body(
            session_id, email="c@example.com", numberOfParticipants=3, totalAmount=225
        )
        assert post_booking(checkout_function, lambda_context, over)[0] == 409
        fits = booking_body(
            session_id, email="c@example.com", numberOfParticipants=2, totalAmount=150
        )
        assert post_booking(checkout_function, lambda_context, fits)[0] == 201
        status, sessions, _ = call(
            checkout_function,
            lambda_context,
            rest_event("GET", "/api/courses/sessions/available"),
        )
        assert session_id not in [item["id"] for item in sessions]
        assert [item["courseType"] for item in sessions] == ["FAW"]
