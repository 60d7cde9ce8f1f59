"""Creating a booking: price from the session, no overbooking, idempotent retries.

One transaction per booking, in this order (at most five statements):

1. claim the ``Idempotency-Key`` (if given); a concurrent retry waits here and then
   replays the stored response;
2. lock the session row (``FOR UPDATE``): bookings of one session serialise here;
3. find or create the customer (when ``customer_accounts`` is on);
4. in one statement, re-read the session's seats and active bookings (a fresh
   snapshot, taken after the lock) and insert the booking only if it fits;
5. store the response under the idempotency key.

Only successful bookings are remembered under a key: a failed attempt rolls back
entirely, so a retry with the same key runs again.
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
from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.alias_generators import to_camel
from sqlalchemy import Connection, text

from rft_common import flags
from rft_common.customers import CustomerDetails, find_or_create_customer
from rft_common.db import run_transaction
from rft_common.emails import normalize_email
from rft_common.errors import Conflict, InvalidRequest, NotFound

ACTIVE_STATUSES = ("pending", "confirmed")
"""A second booking in one of these statuses for the same email and session is a 409."""

Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
OptionalText = Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=500)]


CHECKOUT_EXAMPLE = {
    "courseSessionId": 1,
    "paymentIntentId": "pi_123",
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


class BookingRequest(BaseModel):
    """The booking site's checkout body, unchanged from the legacy API."""

    model_config = ConfigDict(
        populate_by_name=True,
        str_strip_whitespace=True,
        json_schema_extra={"examples": [CHECKOUT_EXAMPLE]},
    )

    course_session_id: int = Field(alias="courseSessionId", gt=0, le=2**31 - 1)
    payment_intent_id: Annotated[str | None, StringConstraints(max_length=255)] = Field(
        default=None, alias="paymentIntentId"
    )
    first_name: Text100 = Field(alias="firstName")
    last_name: Text100 = Field(alias="lastName")
    email: Annotated[str, StringConstraints(max_length=254)]
    phone: Annotated[str | None, StringConstraints(max_length=50)] = None
    company: Annotated[str | None, StringConstraints(max_length=255)] = None
    number_of_participants: int = Field(alias="numberOfParticipants", ge=1, le=12)
    special_requirements: Annotated[str | None, StringConstraints(max_length=2000)] = Field(
        default=None, alias="specialRequirements"
    )
    emergency_contact: OptionalText = Field(default=None, alias="emergencyContact")
    total_amount: Decimal = Field(alias="totalAmount", ge=0, max_digits=10, decimal_places=2)

    @field_validator("email")
    @classmethod
    def _email_is_an_address(cls, value: str) -> str:
        normalize_email(value)
        return value

    @cached_property
    def normalized_email(self) -> str:
        """Computed once per request (it runs the full address validation)."""
        return normalize_email(self.email)

    def fingerprint(self) -> str:
        """Hash of the validated request, to tell a retry from a different request."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
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


CLAIM_KEY = text("""
    INSERT INTO idempotency_keys (key, request_hash) VALUES (:key, :request_hash)
    ON CONFLICT (key) DO NOTHING
    RETURNING key
""")
STORED_RESPONSE = text("""
    SELECT request_hash, response_body FROM idempotency_keys WHERE key = :key
""")
REMEMBER_RESPONSE = text("""
    UPDATE idempotency_keys
    SET booking_id = :booking_id, response_status = 201, response_body = CAST(:body AS jsonb)
    WHERE key = :key
""")
LOCK_SESSION = text("""
    SELECT s.id, s.status, coalesce(s.price, c.price) AS price, s.max_capacity
    FROM course_schedules AS s JOIN courses AS c ON c.id = s.course_id
    WHERE s.id = :session_id
    FOR UPDATE OF s
