"""Backfill: link historical bookings to their customers, one batch of customers at a time.

A batch (``BackfillMessage``) is a range of email keys (version 2): the key is a
stable hash of the normalised email (``email_key``; ``rft_backfill_email_key`` in
SQL, migration 0008), so a batch holds every unlinked booking of its customers and
no other batch of the same enqueue holds any of them. Version 1 messages, a range of
booking ids, are still processed the same way. A batch is one transaction of four
statements, whatever its size:

1. claim the batch row (``backfill_batches``), which also serialises two deliveries
   of the same batch;
2. defer this transaction's ``user_counts`` changes (``rft_defer_user_counts``);
3. one statement whose parts share the batch's unlinked bookings, read once through
   a partial index (on email keys, or on ids for version 1), with their normalised
   emails:

   - record those that cannot be linked (no or malformed email) in
     ``backfill_unlinkable``, once (``ON CONFLICT DO NOTHING``);
   - find or create one customer per normalised email, in email order, with the
     booking path's identity rules (``identity.FIND_OR_CREATE_CUSTOMERS``): new
     customers are inserted, dated from their first booking in the batch (the
     customer has been one since then: the dashboard shows it as "member since"),
     found ones rewritten only if a blank detail gets filled;
   - link the bookings to those customers; the statement-level triggers on
     ``bookings`` then recompute the statistics of exactly the customers touched,
     writing only values that changed (migration 0002).

   The customers found are looked up one by one through the unique email index and
   the bookings joined to the upsert's own output, so the plan does not depend on
   how many users the planner believes there are: early in a backfill that estimate
   is stale by orders of magnitude;
4. apply the counter changes (``rft_flush_user_counts``: a counter row is locked
   only from here to the commit), mark the batch done and add what this run did to
   its counters.

Why it is safe to run anywhere, any number of times:

- Only bookings with ``user_id IS NULL`` are read or updated, so a redelivered batch,
  or one that died halfway (its transaction rolled back), finishes with the same
  state as one clean run; a second run links nothing and creates nobody. That is
  also why a batch whose statement outlives the socket timeout is retried once on a
  fresh connection (``run_transaction(idempotent=True)``, ``backfill_timeouts``).
- Batches of one enqueue share no customer. Those that do (a version 1 batch, a
  checkout) lock the customers in email order in the upsert (and every later lock is
  on customers already held), so they wait for each other instead of deadlocking;
  ``run_transaction`` retries deadlocks, serialisation failures and lost races to
  insert one new customer anyway. The unique normalised email rules out duplicates.
- New bookings arriving meanwhile are either linked by the booking path or remain
  unlinked for a later enqueue; nothing here depends on them.

Which emails link (``unlinkable_reason_sql``): the address in the identity's form
(``emails.canonical_email``: trimmed of ``EMAIL_WHITESPACE``, NFD, lower-cased, NFC)
must be a plain address: a dot-atom local part of ASCII and Latin letters with
diacritics (``LATIN_LETTERS``: "josé", "łukasz", "jürgen", "ßtraße"), at most 64 bytes
in UTF-8; host labels of ASCII letters, digits and inner single hyphens, at most 63
long; a top-level domain ending in a letter; at most 254 bytes; not a special-use
domain such as ``.test`` or ``.local``. Every address it accepts is accepted by
``emails.normalize_email`` with the same normalised value, so a booking links to the
same customer as a checkout with that email would, however its accents were encoded.
It is stricter in rare cases (other scripts, international domain names, punycode
``xn--`` or other ``--`` host names, quoted local parts): those bookings are recorded
as ``malformed_email`` for a person to review, never linked to a guess.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from rft_common.core.emails import EMAIL_WHITESPACE, canonical_email, normalized_email_sql
from rft_common.customers.identity import FIND_OR_CREATE_CUSTOMERS
from rft_common.db.locks import WAIT_FOR_ERASURES
from rft_common.db.postgres import Connection, run_transaction

MAX_BOOKING_ID = 2**31 - 1
MIN_EMAIL_KEY, MAX_EMAIL_KEY = -(2**31), 2**31 - 1

LATIN_LETTERS = r"\u00df-\u00f6\u00f8-\u00ff\u0100-\u017f"
"""Lower-case Latin letters with diacritics (Latin-1 and Latin Extended-A, no "÷"):
what lower-casing gives the same in Python and PostgreSQL, and NFC composes."""
_ATOM = rf"[a-z0-9!#$%&'*+/=?^_`{{|}}~{LATIN_LETTERS}-]+"
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_TOP_LEVEL = r"[a-z]([a-z0-9-]*[a-z])?"
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
EMAIL_PATTERN = rf"^{_ATOM}(\.{_ATOM})*@({_LABEL}\.)+{_TOP_LEVEL}$"
"""The shape of a valid normalised email (PostgreSQL and Python regex syntax alike)."""
EMAIL_EXCLUSIONS = rf"@(.*--|(.*\.)?({'|'.join(SPECIAL_USE_DOMAINS)})$)|@[^@]*[^.@]{{64}}"
"""Right shape but refused: ``--`` in the host, special-use domains, labels over 63."""
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
EMAIL_RULE_PARAMETERS = {
    "whitespace": EMAIL_WHITESPACE,
    "email_pattern": EMAIL_PATTERN,
    "email_exclusions": EMAIL_EXCLUSIONS,
}
"""Bind parameters of the SQL fragments below."""

MISSING_EMAIL = "missing_email"
MALFORMED_EMAIL = "malformed_email"
ERASED = "erased"


def unlinkable_reason_sql(email: str) -> str:
    """SQL: why the normalised email expression ``email`` cannot link, or NULL.

    Simple regexes and lengths rather than one regex with lookaheads: PostgreSQL runs
    those about forty times slower, and this runs on every booking.
    """
    return (
        f"CASE WHEN {email} = '' THEN '{MISSING_EMAIL}' "
        f"WHEN NOT ({email} ~ :email_pattern AND {email} !~ :email_exclusions "
        f"AND octet_length({email}) <= {MAX_EMAIL_LENGTH} "
        f"AND octet_length(split_part({email}, '@', 1)) <= {MAX_LOCAL_PART_LENGTH}) "
        f"THEN '{MALFORMED_EMAIL}' END"
    )


def normalized_email_or_reason(raw: str | None) -> tuple[str | None, str | None]:
    """The SQL rule in Python: ``(normalised email, None)`` or ``(None, reason)``.

    The statements below apply the same rule in SQL; tests compare the two.
    """
    email = canonical_email(raw or "")
    if not email:
        return None, MISSING_EMAIL
    valid = (
        re.fullmatch(EMAIL_PATTERN, email) is not None
        and re.search(EMAIL_EXCLUSIONS, email) is None
        and len(email.encode()) <= MAX_EMAIL_LENGTH
        and len(email.partition("@")[0].encode()) <= MAX_LOCAL_PART_LENGTH
    )
    return (email, None) if valid else (None, MALFORMED_EMAIL)


def email_key(raw: str | None) -> int:
    """The SQL function ``rft_backfill_email_key`` in Python: a stable 32-bit hash of
    the normalised email, the first four bytes of its MD5 as a signed integer.

    Every booking of one customer has the same key, so a range of keys holds all of
    a customer's bookings. Used by tests and operators; batches use the SQL one,
    which ``ix_bookings_unlinked_email_key`` indexes.
    """
    email = canonical_email(raw or "")
    return int.from_bytes(
        hashlib.md5(email.encode(), usedforsecurity=False).digest()[:4], "big", signed=True
    )


MESSAGE_MODEL_CONFIG = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
BATCH_ID = Annotated[
    str,
    Field(
        alias="batchId",
        title="Batch id",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
        description="Names the batch: letters, digits and _.:- (at most 64).",
        examples=["manual-2026-11-25-001"],
    ),
]


def _bound(alias: str, title: str, low: int, high: int, description: str) -> Any:
    return Field(alias=alias, title=title, ge=low, le=high, description=description)


class _RangeMessage(BaseModel):
    """What both versions share: a batch id and an inclusive, ordered range."""

    RANGE_FIELDS: ClassVar[tuple[str, str]]

    @property
    def range(self) -> tuple[int, int]:
        first, last = self.RANGE_FIELDS
        return getattr(self, first), getattr(self, last)

    @model_validator(mode="after")
    def _range_is_ordered(self) -> _RangeMessage:
        first, last = self.range
        if first > last:
            aliases = [type(self).model_fields[name].alias for name in self.RANGE_FIELDS]
            raise ValueError(f"{aliases[0]} must not exceed {aliases[1]}")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class EmailKeyRangeMessage(_RangeMessage):
    """Version 2: link the unlinked bookings whose email key lies in a range.

    The key is ``rft_backfill_email_key``, a hash of the normalised email, so a batch
    holds every unlinked booking of its customers and no other batch of the same
    enqueue holds any of them.
    """

    model_config = MESSAGE_MODEL_CONFIG | ConfigDict(title="EmailKeyRangeMessage")

    version: Literal[2] = Field(title="Version", description="Message format version.")
    batch_id: BATCH_ID
    first_email_key: Annotated[
        int,
        _bound(
            "firstEmailKey",
            "First email key",
            MIN_EMAIL_KEY,
            MAX_EMAIL_KEY,
            "First key of the range, inclusive (a signed 32-bit hash of the normalised email).",
        ),
    ]
    last_email_key: Annotated[
        int,
        _bound(
            "lastEmailKey",
            "Last email key",
            MIN_EMAIL_KEY,
            MAX_EMAIL_KEY,
            "Last key of the range, inclusive; not below firstEmailKey.",
        ),
    ]

    RANGE_FIELDS = ("first_email_key", "last_email_key")


class BookingRangeMessage(_RangeMessage):
    """Version 1: link the unlinked bookings whose ids lie in a range.

    Still accepted, so that messages already in a queue are processed; enqueue
    sends version 2. A customer's bookings may be spread over several such batches.
    """

    model_config = MESSAGE_MODEL_CONFIG | ConfigDict(title="BookingRangeMessage")

    version: Literal[1] = Field(title="Version", description="Message format version.")
    batch_id: BATCH_ID
    first_booking_id: Annotated[
        int,
        _bound("firstBookingId", "First booking id", 1, MAX_BOOKING_ID, "First id, inclusive."),
    ]
    last_booking_id: Annotated[
        int,
        _bound(
            "lastBookingId",
            "Last booking id",
            1,
            MAX_BOOKING_ID,
            "Last id, inclusive; not below firstBookingId.",
        ),
    ]

    RANGE_FIELDS = ("first_booking_id", "last_booking_id")


BackfillMessage = Annotated[
    EmailKeyRangeMessage | BookingRangeMessage, Field(discriminator="version")
]
MESSAGE_DESCRIPTION = (
    "One backfill batch, sent by rft backfill enqueue (version 2) or by an operator with "
    "aws sqs send-message. batchId names the batch in the backfill_batches table; a batch "
    "id already recorded must come with its range. Ranges are inclusive."
)
MESSAGE_ADAPTER: TypeAdapter[EmailKeyRangeMessage | BookingRangeMessage] = TypeAdapter(
    BackfillMessage
)
MESSAGE_EXAMPLE = {
    "version": 2,
    "batchId": "manual-2026-11-25-001",
    "firstEmailKey": -2147483648,
    "lastEmailKey": -2147000000,
}


AnyMessage = EmailKeyRangeMessage | BookingRangeMessage


def parse_message(body: str | bytes) -> EmailKeyRangeMessage | BookingRangeMessage:
    return MESSAGE_ADAPTER.validate_json(body)


def message_json_schema() -> dict[str, Any]:
    """The JSON Schema committed as ``docs/backfill-message.schema.json``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://reactfasttraining.co.uk/schemas/backfill-message.schema.json",
        "title": "BackfillMessage",
        "description": MESSAGE_DESCRIPTION,
        **MESSAGE_ADAPTER.json_schema(by_alias=True),
        "examples": [MESSAGE_EXAMPLE],
    }


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    bookings_linked: int
    customers_created: int
    unlinkable: int
    """Bookings recorded as unlinkable by this run (already recorded ones not counted)."""
    duration_ms: float


