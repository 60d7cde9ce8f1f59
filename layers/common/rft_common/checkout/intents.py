"""Checkout payments: the PaymentIntent at the server's price, and Stripe's word on it.

**Creating the intent** (``POST /api/bookings/create-payment-intent``). The booking
site calls it twice per checkout and re-posts in a loop while it fails, so one
checkout gets one intent for 24 hours. Our own record (``payment_checkouts``) decides
this, under a transaction-level advisory lock on the checkout, so concurrent calls
queue and the first one's intent is what they all get; localstripe ignores
Idempotency-Keys, real Stripe honours the one sent too (checkout + generation), which
covers a crash between Stripe's answer and our commit.

**Whose checkout it is.** The answer holds the intent's client secret, so a replay is
bound to the caller who made it (``Caller``), never to what a stranger can know (an
email, a session). A caller sending an ``Idempotency-Key`` owns the checkout of that
key, Stripe-style: the same key and request get the same intent, the same key with
another request is refused (422). The booking site sends no key, no cookie and holds
no secret of its own, so without a key the caller is its network address and browser
(source IP and User-Agent, both of the site's calls share them), and the checkout is
that caller's request: session, normalised email, participants, amount and the details
typed (``request_digest``). Another caller asking for the same checkout gets an intent
of their own, never the first one's secret.

**Trusting a payment.** A booking that names a PaymentIntent is paid only if Stripe
says so: the intent exists, ``succeeded``, is in GBP, and its metadata (written here
when it was created) names the same session, participants and email. The amount is
checked against the server's price inside the booking's transaction.

**Participants.** The first call's ``bookingData.participantDetails`` (the places other
than the booker's: names, optional email, health data) is stored with the checkout
(``payment_checkouts.participant_details``), never in Stripe's metadata (size limits,
and health data stays here). A call without it (the site's second) keeps what the first
stored. Whichever path makes the booking reads it there (``customers.attendees``).

**Metadata** carries what the webhook needs to create the booking if the browser
never posts it: session, participants, a fingerprint of the normalised email and the
contact details. Stripe allows 50 keys of up to 40 characters with values of up to
500; every value here is validated to fit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from rft_common.checkout.pricing import booking_price, to_pence
from rft_common.checkout.sessions import SESSION_FOR_CHECKOUT
from rft_common.checkout.stripe_api import (
    PaymentIntent,
    create_payment_intent,
    retrieve_payment_intent,
)
from rft_common.core.emails import email_fingerprint, normalize_email
from rft_common.core.errors import Conflict, InvalidRequest, NotFound
from rft_common.db.locks import LOCK_CHECKOUT
from rft_common.db.postgres import Connection, run_transaction

CHECKOUT_REUSE_HOURS = 24
REUSABLE_INTENT_STATUSES = frozenset(
    {
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
        "succeeded",
    }
)
"""Every status but ``canceled``: a cancelled intent can never be paid, so a new one is made."""

META_SESSION = "rft_course_session_id"
META_PARTICIPANTS = "rft_participants"
META_EMAIL_FINGERPRINT = "rft_email_fingerprint"
META_FIRST_NAME = "rft_first_name"
META_LAST_NAME = "rft_last_name"
META_EMAIL = "rft_email"
META_PHONE = "rft_phone"
META_COMPANY = "rft_company"
META_SPECIAL_REQUIREMENTS = "rft_special_requirements"
META_REQUEST = "rft_request"
"""``request_digest`` of the call that made the intent; a key's replay must match it."""
META_MARKETING_CONSENT = "rft_marketing_consent"
META_REMINDERS_OPT_OUT = "rft_reminders_opt_out"
METADATA_VALUE_LIMIT = 500

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class WithCustomerEmail(BaseModel):
    """A checkout form's ``email``: kept as typed, refused unless it is an address, and
    normalised (``normalized_email``) to find the customer."""

    email: Annotated[str, StringConstraints(max_length=254)]

    @field_validator("email")
    @classmethod
    def _email_is_an_address(cls, value: str) -> str:
        normalize_email(value)
        return value

    @cached_property
    def normalized_email(self) -> str:
        """Computed once per request (it runs the full address validation)."""
        return normalize_email(self.email)


