"""What every HTTP function shares: the resolver, error shapes and status mapping.

Every error response has one shape, ``ErrorResponse``: a message for people and,
for invalid input, the fields at fault. Domain exceptions map to statuses here and
nowhere else; nothing unexpected ever leaks a stack trace.
"""

from __future__ import annotations

import base64
import functools
import json
import sys
import traceback
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel

from rft_common.core import snapstart
from rft_common.core.errors import (
    BadSignature,
    Conflict,
    CredentialRefused,
    DatabaseUnavailable,
    DomainError,
    FeatureDisabled,
    Forbidden,
    InvalidRequest,
    MergedAway,
    NotFound,
    PaymentProviderUnavailable,
    PaymentRequired,
    TooManyRequests,
    Unauthorized,
)
from rft_common.core.observability import logger, metrics


class FieldError(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    message: str
    errors: list[FieldError] = []


STATUS_BY_ERROR: dict[type[DomainError], HTTPStatus] = {
    Unauthorized: HTTPStatus.UNAUTHORIZED,
    Forbidden: HTTPStatus.FORBIDDEN,
    NotFound: HTTPStatus.NOT_FOUND,
    Conflict: HTTPStatus.CONFLICT,
    MergedAway: HTTPStatus.MOVED_PERMANENTLY,
    InvalidRequest: HTTPStatus.UNPROCESSABLE_ENTITY,
    TooManyRequests: HTTPStatus.TOO_MANY_REQUESTS,
    DatabaseUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
    FeatureDisabled: HTTPStatus.SERVICE_UNAVAILABLE,
    PaymentRequired: HTTPStatus.PAYMENT_REQUIRED,
    BadSignature: HTTPStatus.BAD_REQUEST,
    CredentialRefused: HTTPStatus.BAD_REQUEST,
    PaymentProviderUnavailable: HTTPStatus.BAD_GATEWAY,
}


def error_doc(description: str) -> dict[str, Any]:
    """An error answer as the OpenAPI document describes it: ``ErrorResponse``."""
    return {"description": description, "content": {"application/json": {"model": ErrorResponse}}}


def ok_doc(description: str, model: type) -> dict[int | str, dict[str, Any]]:
    """A 200 answer of ``model`` as the OpenAPI document describes it."""
    return {200: {"description": description, "content": {"application/json": {"model": model}}}}


BEARER_SCHEME = "bearerAuth"
"""An admin's access token: the admin routes' security scheme."""
STAFF_BEARER_SCHEME = "staffBearerAuth"
"""The access token of any staff member (admin or instructor); only /me takes it."""


def security_schemes() -> dict[str, Any]:
    """The admin routes' bearer schemes, as the document declares them."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return {
        BEARER_SCHEME: HTTPBearer(
            bearerFormat="JWT",
            description="The admin login's access token (HS256): `exp`, `iss` "
            "(`reactfasttraining.co.uk`), `aud` (`admin`), `id`, `email` and `role: admin` "
            "required; no `sub` needed. A refresh token is never accepted here.",
        ),
        STAFF_BEARER_SCHEME: HTTPBearer(
            bearerFormat="JWT",
            description="The same access token, of any staff role (`admin` or `instructor`).",
        ),
    }


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {"application/json": {"model": ErrorResponse}},
    }
    for status, description in {
        415: "The body is not JSON (send Content-Type: application/json)",
        422: "Invalid input: `errors` names each field at fault",
        500: "Unexpected failure (no details are exposed)",
        503: "Database unreachable or feature switched off",
    }.items()
}


def error_response(
    status: HTTPStatus, message: str, errors: list[FieldError] | None = None
) -> Response[ErrorResponse]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=ErrorResponse(message=message, errors=errors or []).model_dump_json(),
    )


def domain_error_response(error: DomainError) -> Response[ErrorResponse]:
    """The response for a refused request: its status, message and field at fault."""
    status = next(
        (code for kind, code in STATUS_BY_ERROR.items() if isinstance(error, kind)),
        HTTPStatus.BAD_REQUEST,
    )
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.warning("request failed", extra={"reason": error.message})
    errors = [FieldError(field=error.field, message=error.message)] if error.field else []
    response = error_response(status, error.message, errors)
    if status == HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="rft-admin"'
    if isinstance(error, MergedAway):
        response.headers["Location"] = error.location
        response.body = json.dumps(
            {"message": error.message, "errors": [], "merged_into": error.survivor_id}
        )
    return response


def proxy_result(response: Response[Any]) -> dict[str, Any]:
    """A ``Response`` as the REST API proxy result, for requests refused before routing."""
    return {
        "statusCode": int(response.status_code),
        "multiValueHeaders": {
            name: value if isinstance(value, list) else [value]
            for name, value in response.headers.items()
        },
        "body": response.body,
        "isBase64Encoded": False,
    }


def field_error(detail: dict[str, Any]) -> FieldError:
    """``loc ("body", "email")`` -> ``email``; an unparsable body -> ``body``."""
    location = detail.get("loc", ())
    if detail.get("type") == "json_invalid" or len(location) < 2:
        field = str(location[0]) if location else "body"
    else:
        field = ".".join(str(part) for part in location[1:])
    message = str(detail.get("msg", "invalid value")).removeprefix("Value error, ")
    if detail.get("type") == "extra_forbidden":
        message = "not a field that can be set here"
    return FieldError(field=field, message=message)


def log_unexpected(error: BaseException) -> None:
    """Log where an unexpected error came from, but not its message.

    Exception messages can carry request data (a database error quotes the
    conflicting email, for one), and logs must never hold PII.
    """
    logger.error(
        "unhandled error",
        extra={
            "error_type": f"{type(error).__module__}.{type(error).__qualname__}",
            "stack": "".join(traceback.format_tb(error.__traceback__)),
        },
    )


def parse_json_body(body: str) -> Any:
    """``json.loads``, except that input nested too deeply to parse is invalid JSON (422),
    not a crash (``RecursionError``, 500), and a string PostgreSQL could not store is
    422 naming it (``unstorable_at``)."""
    try:
        parsed = json.loads(body, parse_int=_integer)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", body, 0) from None
    path = unstorable_at(parsed)
    if path is not None:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", *path), "msg": UNSTORABLE, "input": {}}]
        )
    return parsed


def _integer(literal: str) -> int | float:
    """A JSON integer; one too long for Python to convert (``sys.get_int_max_str_digits``)
    is beyond every field's range anyway: infinity, which each numeric field refuses as
    not finite, naming itself (``int()`` would raise, a 500)."""
    if len(literal.lstrip("-")) > sys.get_int_max_str_digits():
        return float("-inf") if literal.startswith("-") else float("inf")
    return int(literal)


def unsupported_media_type() -> Response[ErrorResponse]:
    message = "send the body as application/json"
    return error_response(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE, message, [FieldError(field="body", message=message)]
    )


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
BODY_IGNORED_PATHS = ("/api/unsubscribe/",)
"""Routes that read no body and must take any: a one-click unsubscribe (RFC 8058) is
posted form-encoded or as multipart by mail clients, and must never be refused for it."""
INVALID_REQUEST = "invalid request"
UNSTORABLE = "contains a character that cannot be stored (NUL or an unpaired surrogate)"


def _storable(text: str) -> bool:
    """Whether PostgreSQL can store ``text``: it refuses NUL, and an unpaired UTF-16
    surrogate (valid in JSON as ``\\ud800``) has no UTF-8 form to send."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def unstorable_at(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where, in a parsed JSON ``value``, the first string PostgreSQL could not store is
    (``("bookingData", "firstName")``), else ``None``."""
    if isinstance(value, str):
        return None if _storable(value) else path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = unstorable_at(item, (*path, str(key)))
        if found is not None:
            return found
    return None


def _unprocessable(field: str, message: str) -> Response[ErrorResponse]:
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, message, [FieldError(field=field, message=message)]
    )


def _unstorable_parameter(event: dict[str, Any]) -> str | None:
    """The first query or path parameter PostgreSQL could not store, by name."""
    for source in ("multiValueQueryStringParameters", "pathParameters"):
        for name, values in (event.get(source) or {}).items():
            texts = values if isinstance(values, list) else [values]
            if not all(_storable(text) for text in texts if isinstance(text, str)):
                return name
    return None


def unreadable_body(event: dict[str, Any]) -> Response[ErrorResponse] | None:
    """The refusal for a request Powertools cannot even read, or with a query or path
    parameter PostgreSQL could not store, else ``None``.

    Powertools raises plain ``ValueError``s for these (a multipart type without a
    boundary, a base64 body that is not UTF-8), which would otherwise be 500s. No route
    takes multipart, so any multipart body is 415, the same answer as other non-JSON types.
    A NUL character (or an unpaired surrogate) in a parameter is 422 naming it:
    PostgreSQL would refuse it mid-transaction, a 500 (``parse_json_body`` does the same
    for the body, as it parses it).
    """
    parameter = _unstorable_parameter(event)
    if parameter is not None:
        # The shape of any other invalid parameter (``invalid_request`` below).
        return error_response(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            INVALID_REQUEST,
            [FieldError(field=parameter, message=UNSTORABLE)],
        )
    request = APIGatewayProxyEvent(event)
    if request.http_method not in BODY_METHODS or request.path.startswith(BODY_IGNORED_PATHS):
        return None
    content_type = (request.headers.get("content-type") or "").strip().lower()
    if content_type.startswith("multipart/"):
        return unsupported_media_type()
    if request.is_base64_encoded and request.body:
        try:
            base64.b64decode(request.body.encode()).decode()
        except ValueError:
            return _unprocessable("body", "the body is not UTF-8 text")
    return None


class JsonApiResolver(APIGatewayRestResolver):
    """A REST API resolver that answers unreadable bodies before Powertools parses them."""

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        refusal = unreadable_body(event)
        if refusal is not None:
            return proxy_result(refusal)
        return super().resolve(event, context)


def create_resolver() -> APIGatewayRestResolver:
    # A response that fails its own schema is our bug, not the caller's: 500, not 422.
    app = JsonApiResolver(
        enable_validation=True,
        response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR,
        json_body_deserializer=parse_json_body,
    )

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_content_type(error: RequestUnsupportedContentType) -> Response[ErrorResponse]:
        return unsupported_media_type()

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[ErrorResponse]:
        errors = [field_error(detail) for detail in error.errors()]
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, INVALID_REQUEST, errors)

    @app.exception_handler(DomainError)
    def domain_error(error: DomainError) -> Response[ErrorResponse]:
        return domain_error_response(error)

    # API Gateway only invokes a function for its own routes, so this is a path parameter
    # Powertools' route pattern refuses (control or unusual characters): no such resource.
    # Without it, the catch-all below would answer 500.
    @app.not_found
    def no_route(error: NotFoundError) -> Response[ErrorResponse]:
        return error_response(HTTPStatus.NOT_FOUND, "nothing exists at this path")

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[ErrorResponse]:
        log_unexpected(error)
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")

    return app


LambdaHandler = Callable[[dict, Any], dict]
Admit = Callable[[dict[str, Any]], dict[str, Any]]
"""Admits an event, answering the request context to route it with, or refuses it."""


def build_validation(app: APIGatewayRestResolver) -> None:
    """Build every route's request and response validation (a SnapStart warm-up step).

    Powertools builds a route's validation (its dependant, body field and pydantic
    ``TypeAdapter``s) on the route's first request; rendering the OpenAPI schema builds
    them for every route. The schema needs the bearer schemes the admin routes name."""
    app.get_openapi_schema(security_schemes=security_schemes())


def api_function(
    *routers: Router, admit: Admit | None = None
) -> tuple[APIGatewayRestResolver, LambdaHandler]:
    """An API function's resolver with ``routers``, and its handler: the request id as
    the logs' correlation id, metrics flushed after each invocation.

    ``admit``, if given, runs before routing: it returns what to add to the request
    context (``append_context``; routes read it from ``router.context``), or raises the
    ``DomainError`` to answer, so a refused request never reaches parameter validation
    or a route. Every route's validation is built before the SnapStart snapshot
    (``build_validation``)."""
    app = create_resolver()
    for router in routers:
        app.include_router(router)
    snapstart.warm(functools.partial(build_validation, app))

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @metrics.log_metrics
    def lambda_handler(event: dict, context: Any) -> dict:
        # A router belongs to the last resolver that included it, and its ``context`` is
        # that resolver's: claim ours for this request, in case another resolver of the
        # process included them since (the OpenAPI rendering, the local stack, tests).
        for router in routers:
            router.api_resolver = app
        if admit is not None:
            try:
                app.append_context(**admit(event))
            except DomainError as refusal:
                return never_stored(proxy_result(domain_error_response(refusal)))
        return never_stored(app.resolve(event, context))

    return app, lambda_handler


NO_STORE = "no-store"
"""Tokens, client secrets and customers' details must stay out of browser and proxy
caches: every answer says so unless its route chose to be cached (the sessions list)."""


def never_stored(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with ``Cache-Control: no-store`` unless it already names a policy."""
    headers = result.setdefault("multiValueHeaders", {})
    if not any(name.lower() == "cache-control" for name in headers):
        headers["Cache-Control"] = [NO_STORE]
    return result
