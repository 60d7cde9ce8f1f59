"""Unsubscribe links: a signed token per person and purpose, checked without a database row.

A token is ``<payload>.<signature>``: the payload is the user id and the purpose
(base64url), the signature HMAC-SHA256 of them under the unsubscribe key, in full
(256 bits, base64url). Nobody can make one for another person or purpose without the
key, which lives in Secrets Manager (``UNSUBSCRIBE_SECRET_ARN``); the local stack and
tests may set it (``UNSUBSCRIBE_SECRET``); without either, a key is generated for the
process (links made then stop working when it ends).

Tokens never expire: a withdrawal must work from any message ever sent (PECR; RFC 8058
one-click from an old email). Changing the key ends every link already sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from functools import cache

from rft_common.core.errors import NotFound
from rft_common.core.settings import get_settings
from rft_common.core.vocabulary import CONSENT_PURPOSES

UNSUBSCRIBE_PATH = "/api/unsubscribe/"
UNKNOWN_LINK = "This unsubscribe link is not recognised."


@cache
def _generated_key() -> str:
    return secrets.token_hex(32)


def _key() -> bytes:
    settings = get_settings()
    if settings.unsubscribe_secret_arn:
        from rft_common.aws.secrets import secret_string

        return secret_string(settings.unsubscribe_secret_arn).encode()
    return (settings.unsubscribe_secret or _generated_key()).encode()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(payload: bytes) -> bytes:
    return hmac.new(_key(), b"unsubscribe\x00" + payload, hashlib.sha256).digest()


def unsubscribe_token(user_id: int, purpose: str) -> str:
    """The token of ``user_id``'s unsubscribe link for ``purpose`` (URL-safe)."""
    if purpose not in CONSENT_PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    payload = f"{int(user_id)}:{purpose}".encode("ascii")
    return f"{_encode(payload)}.{_encode(_signature(payload))}"


def unsubscribe_url(user_id: int, purpose: str) -> str:
    """The https link an email carries (``List-Unsubscribe`` and the visible link)."""
    return get_settings().public_api_url + UNSUBSCRIBE_PATH + unsubscribe_token(user_id, purpose)


def verify_unsubscribe_token(token: str) -> tuple[int, str]:
    """``(user_id, purpose)`` of a token this key signed; ``NotFound`` (404, naming
    nobody) for anything else."""
    try:
        encoded_payload, encoded_signature = token.split(".")
        payload = _decode(encoded_payload)
        signature = _decode(encoded_signature)
    except (ValueError, binascii.Error):
        raise NotFound(UNKNOWN_LINK, field="token") from None
    if not hmac.compare_digest(signature, _signature(payload)):
        raise NotFound(UNKNOWN_LINK, field="token")
    user_id, _, purpose = payload.decode("ascii").partition(":")
    return int(user_id), purpose