class BatchRangeMismatch(ValueError):
    """The message reuses a batch id that was recorded with another range."""


BOOKING_ID_RANGE = "b.id BETWEEN :first AND :last"
EMAIL_KEY_RANGE = "rft_backfill_email_key(b.contact_details ->> 'email') BETWEEN :first AND :last"
"""The expression of ``ix_bookings_unlinked_email_key`` (migration 0008)."""


def candidates_sql(in_range: str) -> str:
    """The unlinked bookings ``in_range`` (``:first``..``:last``): normalised email,
    why it cannot link, details.

    A booking made before its person was erased (their email is on the suppression
    list) is never linked: it is recorded as unlinkable, reason ``erased`` (``privacy``).
    """
    return f"""
    SELECT b.id, e.email, b.created_at,
           CASE WHEN x.email_hash IS NOT NULL THEN '{ERASED}'
                ELSE {unlinkable_reason_sql("e.email")} END AS reason,
           left(nullif(btrim(b.contact_details ->> 'name', :whitespace), ''), 255) AS name,
           left(nullif(btrim(b.contact_details ->> 'phone', :whitespace), ''), 50) AS phone,
           left(nullif(btrim(b.contact_details ->> 'company', :whitespace), ''), 255)
               AS company_name
    FROM bookings AS b
    CROSS JOIN LATERAL (
        SELECT {normalized_email_sql("b.contact_details ->> 'email'")} AS email
    ) AS e
    LEFT JOIN erasure_suppressions AS x
      ON x.email_hash = rft_suppression_hash(e.email) AND b.created_at <= x.erased_at
    WHERE {in_range} AND b.user_id IS NULL
"""


