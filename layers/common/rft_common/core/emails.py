"""Customer identity is the normalised email: trimmed and lower-cased."""

from __future__ import annotations

import hashlib


def normalize_email(raw: str) -> str:
    """Trim and lower-case ``raw``; raise ``ValueError`` saying why if it is not an address.

    The database derives ``users.email_normalized`` as ``lower(btrim(email))``; the
    value returned here is a fixed point of that expression, so the two always agree.
    email-validator (about 40 ms to import, with idna) loads on the first call: the
    sessions list, the health check and the admin list never need it.
    """
    from email_validator import EmailNotValidError, validate_email

    candidate = raw.strip().lower()
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"not a valid email address: {error}") from None
    return checked.normalized.lower()


def load_email_validator() -> None:
    """Import email-validator and check one address, as the first ``normalize_email``
    would: a SnapStart warm-up step (``rft_common.core.snapstart.warm``) for the
    functions that check addresses."""
    normalize_email("warm-up@example.com")


EMAIL_WHITESPACE = " \t\n\r\f\v\u00a0"
"""Trimmed from both ends before lower-casing: what ``str.strip`` removes in practice
(rarer Unicode spaces stay, and make the address malformed)."""


def normalized_email_sql(raw: str) -> str:
    """SQL: the normalised form of the text expression ``raw`` ('' when missing), for
    emails stored before customers had records (bookings' contact details). Needs the
    bind parameter ``whitespace`` (``EMAIL_WHITESPACE``)."""
    return f"lower(btrim(coalesce({raw}, ''), :whitespace))"


def email_fingerprint(normalized_email: str) -> str:
    """A stable, unkeyed digest of an email: what an intent's metadata carries to match a
    payment to its booking (the metadata holds the address anyway). Never log it: logs
    carry ``rft_common.aws.fingerprints.email_log_fingerprint``."""
    return hashlib.sha256(normalized_email.encode()).hexdigest()[:16]


def rollout_bucket(normalized_email: str) -> int:
    """0..99, the same for an email forever, so a customer never flips between flows."""
    return int.from_bytes(hashlib.sha256(normalized_email.encode()).digest()[:8], "big") % 100
