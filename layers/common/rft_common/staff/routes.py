"""Staff sign-in for the admin dashboard: /api/admin/auth/login, /me, /refresh, /logout,
/change-password, /forgot-password, /reset-password, /logout-everywhere.

The shapes are the dashboard's (``admin-auth.service.ts``, ``AdminAuthContext.tsx``):
camelCase bodies, the refresh token only ever in the ``refreshToken`` cookie
(HttpOnly, Secure, SameSite=Strict, Path ``/api/admin/auth``, 7 days), errors told
apart by status alone (401 wrong credentials, 403 deactivated, 429 too many
failures). The logic is in ``rft_common.staff.service``; tokens in ``rft_common.staff.tokens``.
"""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from rft_common.core.errors import DomainError, TooManyRequests
from rft_common.core.observability import logger, metrics
from rft_common.http.api import (
    ERROR_RESPONSES,
    STAFF_BEARER_SCHEME,
    ErrorResponse,
    domain_error_response,
)
from rft_common.staff import service as staff
from rft_common.staff.tokens import ACCESS_TOKEN_SECONDS, REFRESH_TOKEN_SECONDS, authenticate_staff

router = Router()

TAGS = ["admin sign-in"]
COOKIE_NAME = "refreshToken"
COOKIE_PATH = "/api/admin/auth"


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorResponse}}}


NO_INPUT_ERRORS = {status: ERROR_RESPONSES[status] for status in (422, 500, 503)}
"""A route without parameters or body: 422 only in the shared shape Powertools documents."""


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


LOGIN_EXAMPLE = {"email": "admin@example.com", "password": "an-example-password"}
"""The document's example; the contract tests' local stack has this staff member."""


