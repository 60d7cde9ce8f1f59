"""Customer identity is the normalised email: one form for one address, in Python and SQL.

The form (``canonical_email``; ``normalized_email_sql`` in SQL) is: trimmed of
``EMAIL_WHITESPACE``, decomposed (NFD), lower-cased character by character, then
composed (NFC). So an address typed with "é" as one character or as "e" and a combining
accent, in any case, is one customer.

- **NFC, not NFKC.** NFC only joins what Unicode says is the same text written two ways
  (canonical equivalence); it is what RFC 6532 asks of internationalised addresses and
  what email-validator returns. NFKC would also fold look-alikes ("ﬁ" into "fi",
  full-width letters into ASCII) that mail servers treat as other mailboxes, so two
  people could become one customer.
- **Lower-case, not casefold.** Case-folding turns "ß" into "ss", joining
  "strasse@" and "straße@", which are different mailboxes; and PostgreSQL's ``lower()``
  is what SQL has (``casefold()`` only arrived in PostgreSQL 18). Lowering each
  character of the decomposed text is what ``lower()`` does in a UTF-8 database, so
  the two agree (Python's ``str.lower`` alone would differ on a word-final Greek sigma,
  and on a precomposed dotted capital I, which NFD splits first).

``users.email_normalized`` is ``lower(btrim(email))`` of an email every writer has already
put in this form, so it equals it; tests check Python and SQL agree on generated input
(``tests/core/test_email_forms.py``).
"""

from __future__ import annotations

import hashlib
import unicodedata

EMAIL_WHITESPACE = " \t\n\r\f\v\u00a0"
"""Trimmed from both ends before lower-casing: what ``str.strip`` removes in practice
(rarer Unicode spaces stay, and make the address malformed)."""


def canonical_email(raw: str) -> str:
    """``raw`` in the identity's form (trimmed, NFD, lowered per character, NFC), with no
    check that it is an address: ``normalized_email_sql`` in Python."""
    decomposed = unicodedata.normalize("NFD", raw.strip(EMAIL_WHITESPACE))
    return unicodedata.normalize("NFC", "".join(map(str.lower, decomposed)))


def normalize_email(raw: str) -> str:
    """``raw`` in the identity's form (``canonical_email``); raise ``ValueError`` saying why
    if it is not an address.

    The database derives ``users.email_normalized`` as ``lower(btrim(email))``; the
    value returned here is a fixed point of that expression, so the two always agree.
    email-validator (about 40 ms to import, with idna) loads on the first call: the
    sessions list, the health check and the admin list never need it.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(canonical_email(raw.strip()), check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"not a valid email address: {error}") from None
    return canonical_email(checked.normalized)


def load_email_validator() -> None:
    """Import email-validator and check one address, as the first ``normalize_email``
    would: a SnapStart warm-up step (``rft_common.core.snapstart.warm``) for the
    functions that check addresses."""
    normalize_email("warm-up@example.com")


def normalized_email_sql(raw: str) -> str:
    """SQL: ``canonical_email`` of the text expression ``raw`` ('' when missing), for
    emails stored before customers had records (bookings' contact details). Needs the
    bind parameter ``whitespace`` (``EMAIL_WHITESPACE``)."""
    return f"normalize(lower(normalize(btrim(coalesce({raw}, ''), :whitespace), NFD)), NFC)"


def email_fingerprint(normalized_email: str) -> str:
    """A stable, unkeyed digest of an email: what an intent's metadata carries to match a
    payment to its booking (the metadata holds the address anyway). Never log it: logs
    carry ``rft_common.aws.fingerprints.email_log_fingerprint``."""
    return hashlib.sha256(normalized_email.encode()).hexdigest()[:16]


def rollout_bucket(normalized_email: str) -> int:
    """0..99, the same for an email forever, so a customer never flips between flows."""
    return int.from_bytes(hashlib.sha256(normalized_email.encode()).digest()[:8], "big") % 100