class ConsentChoices(BaseModel):
    """The checkout's optional consent fields (the site sends none yet; docs/reminders.md).
    Absent is not false: nothing is recorded for a field not sent."""

    marketing_consent: StrictBool | None = Field(
        default=None,
        alias="marketingConsent",
        description="The buyer ticked the box consenting to marketing email, renewal "
        "reminders included: recorded as explicit consent on a paid booking. false or "
        "absent records nothing.",
    )
    renewal_reminders_opt_out: StrictBool | None = Field(
        default=None,
        alias="renewalRemindersOptOut",
        description="The buyer ticked the opt-out of renewal reminders: recorded as an "
        "objection on a paid booking, kept until new explicit consent. Absent or false, a "
        "paid booking gives its buyer a soft opt-in to renewal reminders, when the company "
        "has configured the opt-out notice the site shows (and the buyer has not objected).",
    )

    def choices_or_those_paid_with(self, payment: PaymentIntent) -> tuple[bool | None, bool | None]:
        """``(marketing_consent, renewal_reminders_opt_out)``: as sent, else as the
        checkout's payment intent recorded them (its ``bookingData``)."""
        metadata = payment.metadata
        return (
            _choice(self.marketing_consent, metadata.get(META_MARKETING_CONSENT)),
            _choice(self.renewal_reminders_opt_out, metadata.get(META_REMINDERS_OPT_OUT)),
        )

    def consent_metadata(self) -> dict[str, str]:
        """The choices as PaymentIntent metadata, for a booking the webhook makes."""
        values = {
            META_MARKETING_CONSENT: self.marketing_consent,
            META_REMINDERS_OPT_OUT: self.renewal_reminders_opt_out,
        }
        return {key: str(value).lower() for key, value in values.items() if value is not None}


CONSENT_FIELDS = tuple(ConsentChoices.model_fields)


def _choice(sent: bool | None, recorded: str | None) -> bool | None:
    return sent if sent is not None or recorded is None else recorded == "true"


HealthText = Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=500)]


class Participant(BaseModel):
    """One ``participantDetails`` entry: a place other than the booker's."""

    model_config = ConfigDict(populate_by_name=True, str_strip_whitespace=True, extra="ignore")

    first_name: Name = Field(alias="firstName")
    last_name: Name = Field(alias="lastName")
    email: Annotated[str | None, StringConstraints(max_length=254)] = None
    dietary_requirements: HealthText = Field(default=None, alias="dietaryRequirements")
    medical_conditions: HealthText = Field(default=None, alias="medicalConditions")

    @field_validator("email")
    @classmethod
    def _normalised_email_or_none(cls, value: str | None) -> str | None:
        """Blank is no email; anything else must be an address, kept normalised."""
        if value is None or not value.strip():
            return None
        return normalize_email(value)

    def stored(self) -> dict[str, str | None]:
        """As kept with the checkout (``customers.attendees`` reads these keys)."""
        return {
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
            "dietaryRequirements": self.dietary_requirements or None,
            "medicalConditions": self.medical_conditions or None,
        }


class CheckoutDetails(WithCustomerEmail, ConsentChoices):
    """``bookingData``: the site's form. Fields it sends that are not needed here
    (``agreedToTerms``, ...) are ignored. ``participantDetails`` (first call only) is
    ``None`` when absent, so that a call without it keeps what an earlier one stored."""

    model_config = ConfigDict(populate_by_name=True, str_strip_whitespace=True, extra="ignore")

    first_name: Name = Field(alias="firstName")
    last_name: Name = Field(alias="lastName")
    phone: Annotated[str | None, StringConstraints(max_length=50)] = None
    company_name: Annotated[str | None, StringConstraints(max_length=255)] = Field(
        default=None, validation_alias=AliasChoices("companyName", "company")
    )
    special_requirements: Annotated[
        str | None, StringConstraints(max_length=METADATA_VALUE_LIMIT)
    ] = Field(default=None, alias="specialRequirements")
    number_of_participants: int = Field(alias="numberOfParticipants", ge=1, le=12)
    participant_details: list[Participant] | None = Field(
        default=None, alias="participantDetails", max_length=11
    )

    @model_validator(mode="after")
    def _no_more_participants_than_places(self) -> CheckoutDetails:
        named = len(self.participant_details or ())
        if named > self.number_of_participants - 1:
            raise ValueError(
                f"participantDetails names {named} people, but the booker takes one of the "
                f"{self.number_of_participants} place(s)"
            )
        return self

    def stored_participants(self) -> str | None:
        """``participant_details`` as stored (JSON), or None if the call sent none."""
        if self.participant_details is None:
            return None
        return json.dumps([participant.stored() for participant in self.participant_details])