class LoginRequest(BaseModel):
    """The login form's body; other fields (the form may send ``captcha``) are ignored."""

    model_config = ConfigDict(json_schema_extra={"examples": [LOGIN_EXAMPLE]})

    email: Annotated[str, StringConstraints(min_length=1, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class SignedInUser(CamelModel):
    id: int
    email: str
    name: str
    role: str = Field(description="`admin` or `instructor`")


class LoginResponse(CamelModel):
    access_token: str = Field(description="Send as `Authorization: Bearer <token>`")
    user: SignedInUser
    expires_in: int = Field(description="Seconds the access token lasts", examples=[900])


class RefreshResponse(CamelModel):
    access_token: str
    expires_in: int = Field(examples=[900])


class CurrentUser(CamelModel):
    id: int
    email: str
    name: str
    role: str
    last_login: datetime | None = Field(description="When this staff member last signed in")
    permissions: list[str] = Field(description="What the dashboard's menus may offer")


class SignedOut(BaseModel):
    success: bool
    message: str


def _count_refusal() -> None:
    """``StaffSignInsRefused``: wrong passwords, locked-out emails, deactivated accounts
    (a sudden rise is someone guessing passwords)."""
    metrics.add_metric(name="StaffSignInsRefused", unit=MetricUnit.Count, value=1)


def _refresh_cookie(token: str) -> Cookie:
    return Cookie(
        name=COOKIE_NAME,
        value=token,
        path=COOKIE_PATH,
        secure=True,
        http_only=True,
        max_age=REFRESH_TOKEN_SECONDS,
        same_site=SameSite.STRICT_MODE,
    )


def _expired_cookie() -> Cookie:
    return Cookie(
        name=COOKIE_NAME,
        value="",
        path=COOKIE_PATH,
        secure=True,
        http_only=True,
        max_age=0,
        same_site=SameSite.STRICT_MODE,
    )


def _refresh_token_sent() -> str | None:
    """The ``refreshToken`` cookie of this request, if any."""
    event = router.current_event
    headers = event.multi_value_headers or {}
    values = [
        value
        for name, header_values in headers.items()
        if name.lower() == "cookie"
        for value in header_values or []
    ] or [event.headers.get("cookie") or ""]
    for header in values:
        for pair in header.split(";"):
            name, _, value = pair.strip().partition("=")
            if name == COOKIE_NAME and value:
                return value
    return None


def _json(model: BaseModel, *, cookies: list[Cookie]) -> Response[Any]:
    return Response(
        status_code=HTTPStatus.OK,
        content_type="application/json",
        body=model.model_dump_json(by_alias=True),
        cookies=cookies,
    )


@router.post(
    "/api/admin/auth/login",
    summary="Sign a staff member in",
    description="Admins and instructors only (customers never sign in here). Sets the "
    "`refreshToken` cookie (HttpOnly, Secure, SameSite=Strict, Path /api/admin/auth, 7 "
    "days). The dashboard tells errors apart by status alone, so the statuses are its "
    "contract: 401 for a wrong email or password, 403 for a deactivated account, 429 "
    "after 5 failures for one email from one client (IPv4 address, IPv6 /64) in 15 "
    "minutes, or 100 for that email from all clients (counted across every Lambda): a "
    "stranger's guesses lock out the stranger, not the staff member's own client.",
    tags=TAGS,
    responses={
        200: {
            "description": "Signed in; the refresh token is in the Set-Cookie header",
            "content": {"application/json": {"model": LoginResponse}},
        },
        401: _error("Wrong email or password"),
        403: _error("The account is deactivated"),
        429: _error("Too many failed sign-ins for this email; `Retry-After` says when to retry"),
        **ERROR_RESPONSES,
    },
)
def login(credentials: Annotated[LoginRequest, Body()]) -> Response[Any]:
    try:
        session = staff.sign_in(credentials.email, credentials.password, client=_client())
    except TooManyRequests as refusal:
        logger.info("staff sign-in refused: too many failures")
        _count_refusal()
        response = domain_error_response(refusal)
        response.headers["Retry-After"] = str(int(staff.FAILURE_WINDOW.total_seconds()))
        return response
    except DomainError:
        _count_refusal()
        raise
    logger.info("staff signed in", extra={"staff_id": session.user.id, "role": session.user.role})
    body = LoginResponse(
        access_token=session.access_token,
        user=SignedInUser(
            id=session.user.id,
            email=session.user.email,
            name=session.user.name,
            role=session.user.role,
        ),
        expires_in=session.expires_in,
    )
    return _json(body, cookies=[_refresh_cookie(session.refresh_token)])


@router.get(
    "/api/admin/auth/me",
    summary="The signed-in staff member",
    description="The dashboard signs out on any error here.",
    tags=TAGS,
    security=[{STAFF_BEARER_SCHEME: []}],
    responses={
        200: {
            "description": "Who is signed in",
            "content": {"application/json": {"model": CurrentUser}},
        },
        401: _error("No valid access token, or the account can no longer sign in"),
        **NO_INPUT_ERRORS,
    },
)
def me() -> CurrentUser:
    signed_in = authenticate_staff(router.current_event.headers.get("authorization"))
    member, permissions = staff.current_staff(signed_in)
    return CurrentUser(
        id=member.id,
        email=member.email,
        name=member.name,
        role=member.role,
        last_login=member.last_login,
        permissions=permissions,
    )


@router.post(
    "/api/admin/auth/refresh",
    summary="A new access token for the session's refresh cookie",
    description="Reads only the `refreshToken` cookie (the body is ignored). Refused (401) "
    "once the session was signed out, the password, role or active state changed, or "
    "the cookie expired (7 days after sign-in: the session is not extended).",
    tags=TAGS,
    responses={
        200: {
            "description": "A new access token",
            "content": {"application/json": {"model": RefreshResponse}},
        },
        401: _error("No refresh cookie, or one that is no longer good"),
        **NO_INPUT_ERRORS,
    },
)
def refresh() -> RefreshResponse:
    token = staff.refresh_access(_refresh_token_sent())
    return RefreshResponse(access_token=token, expires_in=ACCESS_TOKEN_SECONDS)


@router.post(
    "/api/admin/auth/logout",
    summary="Sign out: revoke the session's refresh token and clear its cookie",
    description="Always succeeds (the dashboard ignores the answer); a bearer token may "
    "be sent but is not needed.",
    tags=TAGS,
    responses={
        200: {
            "description": "Signed out",
            "content": {"application/json": {"model": SignedOut}},
        },
        **NO_INPUT_ERRORS,
    },
)
def logout() -> Response[Any]:
    staff.sign_out(_refresh_token_sent())
    body = SignedOut(success=True, message="Signed out")
    return _json(body, cookies=[_expired_cookie()])


class ChangePasswordRequest(CamelModel):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    new_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(
        description=f"At least {staff.MIN_PASSWORD_LENGTH} characters (only the first 72 "
        "bytes count, as for every bcrypt password)"
    )


class ForgotPasswordRequest(BaseModel):
    email: Annotated[str, StringConstraints(min_length=1, max_length=254)]


class ResetPasswordRequest(CamelModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    new_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(
        description=f"At least {staff.MIN_PASSWORD_LENGTH} characters"
    )


FORGOT_ANSWER = SignedOut(
    success=True,
    message="If this email belongs to a staff account, a link to reset its password is on "
    "its way. It works once, for 30 minutes.",
)


def _client_address() -> str:
    """The caller's address as API Gateway saw it (the forgot-password limit per client)."""
    context = router.current_event.raw_event.get("requestContext") or {}
    return str((context.get("identity") or {}).get("sourceIp") or "unknown")


def _client() -> str:
    """The caller, for the failed-login counts (``staff.service.login_client``)."""
    return staff.login_client(_client_address())


@router.post(
    "/api/admin/auth/change-password",
    summary="Change the signed-in staff member's password",
    description=(
        "Needs the bearer token and the current password. A wrong current password is a "
        "400 (not 401, which would sign the dashboard out) and counts as a failed sign-in, "
        "so five in 15 minutes give 429, as at the login. The new password follows the "
        "login's rules (a 422 naming `newPassword` if not). Every other session of the "
        "account ends (its refresh is refused) and the account is emailed. **This session "
        "continues**: the answer carries a fresh access token and sets a fresh "
        "`refreshToken` cookie. The person has just proved they know the password, so "
        "signing them out would only cost them a login; the dashboard ignores the body, "
        "and its next refresh (with the new cookie) keeps it signed in."
    ),
    tags=TAGS,
    security=[{STAFF_BEARER_SCHEME: []}],
    responses={
        200: {
            "description": "Changed; a new access token, and the new refresh cookie",
            "content": {"application/json": {"model": RefreshResponse}},
        },
        400: _error("The current password is wrong"),
        401: _error("No valid access token, or the account can no longer sign in"),
        429: _error("Too many wrong passwords for this account; `Retry-After` says when"),
        **ERROR_RESPONSES,
    },
)
def change_password(change: Annotated[ChangePasswordRequest, Body()]) -> Response[Any]:
    signed_in = authenticate_staff(router.current_event.headers.get("authorization"))
    try:
        session = staff.change_password(
            signed_in, change.current_password, change.new_password, client=_client()
        )
    except TooManyRequests as refusal:
        _count_refusal()
        response = domain_error_response(refusal)
        response.headers["Retry-After"] = str(int(staff.FAILURE_WINDOW.total_seconds()))
        return response
    logger.info("staff password changed", extra={"staff_id": signed_in.id, "by": "change"})
    body = RefreshResponse(access_token=session.access_token, expires_in=session.expires_in)
    return _json(body, cookies=[_refresh_cookie(session.refresh_token)])


@router.post(
    "/api/admin/auth/forgot-password",
    summary="Email a password reset link to a staff member",
    description="Answers the same (200, same body, about the same time: the same statements "
    "run either way and nothing waits for email) whether or not the email belongs to "
    "active staff, so it tells no one who has an account. When it does, a single-use link "
    "valid for 30 minutes is emailed (built from `ADMIN_RESET_URL`, by default "
    "`{AdminOrigin}/admin/reset-password?token=...`); only a hash of its token is stored. "
    f"Limits per hour: {staff.RESET_REQUESTS_PER_EMAIL} emails to one address (further "
    "requests answer the same and send nothing), "
    f"{staff.RESET_REQUESTS_PER_CLIENT} requests from one client address (then 429).",
    tags=TAGS,
    responses={
        200: {
            "description": "Accepted (whether or not the email is staff's)",
            "content": {"application/json": {"model": SignedOut}},
        },
        429: _error("Too many requests from this client; `Retry-After` says when"),
        **ERROR_RESPONSES,
    },
)
def forgot_password(request: Annotated[ForgotPasswordRequest, Body()]) -> Response[Any]:
    try:
        staff.request_password_reset(request.email, _client_address())
    except TooManyRequests as refusal:
        response = domain_error_response(refusal)
        response.headers["Retry-After"] = str(int(staff.RESET_REQUEST_WINDOW.total_seconds()))
        return response
    return _json(FORGOT_ANSWER, cookies=[])


@router.post(
    "/api/admin/auth/reset-password",
    summary="Set a new password with the emailed reset token",
    description="The token from the reset link: single use, 30 minutes. A used, expired or "
    "unknown token gets the same 400. The new password follows the login's rules (at "
    f"least {staff.MIN_PASSWORD_LENGTH} characters; shorter is a 422 naming `newPassword`). Every "
    "session of the account ends (sign in again with the new password), other reset links "
    "stop working, the failed-login count is cleared, and the account is emailed.",
    tags=TAGS,
    responses={
        200: {
            "description": "Password changed; sign in with it",
            "content": {"application/json": {"model": SignedOut}},
        },
        400: _error("The token is not valid: used, expired or unknown (always this answer)"),
        **ERROR_RESPONSES,
    },
)
def reset_password(reset: Annotated[ResetPasswordRequest, Body()]) -> Response[Any]:
    staff.reset_password(reset.token, reset.new_password)
    logger.info("staff password reset")
    body = SignedOut(success=True, message="Password changed; sign in with the new password")
    return _json(body, cookies=[_expired_cookie()])


@router.post(
    "/api/admin/auth/logout-everywhere",
    summary="Sign out on every device: end all of this staff member's sessions at once",
    description="Every access and refresh token issued to the caller so far stops working "
    "(the admin gate compares each token's `ver` with the account's).",
    tags=TAGS,
    security=[{STAFF_BEARER_SCHEME: []}],
    responses={
        200: {
            "description": "Signed out everywhere",
            "content": {"application/json": {"model": SignedOut}},
        },
        401: _error("No valid access token, or a session already ended"),
        **NO_INPUT_ERRORS,
    },
)
def logout_everywhere() -> Response[Any]:
    signed_in = authenticate_staff(router.current_event.headers.get("authorization"))
    staff.current_staff(signed_in)
    staff.end_all_sessions(signed_in)
    body = SignedOut(success=True, message="Signed out everywhere")
    return _json(body, cookies=[_expired_cookie()])
