"""The booking site's checkout before the booking: the sessions on offer and the
PaymentIntent (``POST /api/bookings`` is in ``routes.bookings``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from pydantic import BaseModel, Field, ValidationError

from rft_common.aws.fingerprints import email_log_fingerprint
from rft_common.checkout.intents import Caller, CheckoutIntentRequest, checkout_intent
from rft_common.checkout.sessions import AvailableSession, available_sessions
from rft_common.core.errors import DomainError
from rft_common.core.observability import logger
from rft_common.http.api import (
    ERROR_RESPONSES,
    INVALID_REQUEST,
    ErrorResponse,
    domain_error_response,
    field_error,
)

router = Router()

SESSIONS_MAX_AGE_SECONDS = 5
"""Browsers and CDNs may reuse the list this long; a booking re-counts seats anyway."""


@router.get(
    "/api/courses/sessions/available",
    summary="Sessions open for booking (the booking site's session picker)",
    description=(
        "A bare JSON array, as the booking site reads it: published sessions that have "
        "not started and have a seat left, soonest first. `availableSpots` counts seats "
        "exactly as a booking does. `price` is per person; a booking of several places "
        "costs `price` x participants less the group discount. Cacheable for "
        f"{SESSIONS_MAX_AGE_SECONDS} s."
    ),
    tags=["checkout"],
    responses={
        200: {
            "description": "The sessions",
            "content": {"application/json": {"model": list[AvailableSession]}},
            "headers": {"Cache-Control": {"schema": {"type": "string"}}},
        },
        **{status: ERROR_RESPONSES[status] for status in (422, 500, 503)},
    },
)
def get_available_sessions(
    course: Annotated[
        str | None,
        Query(
            max_length=20,
            pattern=r"^[A-Za-z]*$",
            description="The site's course code, such as `EFAW` (case-insensitive)",
        ),
    ] = None,
) -> Response[list[AvailableSession]]:
    return Response(
        status_code=HTTPStatus.OK,
        content_type="application/json",
        body=available_sessions(course or None),
        headers={"Cache-Control": f"public, max-age={SESSIONS_MAX_AGE_SECONDS}"},
    )


class IntentDetails(BaseModel):
    id: str
    client_secret: str
    status: str
    amount: int = Field(description="Pence")
    currency: str = Field(examples=["gbp"])


class CheckoutIntentCreated(BaseModel):
    success: bool = Field(examples=[True])
    clientSecret: str
    paymentIntentId: str
    paymentIntent: IntentDetails


class CheckoutIntentError(ErrorResponse):
    """The site reads ``success`` and ``error``; ``message``/``errors`` are our usual shape.

    Every refusal of this route carries both, except a body the shared parser refuses
    (not JSON at all, or holding a NUL or an unpaired surrogate), which gets only the
    usual shape (415 or 422); the site checks only the status then."""

    success: bool = Field(default=False, examples=[False])
    error: str | None = None


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with its ``$defs`` written in place (the OpenAPI document
    has no ``$defs`` for a schema given as ``json_schema_extra``)."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return inline(definitions[reference.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


def _site_error(
    status: HTTPStatus, message: str, errors: list[Any]
) -> Response[CheckoutIntentError]:
    body = CheckoutIntentError(success=False, error=message, message=message, errors=errors)
    return Response(
        status_code=status, content_type="application/json", body=body.model_dump(mode="json")
    )


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"model": CheckoutIntentError}},
    }


@router.post(
    "/api/bookings/create-payment-intent",
    summary="The checkout's PaymentIntent, at the server's price",
    description=(
        "The booking site's body and answer, unchanged (the site is a deployed client, so "
        "its shapes win over ours): `{success, clientSecret, paymentIntentId, "
        "paymentIntent}`, and errors `{success: false, error}` (plus our usual `message` "
        "and `errors`). `courseScheduleId` is accepted for `courseSessionId`, as the "
        "site's first call sends it. `amount` (pence) must equal the server's price: "
        "price x participants, less 10% for 5 or more, rounded half-up. The same checkout "
        "from the same caller within 24 hours gets the same PaymentIntent, however often "
        "and however concurrently it is sent; the answer carries its client secret, so "
        "it is never given to another caller. With an `Idempotency-Key`, the checkout is "
        "the key's: the same key and body get the same intent, the same key with another "
        "body is 422. Without one (the booking site sends none), the caller is the source "
        "IP and User-Agent, and the checkout is the body (session, email, participants, "
        "amount, name, phone, company, special requirements): anyone else sending the "
        "same body gets a PaymentIntent of their own."
    ),
    tags=["checkout"],
    responses={
        200: {
            "description": "The checkout's PaymentIntent (new, or the one made before)",
            "content": {"application/json": {"model": CheckoutIntentCreated}},
        },
        404: _error("Unknown or cancelled session"),
        409: _error("Not enough seats left, or the session has already started"),
        415: ERROR_RESPONSES[415],
        422: _error(
            "Invalid body, `amount` is not the server's price, or the `Idempotency-Key` "
            "was used with another body"
        ),
        500: ERROR_RESPONSES[500],
        502: _error("Stripe failed or could not be reached"),
        503: _error("The database is not reachable"),
    },
)
def post_checkout_intent(
    body: Annotated[
        dict[str, Any],
        Body(json_schema_extra=_inline_schema(CheckoutIntentRequest)),
    ],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="The caller's own checkout: the same key and body get the same intent",
        ),
    ] = None,
) -> Response[CheckoutIntentCreated | CheckoutIntentError]:
    try:
        request = CheckoutIntentRequest.model_validate(body)
    except ValidationError as invalid:
        errors = [
            field_error({**detail, "loc": ("body", *detail["loc"])}) for detail in invalid.errors()
        ]
        return _site_error(HTTPStatus.UNPROCESSABLE_ENTITY, INVALID_REQUEST, errors)
    try:
        outcome = checkout_intent(request, _caller(idempotency_key))
    except DomainError as refusal:
        refused = domain_error_response(refusal)
        return _site_error(
            HTTPStatus(refused.status_code),
            refusal.message,
            [{"field": refusal.field, "message": refusal.message}] if refusal.field else [],
        )
    intent = outcome.intent
    logger.info(
        "payment intent reused" if outcome.reused else "payment intent created",
        extra={
            "payment_intent_id": intent.id,
            "course_session_id": request.course_session_id,
            "amount_pence": intent.amount,
            "email_fingerprint": email_log_fingerprint(request.booking_data.normalized_email),
        },
    )
    return Response(
        status_code=HTTPStatus.OK,
        content_type="application/json",
        body=CheckoutIntentCreated(
            success=True,
            clientSecret=intent.client_secret or "",
            paymentIntentId=intent.id,
            paymentIntent=IntentDetails(
                id=intent.id,
                client_secret=intent.client_secret or "",
                status=intent.status,
                amount=intent.amount,
                currency=intent.currency,
            ),
        ).model_dump(mode="json"),
    )


def _caller(idempotency_key: str | None) -> Caller:
    identity = router.current_event.request_context.identity
    return Caller(
        address=identity.source_ip or "",
        user_agent=identity.user_agent or router.current_event.headers.get("user-agent") or "",
        idempotency_key=idempotency_key,
    )
