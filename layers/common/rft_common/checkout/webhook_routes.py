"""POST /api/stripe/webhook: Stripe's events about the checkout's payments.

No admin token: the ``Stripe-Signature`` header, checked against the endpoint's
signing secret, is the authentication. What each event does is in
``rft_common.checkout.webhook``.
"""

from __future__ import annotations

from typing import Annotated, cast

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel

from rft_common.checkout.stripe_api import verified_event
from rft_common.checkout.webhook import handle_event
from rft_common.core.observability import logger, metrics
from rft_common.http.api import ERROR_RESPONSES, ErrorResponse

router = Router()

UNPLACED_METRIC = "PaidBookingsUnplaced"
"""The alarm ``PaidBookingsUnplacedAlarm`` fires on any of these."""


class EventReceived(BaseModel):
    received: bool
    outcome: str


@router.post(
    "/api/stripe/webhook",
    summary="Stripe webhook endpoint",
    description=(
        "Stripe posts its events here (`payment_intent.succeeded`, `charge.refunded`; "
        "other types are acknowledged and ignored). The body is the event exactly as "
        "Stripe signed it; `Stripe-Signature` must verify with the endpoint's signing "
        "secret, or the answer is 400. A redelivered event changes nothing."
    ),
    tags=["payments"],
    responses={
        200: {
            "description": "Event processed, or acknowledged",
            "content": {"application/json": {"model": EventReceived}},
        },
        400: {
            "description": "Missing or wrong signature",
            "content": {"application/json": {"model": ErrorResponse}},
        },
        **{status: ERROR_RESPONSES[status] for status in (422, 500, 503)},
        502: {
            "description": "The webhook's signing secret cannot be read",
            "content": {"application/json": {"model": ErrorResponse}},
        },
    },
)
def post_stripe_event(
    stripe_signature: Annotated[
        str | None,
        Header(alias="Stripe-Signature", max_length=2000, description="`t=...,v1=...`"),
    ] = None,
) -> EventReceived:
    request = cast(APIGatewayProxyEvent, router.current_event)
    event = verified_event(request.decoded_body or "", stripe_signature)
    result = handle_event(event)
    booking = result.booking
    logger.info(
        "stripe event processed",
        extra={
            "stripe_event_id": event["id"],
            "stripe_event_type": event.get("type"),
            "outcome": result.outcome,
            "reason": result.reason,
            "booking_id": booking.body["bookingId"] if booking else None,
            "customer_id": booking.body["customerId"] if booking else None,
        },
    )
    if result.outcome in ("unplaced", "refused"):
        logger.warning("paid but not placed: staff must act", extra={"reason": result.reason})
    if booking is not None and not booking.replayed:
        metrics.add_metric(name="BookingsCreated", unit=MetricUnit.Count, value=1)
        if booking.body["customerId"] is not None:
            metrics.add_metric(name="CustomersLinked", unit=MetricUnit.Count, value=1)
        if booking.customer_created:
            metrics.add_metric(name="CustomersCreated", unit=MetricUnit.Count, value=1)
    if result.outcome in ("unplaced", "refused"):
        metrics.add_metric(name=UNPLACED_METRIC, unit=MetricUnit.Count, value=1)
    return EventReceived(received=True, outcome=result.outcome)
