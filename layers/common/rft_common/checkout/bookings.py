"""Creating a booking: price from the session, no overbooking, idempotent retries.

One transaction per booking, in this order:

1. claim the ``Idempotency-Key`` (if given); a concurrent retry waits here and then
   replays the stored response;
2. lock the session row (``FOR UPDATE``): bookings of one session serialise here;
3. find or create the customer (when ``customer_accounts`` is on);
4. in one statement (the function ``rft_place_booking``, migration 0027), re-read the
   session's seats and active bookings (a fresh snapshot, taken after the lock) and
   insert the booking only if it fits;
5. for a paid booking, record what its buyer said about consent (``consent.service``:
   usually one statement, none for an unlinked booking) and queue the customer's email
   (``rft_common.email.outbox``: one statement, unique per booking, sent after the
   commit by the email sender);
6. record its attendees (``customers.attendees``: the booker, and the participants
   its checkout stored), finding or creating those with an email as customers;
7. store the response under the idempotency key.

Only successful bookings are remembered under a key: a failed attempt rolls back
entirely, so a retry with the same key runs again.

A paid booking (``payment``: a PaymentIntent Stripe confirmed, see ``rft_common.checkout.intents``)
must match the server's price, and its intent must not back another booking; the
session lock orders the browser's post and Stripe's webhook for one intent, so the
second finds the first's booking. The webhook (``record_unplaced``) never drops a
payment: a paid booking with no seat is stored ``pending`` + ``paid`` with an
``unplaced_reason``, takes no seat and waits for staff.

Money beats a squatter (issue 23): the public checkout's unpaid booking (201,
``pending``, as the legacy API answered) holds its seats for ``UNPAID_HOLD_MINUTES``
only (``hold_expires_at``), and a paid booking counts committed seats alone, so no unpaid
booking stands between a payment and a seat; it cancels the same email's unpaid holds on
the session (superseded), so a stranger's squat in someone's email never refuses their
paid booking as "already booked". An unpaid booking is itself never refused as "already
booked": its answer must not tell a stranger whether the email booked the session.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from rft_common.aws import flags
from rft_common.checkout.intents import (
    CONSENT_FIELDS,
    META_EMAIL_FINGERPRINT,
    META_PARTICIPANTS,
    META_SESSION,
    ConsentChoices,
    WithCustomerEmail,
)
from rft_common.checkout.pricing import booking_price, to_pence
from rft_common.checkout.stripe_api import CURRENCY, PaymentIntent, retrieve_payment_intent
from rft_common.consent.service import record_checkout_choices
from rft_common.core.emails import EMAIL_WHITESPACE, email_fingerprint, normalized_email_sql
from rft_common.core.errors import Conflict, InvalidRequest, NotFound, PaymentRequired
from rft_common.core.vocabulary import ACTIVE_BOOKING_STATUSES, UNPAID_HOLD_MINUTES
from rft_common.customers.attendees import record_participants
from rft_common.customers.identity import CustomerDetails, find_or_create_customer
from rft_common.db.locks import LOCK_PAYMENT_INTENT
from rft_common.db.postgres import Connection, run_transaction
from rft_common.email.outbox import enqueue_booking_email

Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
OptionalText = Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=500)]


CHECKOUT_EXAMPLE = {
    "courseSessionId": 1,
    "firstName": "Sam",
    "lastName": "Patel",
    "email": "Sam.Patel@Example.com ",
    "phone": "07700 900123",
    "company": "Acme Ltd",
    "numberOfParticipants": 2,
    "specialRequirements": "wheelchair access",
    "emergencyContact": "Alex 07700 900456",
    "totalAmount": 150.00,
}
"""The booking site's checkout body for two places on demo session 1 (£75 each)."""


PAYMENT_INTENT_ID_PATTERN = r"^pi_[A-Za-z0-9_]+$"
"""A Stripe PaymentIntent id; anything else (empty, another object's id, a path) never
reaches Stripe, whose answers to those were a 502 or a list where an intent was due."""