CANDIDATES = candidates_sql(BOOKING_ID_RANGE)
"""Every unlinked booking with an id from ``:first`` to ``:last``."""

CLAIM_BATCH = """
    INSERT INTO backfill_batches
        (id, first_booking_id, last_booking_id, first_email_key, last_email_key)
    VALUES (:batch_id, :first_booking_id, :last_booking_id, :first_email_key, :last_email_key)
    ON CONFLICT (id) DO UPDATE SET runs = backfill_batches.runs
    RETURNING first_booking_id, last_booking_id, first_email_key, last_email_key
"""
DEFER_USER_COUNTS = "SELECT rft_defer_user_counts()"
FINISH_BATCH = """
    WITH counted AS (SELECT rft_flush_user_counts())
    UPDATE backfill_batches
    SET status = 'done', completed_at = now(), runs = runs + 1,
        bookings_linked = bookings_linked + :bookings_linked,
        customers_created = customers_created + :customers_created,
        unlinkable = unlinkable + :unlinkable
    FROM counted
    WHERE id = :batch_id
"""
"""Also applies the batch's pending ``user_counts`` changes, just before the commit."""


def link_batch_sql(in_range: str) -> str:
    """Step 3 for the bookings ``in_range``: record the unlinkable, find or create the
    customers (``new_customers``: one per normalised email, dated from its first booking,
    each detail from its earliest booking that has it, as if booked one by one), link
    the bookings, record each booker as its booking's one known attendee (by name only
    if unlinkable; none for an erased person's booking); the counts. A legacy group
    booking's other places were never named: they get no attendee rows and so no
    certificates. The certificates job then issues the history's certificates."""
    return f"""
    WITH candidates AS MATERIALIZED ({candidates_sql(in_range)}),
    unlinkable AS (
        INSERT INTO backfill_unlinkable (booking_id, reason, batch_id)
        SELECT id, reason, CAST(:batch_id AS text) FROM candidates
        WHERE reason IS NOT NULL
        ORDER BY id
        ON CONFLICT (booking_id) DO NOTHING
        RETURNING booking_id
    ),
    new_customers AS (
        SELECT email, min(created_at) AS created_at,
               (array_agg(name ORDER BY id) FILTER (WHERE name IS NOT NULL))[1] AS name,
               (array_agg(phone ORDER BY id) FILTER (WHERE phone IS NOT NULL))[1] AS phone,
               (array_agg(company_name ORDER BY id) FILTER (WHERE company_name IS NOT NULL))[1]
                   AS company_name,
               CAST(NULL AS text) AS details_source
        FROM candidates
        WHERE reason IS NULL
        GROUP BY email
    ),
    {FIND_OR_CREATE_CUSTOMERS},
    linked AS (
        UPDATE bookings SET user_id = found_or_created.id
        FROM candidates, found_or_created
        WHERE bookings.id = candidates.id AND bookings.user_id IS NULL
          AND found_or_created.email = candidates.email
        RETURNING bookings.id, bookings.user_id
    ),
    attended AS (
        INSERT INTO booking_attendees (booking_id, position, first_name, last_name, email,
                                       user_id)
        SELECT c.id, 1, left(split_part(c.name, ' ', 1), 100),
               left(nullif(btrim(substr(c.name, length(split_part(c.name, ' ', 1)) + 1)), ''),
                    100),
               CASE WHEN c.reason IS NULL THEN c.email END, linked.user_id
        FROM candidates AS c LEFT JOIN linked ON linked.id = c.id
        WHERE c.reason IS DISTINCT FROM '{ERASED}'
        ORDER BY c.id
        ON CONFLICT (booking_id, position) DO NOTHING
    )
    SELECT (SELECT count(*) FROM unlinkable) AS unlinkable,
           (SELECT count(*) FROM found_or_created WHERE created) AS customers_created,
           (SELECT count(*) FROM linked) AS bookings_linked
"""


