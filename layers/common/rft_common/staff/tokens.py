"""Admin authentication: the HS256 JWTs the admin login (``/api/admin/auth``) issues.

These are the tokens the admin dashboard was built against (its old login backend
issued the same). An **access token** is sent as ``Authorization: Bearer <token>``:

- signed with HS256 and the access secret (``alg: none`` and every other algorithm
  are refused: the algorithm is fixed here, never taken from the token);
- ``exp`` in the future and ``nbf`` (if present) passed;
- ``iss`` and ``aud`` the configured issuer and audience
  (``reactfasttraining.co.uk`` and ``admin`` unless ``ADMIN_JWT_ISSUER`` /
  ``ADMIN_JWT_AUDIENCE`` say otherwise);
- claims ``id`` (the staff member's user id), ``email``, ``role`` and ``ver`` (the
  user's ``token_version`` when it was issued); no ``sub`` is needed (one may be
  present, as may ``jti`` and ``iat``). The admin gate (``staff.gate``) compares ``ver``
  with the stored version on every request, so a password, role or active-state change,
  or signing out everywhere, ends the token at once. A token without ``ver`` is the old
  login backend's ``{id, email, role}`` (the company's admin tools still mint that shape
  with the shared secret): it counts as version 0, so it is honoured only until the
  account's sessions are first ended, like any token issued before that.

A **refresh token** is ``{id, type: "refresh", ver, jti}`` with the same issuer and
audience, signed with a separate secret; it only ever travels as the ``refreshToken``
cookie to ``/api/admin/auth/refresh`` and is never accepted as an access token.

Anything missing or untrustworthy is ``Unauthorized`` (401: the dashboard then signs
the admin out); a trustworthy token of another role is ``Forbidden`` (403).

Each secret comes from Secrets Manager in AWS (``ADMIN_JWT_SECRET_ARN``,
``ADMIN_REFRESH_SECRET_ARN``, through ``rft_common.aws.secrets``, so a rotation takes
effect within its cache age) or, for the local stack and tests only, from
``ADMIN_JWT_SECRET`` / ``ADMIN_REFRESH_SECRET``. Without one, no token is accepted.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from rft_common.aws.secrets import SecretUnavailable, secret_string
from rft_common.core.errors import FeatureDisabled, Forbidden, Unauthorized
from rft_common.core.settings import get_settings
from rft_common.core.vocabulary import ADMIN_ROLE

ALGORITHM = "HS256"
ACCESS_TOKEN_SECONDS = 15 * 60
REFRESH_TOKEN_SECONDS = 7 * 24 * 3600
REFRESH_TYPE = "refresh"
ACCESS_CLAIMS = ("exp", "iss", "aud", "id", "email", "role")
LEGACY_TOKEN_VERSION = 0
"""What an access token without ``ver`` (the old login's shape) counts as."""
REFRESH_CLAIMS = ("exp", "iss", "aud", "id", "type", "ver", "jti")
CLOCK_SKEW_SECONDS = 10


@dataclass(frozen=True)
class Staff:
    """Who an access token was issued to."""

    id: int
    email: str
    role: str
    token_version: int = 0

    def still_admin(self, account: Any) -> bool:
        """Whether ``account`` (this admin's ``users`` row as stored now, or ``None``) still
        backs the token: active, an admin, and at the token's version (a password, role or
        active-state change, or signing out everywhere, moves the version on)."""
        return (
            account is not None
            and account.is_active
            and account.role == "admin"
            and account.token_version == self.token_version
        )


@dataclass(frozen=True)
class RefreshClaims:
    user_id: int
    token_version: int
    jti: str
    expires_at: int


def _configured_secret(arn: str | None, value: str | None, variable: str) -> str:
    secret: str | None = None
    if arn:
        try:
            secret = secret_string(arn)
        except SecretUnavailable:
            raise FeatureDisabled(
                "admin sign-in is unavailable: its secret cannot be read"
            ) from None
    elif value:
        secret = value
    if not secret:
        raise FeatureDisabled(f"admin sign-in is not configured ({variable}); no token is accepted")
    return secret


def access_secret() -> str:
    settings = get_settings()
    return _configured_secret(
        settings.admin_jwt_secret_arn, settings.admin_jwt_secret, "ADMIN_JWT_SECRET_ARN"
    )


def refresh_secret() -> str:
    settings = get_settings()
    return _configured_secret(
        settings.admin_refresh_secret_arn,
        settings.admin_refresh_secret,
        "ADMIN_REFRESH_SECRET_ARN",
    )


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("sign in as an admin: send Authorization: Bearer <token>")
    return token.strip()


def _decode(token: str, secret: str, required: tuple[str, ...]) -> dict[str, Any]:
    settings = get_settings()
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=settings.admin_jwt_audience,
            issuer=settings.admin_jwt_issuer,
            options={"require": list(required)},
            leeway=CLOCK_SKEW_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired; sign in again") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("the token is not valid yet") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the token is not valid") from None


