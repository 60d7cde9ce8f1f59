"""POST /api/bookings (the booking site's checkout) and GET /api/health."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from rft_common.aws.fingerprints import email_log_fingerprint
from rft_common.checkout.bookings import BookingCreated, BookingRequest, place_booking
from rft_common.core.observability import logger, metrics
from rft_common.db.postgres import run_transaction
from rft_common.http.api import ERROR_RESPONSES, ErrorResponse

router = Router()


@router.post(
    "/api/bookings",
    summary="Create a booking (the booking site's checkout)",
    description=(
        "Anonymous. The answer has one shape whether the email was new, a known "
        "customer's or a staff member's. `customerId` is the id of the customer the booking "
        "was linked to (null when it was not): a deployed client reads it (the company's "
        "admin Users check opens that customer's page from it), so it stays, although it "
        "tells a caller who knows an email that person's internal id; an id alone opens "
        "nothing without a staff token. The client wins here over the wish to name nobody."
    ),
    tags=["bookings"],
    responses={
        201: {
            "description": "Booking created, or replayed for a repeated Idempotency-Key",
            "content": {"application/json": {"model": BookingCreated}},
        },
        402: {
            "description": "`paymentIntentId` names no payment Stripe knows, or one not succeeded",
            "content": {"application/json": {"model": ErrorResponse}},
        },
        404: {
            "description": "Unknown or cancelled course session",
            "content": {"application/json": {"model": ErrorResponse}},
        },
        409: {
            "description": "Session full; for a paid booking, this email already booked "
            "it; or the payment already paid for another booking (or for this one, which "
            "got no seat: staff have it). An unpaid booking is never refused because its "
            "email booked the session, so that its answer does not tell whether it did",
            "content": {"application/json": {"model": ErrorResponse}},
        },
        **ERROR_RESPONSES,
        502: {
            "description": "Stripe failed or could not be reached",
            "content": {"application/json": {"model": ErrorResponse}},
        },
    },
)
def post_booking(
    booking: BookingRequest,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retries with the same key and body return the original booking",
        ),
    ] = None,
) -> Response[BookingCreated]:
    outcome = place_booking(booking, idempotency_key=idempotency_key)
    body = outcome.body
    logger.info(
        "booking replayed" if outcome.replayed else "booking created",
        extra={
            "booking_id": body["bookingId"],
            "customer_id": body["customerId"],
            "email_fingerprint": email_log_fingerprint(booking.normalized_email),
            "customer_accounts": outcome.link_customer,
        },
    )
    if not outcome.replayed:
        metrics.add_metric(name="BookingsCreated", unit=MetricUnit.Count, value=1)
        if body["customerId"] is not None:
            metrics.add_metric(name="CustomersLinked", unit=MetricUnit.Count, value=1)
        if outcome.customer_created:
            metrics.add_metric(name="CustomersCreated", unit=MetricUnit.Count, value=1)
    return Response(
        status_code=HTTPStatus.CREATED,
        content_type="application/json",
        body=body,
        headers={"Idempotent-Replayed": "true"} if outcome.replayed else None,
    )


class Health(BaseModel):
    status: str
    database: str


@router.get(
    "/api/health",
    summary="Liveness with a database round trip",
    tags=["health"],
    responses={
        200: {"description": "Up", "content": {"application/json": {"model": Health}}},
        **{status: ERROR_RESPONSES[status] for status in (422, 500, 503)},
    },
)
def health() -> Health:
    run_transaction(lambda connection: connection.execute("SELECT 1"), attempts=1)
    return Health(status="ok", database="reachable")