LINK_BATCH = {
    EmailKeyRangeMessage: link_batch_sql(EMAIL_KEY_RANGE),
    BookingRangeMessage: link_batch_sql(BOOKING_ID_RANGE),
}
"""Step 3 per message version."""


def _claim_batch(connection: Connection, message: AnyMessage, parameters: dict) -> None:
    recorded = connection.execute(CLAIM_BATCH, parameters).one()
    if tuple(recorded) != tuple(parameters[name] for name in RANGE_COLUMNS):
        kind = "email keys" if recorded.first_booking_id is None else "bookings"
        first, last = (value for value in recorded if value is not None)
        raise BatchRangeMismatch(
            f"batch {message.batch_id} is recorded for {kind} {first}..{last}, "
            f"not this message's range {message.range[0]}..{message.range[1]}"
        )


def _finish_batch(connection: Connection, parameters: dict) -> None:
    connection.execute(FINISH_BATCH, parameters)


RANGE_COLUMNS = ("first_booking_id", "last_booking_id", "first_email_key", "last_email_key")


def batch_parameters(message: AnyMessage) -> dict[str, Any]:
    by_key = isinstance(message, EmailKeyRangeMessage)
    first, last = message.range
    return EMAIL_RULE_PARAMETERS | {
        "batch_id": message.batch_id,
        "first": first,
        "last": last,
        "first_booking_id": None if by_key else first,
        "last_booking_id": None if by_key else last,
        "first_email_key": first if by_key else None,
        "last_email_key": last if by_key else None,
    }


def link_batch(connection: Connection, message: AnyMessage) -> BatchResult:
    """Process one batch inside the caller's transaction (the statements above)."""
    started = time.perf_counter()
    parameters = batch_parameters(message)
    _claim_batch(connection, message, parameters)
    connection.execute(DEFER_USER_COUNTS)
    # Shared with other batches, exclusive with erasures: the statement below then
    # reads the bookings after any erasure of their people has committed.
    connection.execute(WAIT_FOR_ERASURES)
    counts = connection.execute(LINK_BATCH[type(message)], parameters).one()
    _finish_batch(connection, parameters | counts._asdict())
    return BatchResult(
        batch_id=message.batch_id,
        bookings_linked=counts.bookings_linked,
        customers_created=counts.customers_created,
        unlinkable=counts.unlinkable,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def process_batch(message: AnyMessage) -> BatchResult:
    """One batch in its own transaction, retried by ``run_transaction`` on deadlocks,
    serialisation failures, lost races to insert the same new customer and (once, on
    a fresh connection) a socket timeout."""
    return run_transaction(lambda connection: link_batch(connection, message), idempotent=True)
