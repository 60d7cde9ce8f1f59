"""Admin authentication: the HS256 JWTs the existing admin login issues.

A request is an admin's when ``Authorization: Bearer <token>`` carries a token that

- is signed with HS256 and the admin login's secret (``alg: none`` and every other
  algorithm are refused: the algorithm is fixed here, never taken from the token);
- has ``exp`` in the future, ``nbf`` (if present) in the past, and ``sub`` (who acts,
  recorded in audit rows) and ``role`` claims;
- has ``role`` ``admin``.

Anything missing or untrustworthy is ``Unauthorized`` (401); a trustworthy token of
another role (instructor, customer) is ``Forbidden`` (403).

The secret comes from Secrets Manager in AWS (``ADMIN_JWT_SECRET_ARN``, through
``rft_common.secrets``, so a rotation takes effect within its cache age) or, for
the local stack and tests only, from ``ADMIN_JWT_SECRET``.
With neither, no token is accepted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from rft_common.errors import FeatureDisabled, Forbidden, Unauthorized
from rft_common.secrets import SecretUnavailable, secret_string
from rft_common.settings import get_settings

ALGORITHM = "HS256"
ADMIN_ROLE = "admin"
REQUIRED_CLAIMS = ("exp", "sub", "role")
CLOCK_SKEW_SECONDS = 10


@dataclass(frozen=True)
class Admin:
    subject: str
    """The token's ``sub``: who made the request."""


def signing_secret() -> str:
    settings = get_settings()
    secret: str | None = None
    if settings.admin_jwt_secret_arn:
        try:
            secret = secret_string(settings.admin_jwt_secret_arn)
        except SecretUnavailable:
            raise FeatureDisabled(
                "admin sign-in is unavailable: its secret cannot be read"
            ) from None
    elif settings.admin_jwt_secret:
        secret = settings.admin_jwt_secret
    if not secret:
        raise FeatureDisabled(
            "admin sign-in is not configured (ADMIN_JWT_SECRET_ARN); no token is accepted"
        )
    return secret


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("sign in as an admin: send Authorization: Bearer <token>")
    return token.strip()


def authenticate_admin(authorization: str | None) -> Admin:
    """The admin an ``Authorization`` header proves, or ``Unauthorized``/``Forbidden``."""
    token = bearer_token(authorization)
    try:
        claims = jwt.decode(
            token,
            signing_secret(),
            algorithms=[ALGORITHM],
            options={"require": list(REQUIRED_CLAIMS)},
            leeway=CLOCK_SKEW_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired; sign in again") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("the token is not valid yet") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the token is not valid") from None
    if claims["role"] != ADMIN_ROLE:
        raise Forbidden("this needs an admin; the token is not an admin's")
    return Admin(subject=claims["sub"])


def issue_token(secret: str, *, role: str, subject: str, ttl_seconds: int, **extra: Any) -> str:
    """A token in the admin login's format (for ``rft dev token`` and tests)."""
    now = int(time.time())
    claims = {"sub": subject, "role": role, "iat": now, "exp": now + ttl_seconds, **extra}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
