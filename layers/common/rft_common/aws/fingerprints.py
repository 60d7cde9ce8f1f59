"""The pseudonym logs carry for an email: HMAC-SHA256 under a secret key.

A plain hash of an address is no pseudonym: anyone holding a log line and a list of
addresses can hash the list and match. Keyed, a fingerprint still follows one customer
through the logs (the same key everywhere, for as long as it is kept), but naming its
address takes the key, which lives in Secrets Manager (``LOG_FINGERPRINT_KEY_ARN``).
The local stack and tests may set it (``LOG_FINGERPRINT_KEY``); without either, a key is
generated for the process, so nothing written locally can be matched later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache

from rft_common.core.settings import get_settings

FINGERPRINT_LENGTH = 16


@cache
def _generated_key() -> str:
    return secrets.token_hex(32)


def fingerprint_key() -> str:
    settings = get_settings()
    if settings.log_fingerprint_key_arn:
        from rft_common.aws.secrets import secret_string

        return secret_string(settings.log_fingerprint_key_arn)
    return settings.log_fingerprint_key or _generated_key()


def keyed_fingerprint(value: str) -> str:
    """The keyed pseudonym of ``value`` (an email, a client's address)."""
    digest = hmac.new(fingerprint_key().encode(), value.encode(), hashlib.sha256)
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


def email_log_fingerprint(normalized_email: str) -> str:
    """The keyed pseudonym of ``normalized_email`` for logs and metrics."""
    return keyed_fingerprint(normalized_email)