def _user_id(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Unauthorized("the token is not valid")
    return value


def authenticate_staff(authorization: str | None) -> Staff:
    """The staff member an ``Authorization`` header proves (any role), or ``Unauthorized``."""
    claims = _decode(bearer_token(authorization), access_secret(), ACCESS_CLAIMS)
    email, role = claims["email"], claims["role"]
    version = claims.get("ver", LEGACY_TOKEN_VERSION)
    if (
        "type" in claims
        or not isinstance(email, str)
        or not isinstance(role, str)
        or not email
        or not isinstance(version, int)
        or isinstance(version, bool)
    ):
        raise Unauthorized("the token is not valid")
    return Staff(id=_user_id(claims["id"]), email=email, role=role, token_version=version)


def authenticate_admin(authorization: str | None) -> Staff:
    """The admin an ``Authorization`` header proves, or ``Unauthorized``/``Forbidden``."""
    staff = authenticate_staff(authorization)
    if staff.role != ADMIN_ROLE:
        raise Forbidden("this needs an admin; the token is not an admin's")
    return staff


def read_refresh_token(token: str | None) -> RefreshClaims:
    """The claims of a refresh token whose signature and dates hold (not yet its revocation)."""
    if not token:
        raise Unauthorized("no refresh token: sign in again")
    claims = _decode(token, refresh_secret(), REFRESH_CLAIMS)
    version, jti = claims["ver"], claims["jti"]
    if (
        claims["type"] != REFRESH_TYPE
        or not isinstance(version, int)
        or isinstance(version, bool)
        or not isinstance(jti, str)
        or not 1 <= len(jti) <= 64
    ):
        raise Unauthorized("the token is not valid")
    return RefreshClaims(
        user_id=_user_id(claims["id"]), token_version=version, jti=jti, expires_at=claims["exp"]
    )


def _registered_claims(ttl_seconds: int) -> dict[str, Any]:
    settings = get_settings()
    now = int(time.time())
    return {
        "iss": settings.admin_jwt_issuer,
        "aud": settings.admin_jwt_audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }


def issue_access_token(
    secret: str,
    *,
    user_id: int,
    email: str,
    role: str,
    token_version: int,
    ttl_seconds: int = ACCESS_TOKEN_SECONDS,
    **extra: Any,
) -> str:
    """An access token in the admin login's format (the login, ``rft dev token``, tests)."""
    claims = {
        "id": user_id,
        "email": email,
        "role": role,
        "ver": token_version,
        **_registered_claims(ttl_seconds),
    }
    return jwt.encode(claims | extra, secret, algorithm=ALGORITHM)


def issue_refresh_token(
    secret: str, *, user_id: int, token_version: int, ttl_seconds: int = REFRESH_TOKEN_SECONDS
) -> str:
    claims = {
        "id": user_id,
        "type": REFRESH_TYPE,
        "ver": token_version,
        "jti": uuid.uuid4().hex,
        **_registered_claims(ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