class BookingRequest(WithCustomerEmail, ConsentChoices):
    """The booking site's checkout body, unchanged from the legacy API."""

    model_config = ConfigDict(
        populate_by_name=True,
        str_strip_whitespace=True,
        json_schema_extra={"examples": [CHECKOUT_EXAMPLE]},
    )

    course_session_id: int = Field(alias="courseSessionId", gt=0, le=2**31 - 1)
    payment_intent_id: Annotated[
        str | None, StringConstraints(max_length=255, pattern=PAYMENT_INTENT_ID_PATTERN)
    ] = Field(
        default=None,
        alias="paymentIntentId",
        description="The checkout's PaymentIntent. The server retrieves it from Stripe: the "
        "booking is confirmed/paid only if it succeeded, for this booking and its price.",
    )
    first_name: Text100 = Field(alias="firstName")
    last_name: Text100 = Field(alias="lastName")
    phone: Annotated[str | None, StringConstraints(max_length=50)] = None
    company: Annotated[str | None, StringConstraints(max_length=255)] = None
    number_of_participants: int = Field(alias="numberOfParticipants", ge=1, le=12)
    special_requirements: Annotated[str | None, StringConstraints(max_length=2000)] = Field(
        default=None, alias="specialRequirements"
    )
    emergency_contact: OptionalText = Field(default=None, alias="emergencyContact")
    total_amount: Decimal = Field(alias="totalAmount", ge=0, max_digits=10, decimal_places=2)

    def fingerprint(self) -> str:
        """Hash of the validated request, to tell a retry from a different request (the
        consent fields count only when sent: keys stored before them still match)."""
        unsent = {name for name in CONSENT_FIELDS if getattr(self, name) is None}
        canonical = json.dumps(self.model_dump(mode="json", exclude=unsent), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def contact_details(self) -> dict[str, Any]:
        """The legacy ``bookings.contact_details`` document."""
        return {
            "name": f"{self.first_name} {self.last_name}",
            "email": self.email,
            "phone": self.phone,
            "company": self.company,
            "specialRequirements": self.special_requirements,
            "emergencyContact": self.emergency_contact,
        }


class BookingCreated(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    booking_id: int
    booking_reference: str
    customer_id: int | None = Field(description="null when the booking was not linked")
    course_session_id: int
    status: str
    payment_status: str
    amount: str = Field(description="GBP, decimal string", examples=["150.00"])
    number_of_participants: int
    created_at: datetime


@dataclass(frozen=True)
class BookingOutcome:
    body: dict[str, Any]
    replayed: bool
    link_customer: bool = False
    customer_created: bool = False
    unplaced_reason: str | None = None


BASE36 = string.digits + string.ascii_uppercase


def _base36(number: int) -> str:
    digits = []
    while True:
        number, remainder = divmod(number, 36)
        digits.append(BASE36[remainder])
        if number == 0:
            return "".join(reversed(digits))


def new_booking_reference() -> str:
    """``RFT-<base36 milliseconds>-<4 random chars>``, the live system's format."""
    suffix = "".join(secrets.choice(BASE36) for _ in range(4))
    return f"RFT-{_base36(int(time.time() * 1000))}-{suffix}"


CONTACT_EMAIL = normalized_email_sql("contact_details ->> 'email'")
"""A booking's email as typed, in the identity's form (composed or decomposed accents
alike): what a replayed payment compares (``rft_place_booking`` compares the same form
for "already booked" and a superseded hold)."""

CLAIM_KEY = """
    INSERT INTO idempotency_keys (key, request_hash) VALUES (:key, :request_hash)
    ON CONFLICT (key) DO NOTHING
    RETURNING key
"""
STORED_RESPONSE = """
    SELECT request_hash, response_body FROM idempotency_keys WHERE key = :key
"""
REMEMBER_RESPONSE = """
    UPDATE idempotency_keys
    SET booking_id = :booking_id, response_status = 201, response_body = CAST(:body AS jsonb)
    WHERE key = :key
"""
LOCK_SESSION = """
    SELECT id, status, price, max_capacity FROM session_seats WHERE id = :session_id
    FOR UPDATE
"""
"""Locks the session's row alone: ``session_seats`` reads its course in a subquery."""
PLACE_BOOKING = """
    SELECT * FROM rft_place_booking(
        CAST(:session_id AS integer), CAST(:email AS text),
        CAST(:active_statuses AS text[]), CAST(:reference AS text),
        CAST(:user_id AS integer), CAST(:status AS text), CAST(:payment_status AS text),
        CAST(:amount AS numeric), CAST(:payment_method AS text),
        CAST(:payment_intent_id AS text), CAST(:paid AS boolean),
        CAST(:hold_minutes AS integer), CAST(:record_unplaced AS boolean),
        CAST(:forced_refusal AS text), CAST(:attendees AS integer),
        CAST(:max_capacity AS integer), CAST(:contact_details AS json),
        CAST(:first_name AS text), CAST(:last_name AS text))
"""
"""Step 4, run after ``LOCK_SESSION`` so that its snapshot holds every committed booking
of the session: migration 0027's function re-reads the session's seats and this email's
active booking and inserts the booking (and its booker as attendee 1) only if it fits;
a paid booking counts committed seats alone and supersedes the same email's unpaid
holds; only a booking without a payment window (paid, or recorded by staff) is refused
as "already booked". One row: ``seats_taken, already_booked, refusal`` and the booking's
columns (null if none was stored: a refused booking is stored only with
``record_unplaced``, with its ``refusal`` as ``unplaced_reason``). A function, so that
PostgreSQL plans it once per connection (the migration says why and what each rule is
for)."""
BOOKING_OF_INTENT = f"""
    SELECT id, booking_reference, user_id, course_schedule_id, status, payment_status,
           payment_amount, number_of_attendees, created_at, unplaced_reason,
           {CONTACT_EMAIL} AS email
    FROM bookings WHERE stripe_payment_intent_id = :payment_intent_id
    ORDER BY id LIMIT 1
"""


def confirmed_payment(intent_id: str, request: BookingRequest) -> PaymentIntent:
    """The PaymentIntent ``intent_id`` if it succeeded and this system's checkout made it
    for ``request``'s session, participants and email; else 402 (no such payment, not
    paid) or 422 (a payment for something else)."""
    intent = retrieve_payment_intent(intent_id)
    if intent is None:
        raise PaymentRequired("Stripe knows no such payment", field="paymentIntentId")
    if intent.status != "succeeded":
        raise PaymentRequired(
            f"the payment has not succeeded (Stripe says {intent.status})",
            field="paymentIntentId",
        )
    if intent.currency != CURRENCY:
        raise InvalidRequest("the payment is not in GBP", field="paymentIntentId")
    metadata = intent.metadata
    mismatches = [
        field
        for field, key, value in (
            ("courseSessionId", META_SESSION, str(request.course_session_id)),
            ("numberOfParticipants", META_PARTICIPANTS, str(request.number_of_participants)),
            ("email", META_EMAIL_FINGERPRINT, email_fingerprint(request.normalized_email)),
        )
        if metadata.get(key) != value
    ]
    if mismatches:
        raise InvalidRequest(
            f"the payment was made for another booking ({', '.join(mismatches)} differ)",
            field="paymentIntentId",
        )
    return intent


def place_booking(request: BookingRequest, *, idempotency_key: str | None = None) -> BookingOutcome:
    """Everything a checkout does after parsing: confirm its payment with Stripe (if it
    names one), read the flag, then one transaction."""
    intent_id = request.payment_intent_id
    payment = confirmed_payment(intent_id, request) if intent_id is not None else None
    link_customer = flags.customer_accounts_enabled(request.normalized_email)
    return run_transaction(
        lambda connection: create_booking(
            connection,
            request,
            link_customer=link_customer,
            idempotency_key=idempotency_key,
            payment=payment,
        )
    )


def create_booking(
    connection: Connection,
    request: BookingRequest,
    *,
    link_customer: bool,
    idempotency_key: str | None = None,
    payment: PaymentIntent | None = None,
    record_unplaced: bool = False,
    staff_recorded: bool = False,
) -> BookingOutcome:
    """Create one booking inside the caller's transaction; raise a ``DomainError`` if not.

    ``payment``: the succeeded PaymentIntent behind the booking (``confirmed``/``paid``);
    a booking already holding it is replayed if it is this checkout's, else refused.
    ``record_unplaced``: store a paid booking that gets no seat instead of refusing it.
    ``staff_recorded``: an unpaid booking staff mean to keep (an invoice customer): it
    holds its seats until cancelled; the public checkout's unpaid booking holds them for
    ``UNPAID_HOLD_MINUTES`` only.
    """
    if idempotency_key is not None:
        replay = _claim_or_replay(
            connection, idempotency_key, request.fingerprint(), link_customer=link_customer
        )
        if replay is not None:
            return replay

    if payment is not None:
        connection.execute(LOCK_PAYMENT_INTENT, {"payment_intent_id": payment.id})
    session = connection.execute(LOCK_SESSION, {"session_id": request.course_session_id}).first()
    if session is None or (session.status == "cancelled" and not record_unplaced):
        raise NotFound(
            f"course session {request.course_session_id} does not exist or is cancelled",
            field="courseSessionId",
        )
    expected = booking_price(session.price, request.number_of_participants)
    if request.total_amount != expected:
        raise InvalidRequest(
            f"totalAmount {request.total_amount} does not match the price of "
            f"{request.number_of_participants} place(s) at {session.price} "
            f"each, less any group discount: {expected}",
            field="totalAmount",
        )
    if payment is not None:
        if payment.amount != to_pence(expected):
            raise InvalidRequest(
                f"the payment is for {payment.amount / 100:.2f}, not this booking's {expected}",
                field="paymentIntentId",
            )
        holder = connection.execute(
            BOOKING_OF_INTENT, {"payment_intent_id": payment.id, "whitespace": EMAIL_WHITESPACE}
        ).first()
        if holder is not None:
            replay = _replay_paid_booking(
                holder, request, link_customer=link_customer, from_webhook=record_unplaced
            )
            _remember_response(connection, idempotency_key, replay.body)
            return replay

    email = request.normalized_email
    customer_id, customer_created = None, False
    if link_customer:
        customer_id, customer_created = find_or_create_customer(
            connection,
            CustomerDetails(
                email=email,
                name=f"{request.first_name} {request.last_name}",
                phone=request.phone,
                company_name=request.company,
                paid=payment is not None,
            ),
        )

    paid = payment is not None
    row = connection.execute(
        PLACE_BOOKING,
        {
            "session_id": session.id,
            "email": email,
            "active_statuses": list(ACTIVE_BOOKING_STATUSES),
            "reference": new_booking_reference(),
            "user_id": customer_id,
            "status": "confirmed" if paid else "pending",
            "payment_status": "paid" if paid else "pending",
            "amount": expected,
            "payment_method": "card" if paid else None,
            "payment_intent_id": payment.id if paid else None,
            "paid": paid,
            "hold_minutes": None if paid or staff_recorded else UNPAID_HOLD_MINUTES,
            "record_unplaced": paid and record_unplaced,
            "forced_refusal": "session_cancelled" if session.status == "cancelled" else None,
            "attendees": request.number_of_participants,
            "max_capacity": session.max_capacity,
            "contact_details": json.dumps(request.contact_details()),
            "first_name": request.first_name,
            "last_name": request.last_name,
        },
    ).one()
    if row.id is None and row.refusal == "already_booked":
        raise Conflict("this email already has an active booking on this session", field="email")
    if row.id is None:
        seats_left = max(session.max_capacity - row.seats_taken, 0)
        raise Conflict(
            f"not enough seats: {seats_left} left, {request.number_of_participants} requested",
            field="numberOfParticipants",
        )

    if paid and customer_id is not None:  # a purchase: what its buyer said about consent
        marketing_consent, reminders_opt_out = request.choices_or_those_paid_with(payment)
        record_checkout_choices(
            connection,
            customer_id,
            row.id,
            marketing_consent=marketing_consent,
            reminders_opt_out=reminders_opt_out,
        )
    if paid:  # only a paid checkout stored participants (the booker is recorded above)
        record_participants(
            connection,
            booking_id=row.id,
            places=request.number_of_participants,
            payment_intent_id=payment.id,
            link_customers=link_customer,
        )
    body = _created_body(row, session.id)
    if paid:  # the customer's confirmation, or the "staff will contact you" notice
        enqueue_booking_email(connection, row.id)
    _remember_response(connection, idempotency_key, body)
    return BookingOutcome(
        body=body,
        replayed=False,
        link_customer=link_customer,
        customer_created=customer_created,
        unplaced_reason=row.unplaced_reason,
    )


def _created_body(row: Any, session_id: int) -> dict[str, Any]:
    return BookingCreated(
        booking_id=row.id,
        booking_reference=row.booking_reference,
        customer_id=row.user_id,
        course_session_id=session_id,
        status=row.status,
        payment_status=row.payment_status,
        amount=f"{row.payment_amount:.2f}",
        number_of_participants=row.number_of_attendees,
        created_at=row.created_at,
    ).model_dump(mode="json", by_alias=True)


def _remember_response(
    connection: Connection, idempotency_key: str | None, body: dict[str, Any]
) -> None:
    if idempotency_key is not None:
        connection.execute(
            REMEMBER_RESPONSE,
            {"key": idempotency_key, "booking_id": body["bookingId"], "body": json.dumps(body)},
        )


def _replay_paid_booking(
    holder: Any, request: BookingRequest, *, link_customer: bool, from_webhook: bool
) -> BookingOutcome:
    """The booking that already holds this checkout's payment (the browser's post and
    Stripe's webhook each try to make it), or a 409 if another checkout holds it, or if
    the browser asks for a booking the webhook had to record without a seat."""
    same_checkout = (
        holder.course_schedule_id == request.course_session_id
        and holder.number_of_attendees == request.number_of_participants
        and holder.email == request.normalized_email
    )
    if not same_checkout:
        raise Conflict("this payment already paid for another booking", field="paymentIntentId")
    if holder.unplaced_reason is not None and not from_webhook:
        raise Conflict(
            "your payment is recorded but the session has no place for this booking "
            f"({holder.unplaced_reason.replace('_', ' ')}); our staff will contact you",
            field="courseSessionId",
        )
    return BookingOutcome(
        body=_created_body(holder, holder.course_schedule_id),
        replayed=True,
        link_customer=link_customer,
        unplaced_reason=holder.unplaced_reason,
    )


def _claim_or_replay(
    connection: Connection, key: str, request_hash: str, *, link_customer: bool
) -> BookingOutcome | None:
    """Claim ``key`` for this request, or return the response it already produced."""
    if connection.execute(CLAIM_KEY, {"key": key, "request_hash": request_hash}).first():
        return None
    stored = connection.execute(STORED_RESPONSE, {"key": key}).one()
    if stored.request_hash != request_hash:
        raise InvalidRequest(
            "this Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
        )
    return BookingOutcome(body=stored.response_body, replayed=True, link_customer=link_customer)