""")
# Runs after LOCK_SESSION, so its snapshot includes every committed booking of the
# session. Seats are summed from the bookings themselves rather than trusted from
# course_schedules.current_capacity, which the legacy app may not maintain.
INSERT_IF_IT_FITS = text(f"""
    WITH session_state AS (
        SELECT coalesce(sum(number_of_attendees) FILTER (WHERE status <> 'cancelled'), 0)
                   AS seats_taken,
               coalesce(bool_or(status IN {ACTIVE_STATUSES!r}
                                AND lower(btrim(contact_details ->> 'email')) = :email),
                        false) AS already_booked
        FROM bookings WHERE course_schedule_id = :session_id
    ), new_booking AS (
        INSERT INTO bookings (
            booking_reference, course_schedule_id, user_id, status, payment_status,
            payment_amount, payment_method, stripe_payment_intent_id, number_of_attendees,
            contact_details)
        SELECT :reference, :session_id, :user_id, :status, :payment_status,
               :amount, :payment_method, :payment_intent_id, :attendees,
               CAST(:contact_details AS json)
        FROM session_state
        WHERE NOT already_booked AND seats_taken + :attendees <= :max_capacity
        RETURNING id, booking_reference, user_id, status, payment_status, payment_amount,
                  number_of_attendees, created_at
    ), seats AS (
        UPDATE course_schedules
        SET current_capacity = (SELECT seats_taken FROM session_state) + :attendees,
            status = CASE WHEN (SELECT seats_taken FROM session_state) + :attendees
                               >= max_capacity THEN 'full' ELSE status END,
            updated_at = now()
        WHERE id = :session_id AND EXISTS (SELECT 1 FROM new_booking)
    )
    SELECT s.seats_taken, s.already_booked, b.*
    FROM session_state AS s LEFT JOIN new_booking AS b ON true
""")


def place_booking(request: BookingRequest, *, idempotency_key: str | None = None) -> BookingOutcome:
    """Everything a checkout does after parsing: read the flag, then one transaction."""
    link_customer = flags.customer_accounts_enabled(request.normalized_email)
    return run_transaction(
        lambda connection: create_booking(
            connection, request, link_customer=link_customer, idempotency_key=idempotency_key
        )
    )


def create_booking(
    connection: Connection,
    request: BookingRequest,
    *,
    link_customer: bool,
    idempotency_key: str | None = None,
) -> BookingOutcome:
    """Create one booking inside the caller's transaction; raise a ``DomainError`` if not."""
    if idempotency_key is not None:
        replay = _claim_or_replay(
            connection, idempotency_key, request.fingerprint(), link_customer=link_customer
        )
        if replay is not None:
            return replay

    session = connection.execute(LOCK_SESSION, {"session_id": request.course_session_id}).first()
    if session is None or session.status == "cancelled":
        raise NotFound(
            f"course session {request.course_session_id} does not exist or is cancelled",
            field="courseSessionId",
        )
    expected = (session.price * request.number_of_participants).quantize(Decimal("0.01"))
    if request.total_amount != expected:
        raise InvalidRequest(
            f"totalAmount {request.total_amount} does not match the session price: "
            f"{request.number_of_participants} x {session.price} = {expected}",
            field="totalAmount",
        )

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
            ),
        )

    paid = request.payment_intent_id is not None
    row = connection.execute(
        INSERT_IF_IT_FITS,
        {
            "session_id": session.id,
            "email": email,
            "reference": new_booking_reference(),
            "user_id": customer_id,
            "status": "confirmed" if paid else "pending",
            "payment_status": "paid" if paid else "pending",
            "amount": expected,
            "payment_method": "card" if paid else None,
            "payment_intent_id": request.payment_intent_id,
            "attendees": request.number_of_participants,
            "max_capacity": session.max_capacity,
            "contact_details": json.dumps(request.contact_details()),
        },
    ).one()
    if row.already_booked:
        raise Conflict("this email already has an active booking on this session", field="email")
    if row.id is None:
        seats_left = max(session.max_capacity - row.seats_taken, 0)
        raise Conflict(
            f"not enough seats: {seats_left} left, {request.number_of_participants} requested",
            field="numberOfParticipants",
        )

    body = BookingCreated(
        booking_id=row.id,
        booking_reference=row.booking_reference,
        customer_id=row.user_id,
        course_session_id=session.id,
        status=row.status,
        payment_status=row.payment_status,
        amount=f"{row.payment_amount:.2f}",
        number_of_participants=row.number_of_attendees,
        created_at=row.created_at,
    ).model_dump(mode="json", by_alias=True)
    if idempotency_key is not None:
        connection.execute(
            REMEMBER_RESPONSE,
            {"key": idempotency_key, "booking_id": row.id, "body": json.dumps(body)},
        )
    return BookingOutcome(
        body=body, replayed=False, link_customer=link_customer, customer_created=customer_created
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