CHECKOUT_INTENT_EXAMPLE = {
    "courseSessionId": 1,
    "amount": 15000,
    "bookingData": {
        "firstName": "Sam",
        "lastName": "Patel",
        "email": "sam.patel@example.com",
        "phone": "07700 900123",
        "companyName": "Acme Ltd",
        "specialRequirements": "wheelchair access",
        "numberOfParticipants": 2,
    },
}


class CheckoutIntentRequest(BaseModel):
    """The site's body. Its first call names the session ``courseScheduleId``."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="ignore",
        json_schema_extra={"examples": [CHECKOUT_INTENT_EXAMPLE]},
    )

    course_session_id: int = Field(
        validation_alias=AliasChoices("courseSessionId", "courseScheduleId"),
        gt=0,
        le=2**31 - 1,
    )
    amount: int = Field(gt=0, le=10_000_000, description="Pence: the site's own total")
    booking_data: CheckoutDetails = Field(alias="bookingData")

    def request_digest(self) -> str:
        """Who buys what for how much, with the details typed: what both of the site's
        calls send alike (not ``participantDetails``, which only the first sends)."""
        details = self.booking_data
        parts = (
            self.course_session_id,
            details.normalized_email,
            details.number_of_participants,
            self.amount,
            details.first_name,
            details.last_name,
            details.phone or "",
            details.company_name or "",
            details.special_requirements or "",
        )
        return _digest(*parts)

    def checkout_key(self, caller: Caller) -> str:
        """The checkout's record: the caller's key alone, else the caller's request.
        No contact detail can be read back from it."""
        if caller.idempotency_key is not None:
            return _digest("key", caller.idempotency_key)
        return _digest("client", caller.address, caller.user_agent, self.request_digest())

    def metadata(self) -> dict[str, str]:
        details = self.booking_data
        values = {
            META_SESSION: str(self.course_session_id),
            META_PARTICIPANTS: str(details.number_of_participants),
            META_EMAIL_FINGERPRINT: email_fingerprint(details.normalized_email),
            META_FIRST_NAME: details.first_name,
            META_LAST_NAME: details.last_name,
            META_EMAIL: details.email.strip(),
            META_PHONE: details.phone,
            META_COMPANY: details.company_name,
            META_SPECIAL_REQUIREMENTS: details.special_requirements,
            META_REQUEST: self.request_digest(),
        }
        return {key: value for key, value in values.items() if value} | details.consent_metadata()


@dataclass(frozen=True)
class Caller:
    """Who asks for an intent: their ``Idempotency-Key`` if they send one, else their
    source IP and User-Agent (what the booking site's calls have in common)."""

    address: str = ""
    user_agent: str = ""
    idempotency_key: str | None = None


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


@dataclass(frozen=True)
class CheckoutIntent:
    intent: PaymentIntent
    reused: bool


LATEST_CHECKOUT = """
    SELECT generation, payment_intent_id,
           created_at > now() - make_interval(hours => :reuse_hours) AS fresh
    FROM payment_checkouts WHERE checkout_key = :key
    ORDER BY generation DESC LIMIT 1
"""
RECORD_CHECKOUT = """
    INSERT INTO payment_checkouts (checkout_key, generation, payment_intent_id,
                                   course_schedule_id, number_of_attendees, amount_pence,
                                   participant_details)
    VALUES (:key, :generation, :intent_id, :session_id, :participants, :amount,
            coalesce(CAST(:participant_details AS jsonb),
                     (SELECT participant_details FROM payment_checkouts
                      WHERE checkout_key = CAST(:key AS varchar)
                        AND generation = CAST(:generation AS integer) - 1)))
"""
"""A new generation keeps the participants the previous one stored unless given anew."""
UPDATE_PARTICIPANTS = """
    UPDATE payment_checkouts SET participant_details = CAST(:participant_details AS jsonb)
    WHERE checkout_key = :key AND generation = :generation
"""


def checkout_intent(request: CheckoutIntentRequest, caller: Caller) -> CheckoutIntent:
    """This caller's checkout's PaymentIntent: the one made for it in the last 24 hours,
    else a new one."""
    return run_transaction(lambda connection: _checkout_intent(connection, request, caller))


def _checkout_intent(
    connection: Connection, request: CheckoutIntentRequest, caller: Caller
) -> CheckoutIntent:
    key = request.checkout_key(caller)
    participants = request.booking_data.stored_participants()
    connection.execute(LOCK_CHECKOUT, {"key": key})
    _check_bookable(connection, request)
    latest = connection.execute(
        LATEST_CHECKOUT, {"key": key, "reuse_hours": CHECKOUT_REUSE_HOURS}
    ).first()
    if latest is not None and latest.fresh:
        intent = retrieve_payment_intent(latest.payment_intent_id)
        if intent is not None and intent.metadata.get(META_REQUEST) != request.request_digest():
            raise InvalidRequest(
                "this Idempotency-Key was already used with a different request body",
                field="Idempotency-Key",
            )
        if intent is not None and intent.status in REUSABLE_INTENT_STATUSES:
            if participants is not None:
                connection.execute(
                    UPDATE_PARTICIPANTS,
                    {
                        "key": key,
                        "generation": latest.generation,
                        "participant_details": participants,
                    },
                )
            return CheckoutIntent(intent=intent, reused=True)
    generation = 0 if latest is None else latest.generation + 1
    intent = create_payment_intent(
        request.amount, request.metadata(), idempotency_key=f"rft-checkout-{key}-{generation}"
    )
    connection.execute(
        RECORD_CHECKOUT,
        {
            "key": key,
            "generation": generation,
            "intent_id": intent.id,
            "session_id": request.course_session_id,
            "participants": request.booking_data.number_of_participants,
            "amount": request.amount,
            "participant_details": participants,
        },
    )
    return CheckoutIntent(intent=intent, reused=False)


def _check_bookable(connection: Connection, request: CheckoutIntentRequest) -> None:
    session = connection.execute(
        SESSION_FOR_CHECKOUT, {"session_id": request.course_session_id}
    ).first()
    if session is None or session.status == "cancelled":
        raise NotFound(
            f"course session {request.course_session_id} does not exist or is cancelled",
            field="courseSessionId",
        )
    if session.started:
        raise Conflict(
            f"course session {request.course_session_id} has already started",
            field="courseSessionId",
        )
    participants = request.booking_data.number_of_participants
    seats_left = max(session.max_capacity - session.seats_committed, 0)
    if participants > seats_left:
        raise Conflict(
            f"not enough seats: {seats_left} left, {participants} requested",
            field="bookingData.numberOfParticipants",
        )
    price = to_pence(booking_price(session.price, participants))
    if request.amount != price:
        raise InvalidRequest(
            f"amount {request.amount} does not match the price of {participants} "
            f"place(s): {price} pence",
            field="amount",
        )


def booking_fields_from_metadata(intent: PaymentIntent) -> dict[str, Any] | None:
    """The booking body (``BookingRequest`` fields) the intent's metadata describes,
    or ``None`` if this system's checkout did not make the intent."""
    metadata = intent.metadata
    if META_SESSION not in metadata or META_PARTICIPANTS not in metadata:
        return None
    return {
        "courseSessionId": metadata[META_SESSION],
        "paymentIntentId": intent.id,
        "firstName": metadata.get(META_FIRST_NAME),
        "lastName": metadata.get(META_LAST_NAME),
        "email": metadata.get(META_EMAIL),
        "phone": metadata.get(META_PHONE),
        "company": metadata.get(META_COMPANY),
        "numberOfParticipants": metadata[META_PARTICIPANTS],
        "specialRequirements": metadata.get(META_SPECIAL_REQUIREMENTS),
        "totalAmount": f"{intent.amount / 100:.2f}",
        "marketingConsent": _choice(None, metadata.get(META_MARKETING_CONSENT)),
        "renewalRemindersOptOut": _choice(None, metadata.get(META_REMINDERS_OPT_OUT)),
    }
