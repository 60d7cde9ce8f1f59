"""What a Stripe webhook event does. The safety net behind the browser's booking call.

- ``payment_intent.succeeded``: the booking the intent's metadata describes, made by
  the booking path's own ``create_booking`` (same transaction, seat check, customer
  linking and ``customer_accounts`` flag). If the browser's post got there first,
  that booking holds the intent and nothing changes; if this event gets there first,
  the browser's post replays this booking. A paid booking with no seat is recorded
  ``pending`` + ``paid`` with its reason (``unplaced_reason``), never dropped.
- ``charge.refunded``: a full refund turns the booking's ``payment_status`` into
  ``refunded`` (the statistics triggers follow). If the booking does not exist yet
  (events out of order), the refund is remembered and the booking is stored refunded.
- Any other type: ignored.

Each event's id is recorded (``stripe_events``) in the transaction that acts on it,
before anything else: a redelivery, even a concurrent one, waits for the first and
then changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rft_common.aws import flags
from rft_common.checkout.bookings import BookingOutcome, BookingRequest, create_booking
from rft_common.checkout.intents import booking_fields_from_metadata
from rft_common.checkout.stripe_api import PaymentIntent
from rft_common.core.errors import DomainError
from rft_common.db.locks import LOCK_PAYMENT_INTENT
from rft_common.db.postgres import Connection, run_transaction

PAYMENT_SUCCEEDED = "payment_intent.succeeded"
CHARGE_REFUNDED = "charge.refunded"

RECORD_EVENT = """
    INSERT INTO stripe_events (id, type, payment_intent_id, outcome)
    VALUES (:id, :type, :payment_intent_id, 'processing')
    ON CONFLICT (id) DO NOTHING
    RETURNING id
"""
SET_OUTCOME = """
    UPDATE stripe_events SET outcome = :outcome, booking_id = :booking_id WHERE id = :id
"""
REFUND_BOOKING = """
    UPDATE bookings SET payment_status = 'refunded', updated_at = now()
    WHERE stripe_payment_intent_id = :payment_intent_id AND payment_verified_at IS NOT NULL
      AND payment_status = 'paid'
    RETURNING id
"""
HAS_BOOKING = """
    SELECT id FROM bookings
    WHERE stripe_payment_intent_id = :payment_intent_id AND payment_verified_at IS NOT NULL
"""


@dataclass(frozen=True)
class EventResult:
    outcome: str
    """What the event did: booked, unplaced, already_booked, refunded,
    refunded_before_booking, partial_refund, duplicate, ignored, not_ours, refused."""
    booking: BookingOutcome | None = None
    reason: str | None = None


def handle_event(event: dict[str, Any]) -> EventResult:
    event_type = event.get("type")
    envelope = event.get("data")
    data = envelope.get("object") if isinstance(envelope, dict) else None
    if not isinstance(data, dict):
        data = {}
    if event_type == PAYMENT_SUCCEEDED:
        if not isinstance(data.get("id"), str):
            return EventResult("ignored", reason="the event holds no PaymentIntent")
        return _payment_succeeded(event["id"], PaymentIntent.from_stripe(data))
    if event_type == CHARGE_REFUNDED:
        return _charge_refunded(event["id"], data)
    return EventResult("ignored")


def _claim(connection: Connection, event_id: str, event_type: str, intent_id: str | None) -> bool:
    """Record the event; False if it was recorded before (a redelivery)."""
    claimed = connection.execute(
        RECORD_EVENT, {"id": event_id, "type": event_type, "payment_intent_id": intent_id}
    ).first()
    return claimed is not None


def _finish(
    connection: Connection, event_id: str, result: EventResult, booking_id: int | None = None
) -> EventResult:
    connection.execute(
        SET_OUTCOME, {"id": event_id, "outcome": result.outcome, "booking_id": booking_id}
    )
    return result


def _payment_succeeded(event_id: str, intent: PaymentIntent) -> EventResult:
    fields = booking_fields_from_metadata(intent)
    request: BookingRequest | None = None
    reason = None
    if fields is None:
        reason = "the intent was not made by this system's checkout"
    else:
        try:
            request = BookingRequest.model_validate(fields)
        except ValidationError as invalid:
            fields_at_fault = sorted({str(error["loc"][0]) for error in invalid.errors()})
            reason = f"invalid booking details in the metadata: {', '.join(fields_at_fault)}"
    link_customer = request is not None and flags.customer_accounts_enabled(
        request.normalized_email
    )

    def work(connection: Connection) -> EventResult:
        if not _claim(connection, event_id, PAYMENT_SUCCEEDED, intent.id):
            return EventResult("duplicate")
        if request is None:
            return _finish(connection, event_id, EventResult("not_ours", reason=reason))
        if intent.status != "succeeded":
            refusal = EventResult("refused", reason=f"intent status {intent.status}")
            return _finish(connection, event_id, refusal)
        try:
            booking = create_booking(
                connection,
                request,
                link_customer=link_customer,
                payment=intent,
                record_unplaced=True,
            )
        except DomainError as refusal:
            # Raised before anything was written (price, session, intent held by another
            # checkout): the event is recorded as refused, for a person to look at.
            return _finish(connection, event_id, EventResult("refused", reason=refusal.message))
        if booking.replayed:
            outcome = "already_booked"
        elif booking.unplaced_reason is not None:
            outcome = "unplaced"
        else:
            outcome = "booked"
        result = EventResult(outcome, booking=booking, reason=booking.unplaced_reason)
        return _finish(connection, event_id, result, booking.body["bookingId"])

    return run_transaction(work)


def _charge_refunded(event_id: str, charge: dict[str, Any]) -> EventResult:
    intent_id = charge.get("payment_intent")
    if not isinstance(intent_id, str):
        intent_id = None
    full_refund = bool(charge.get("refunded")) or (
        charge.get("amount") is not None and charge.get("amount_refunded") == charge.get("amount")
    )

    def work(connection: Connection) -> EventResult:
        if not _claim(connection, event_id, CHARGE_REFUNDED, intent_id):
            return EventResult("duplicate")
        if not intent_id:
            return _finish(connection, event_id, EventResult("not_ours"))
        if not full_refund:
            return _finish(connection, event_id, EventResult("partial_refund"))
        connection.execute(LOCK_PAYMENT_INTENT, {"payment_intent_id": intent_id})
        refunded = connection.execute(REFUND_BOOKING, {"payment_intent_id": intent_id}).first()
        if refunded is not None:
            return _finish(connection, event_id, EventResult("refunded"), refunded.id)
        existing = connection.execute(HAS_BOOKING, {"payment_intent_id": intent_id}).first()
        if existing is not None:  # refunded already (another event of the same refund)
            return _finish(connection, event_id, EventResult("refunded"), existing.id)
        return _finish(connection, event_id, EventResult("refunded_before_booking"))

    return run_transaction(work)
