"""Backfill: link historical bookings to their customers, one batch of ids at a time.

A batch is a range of booking ids (``BackfillMessage``). Processing it is one
transaction of five set-based statements, whatever the batch size:

1. claim the batch row (``backfill_batches``), which also serialises two deliveries
   of the same batch;
2. record the batch's bookings that cannot be linked (no or malformed email) in
   ``backfill_unlinkable``, once (``ON CONFLICT DO NOTHING``);
3. upsert one customer per normalised email, in email order, with the booking path's
   identity rules (``customers.fill_blanks_on_conflict``);
4. link the batch's unlinked bookings to the customers with one ``UPDATE ... FROM``;
   the statement-level triggers on ``bookings`` then recompute the statistics of
   exactly the customers it touched (migration 0002);
5. mark the batch done and add what this run did to its counters.

Why it is safe to run anywhere, any number of times:

- Only bookings with ``user_id IS NULL`` are read or updated, so a redelivered batch,
  or one that died halfway (its transaction rolled back), finishes with the same
  state as one clean run; a second run links nothing and creates nobody.
- Concurrent batches that share customers lock those customers in email order in
  step 3 (and every later lock is on customers already held), so they wait for each
  other instead of deadlocking; ``run_transaction`` retries a deadlock or
  serialisation failure anyway. The unique normalised email rules out duplicates.
- New bookings arriving meanwhile are either linked by the booking path or remain
  unlinked for a later enqueue; nothing here depends on them.

Which emails link (the SQL rule below, ``EMAIL_PATTERN``): the address, trimmed of
whitespace (``EMAIL_WHITESPACE``) and lower-cased, must be a plain ASCII address
(dot-atom local part of at most 64 characters; host names of letters, digits and
inner single hyphens; a top-level domain ending in a letter; at most 254 characters;
not a special-use domain such as ``.test`` or ``.local``). Every address it accepts is
accepted by ``emails.normalize_email`` with the same normalised value, so a booking
links to the same customer as a checkout with that email would. It is stricter in
rare cases (international characters, punycode ``xn--`` or other ``--`` host names,
quoted local parts): those bookings are recorded as ``malformed_email`` for a person
to review, never linked to a guess.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, String, column, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert

from rft_common.customers import fill_blanks_on_conflict, users
from rft_common.db import run_transaction

MESSAGE_VERSION = 1
MAX_BOOKING_ID = 2**31 - 1

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_TOP_LEVEL = r"[a-z]([a-z0-9-]{0,61}[a-z])?"
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
EMAIL_PATTERN = (
    r"^(?=[^@]{1,64}@)(?=.{1,254}$)"
    rf"{_ATOM}(\.{_ATOM})*"
    rf"@(?!.*--)(?!(.*\.)?({'|'.join(SPECIAL_USE_DOMAINS)})$)"
    rf"({_LABEL}\.)+{_TOP_LEVEL}$"
)
"""Valid normalised emails, in the common syntax of PostgreSQL and Python regexes."""
EMAIL_WHITESPACE = " \t\n\r\f\v\u00a0"
"""Trimmed from both ends before lower-casing, as ``str.strip`` would."""

MISSING_EMAIL = "missing_email"
MALFORMED_EMAIL = "malformed_email"


def normalized_email_or_reason(raw: str | None) -> tuple[str | None, str | None]:
    """The SQL rule in Python: ``(normalised email, None)`` or ``(None, reason)``.

    The statements below apply the same rule in SQL; tests compare the two.
    """
    email = (raw or "").strip(EMAIL_WHITESPACE).lower()
    if not email:
        return None, MISSING_EMAIL
    if re.fullmatch(EMAIL_PATTERN, email) is None:
        return None, MALFORMED_EMAIL
    return email, None


class BackfillMessage(BaseModel):
    """One backfill batch: link the unlinked bookings whose ids lie in a range.

    Version 1. Sent by ``rft backfill enqueue`` (or by an operator with ``aws sqs
    send-message``), processed by the backfill worker. The range is inclusive, and
    ``firstBookingId`` must not exceed ``lastBookingId``. ``batchId`` names the batch
    in ``backfill_batches``; a batch id already recorded must come with its recorded
    range.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=True,
        title="BackfillMessage",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://reactfasttraining.co.uk/schemas/backfill-message.schema.json",
        },
    )

    version: Literal[1] = Field(description="Message format version.")
    batch_id: Annotated[
        str,
        Field(
            alias="batchId",
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
            description="Names the batch: letters, digits and _.:- (at most 64).",
            examples=["manual-2026-11-25-001"],
        ),
    ]
    first_booking_id: Annotated[
        int,
        Field(alias="firstBookingId", ge=1, le=MAX_BOOKING_ID, description="First id, inclusive."),
    ]
    last_booking_id: Annotated[
        int,
        Field(alias="lastBookingId", ge=1, le=MAX_BOOKING_ID, description="Last id, inclusive."),
    ]

    @model_validator(mode="after")
    def _range_is_ordered(self) -> BackfillMessage:
        if self.first_booking_id > self.last_booking_id:
            raise ValueError("firstBookingId must not exceed lastBookingId")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


def message_json_schema() -> dict[str, Any]:
    """The JSON Schema committed as ``docs/backfill-message.schema.json``."""
    return BackfillMessage.model_json_schema(by_alias=True)


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


CUSTOMER_COLUMNS = ("email", "role", "customer_type", "name", "phone", "company_name")
_PARAMETERS = {"whitespace": EMAIL_WHITESPACE, "email_pattern": EMAIL_PATTERN}

CANDIDATES = f"""
    SELECT b.id, e.email,
           CASE WHEN e.email = '' THEN '{MISSING_EMAIL}'
                WHEN e.email !~ :email_pattern THEN '{MALFORMED_EMAIL}' END AS reason,
           left(nullif(btrim(b.contact_details ->> 'name', :whitespace), ''), 255) AS name,
           left(nullif(btrim(b.contact_details ->> 'phone', :whitespace), ''), 50) AS phone,
           left(nullif(btrim(b.contact_details ->> 'company', :whitespace), ''), 255)
               AS company_name
    FROM bookings AS b
    CROSS JOIN LATERAL (
        SELECT lower(btrim(coalesce(b.contact_details ->> 'email', ''), :whitespace)) AS email
    ) AS e
    WHERE b.id BETWEEN :first_booking_id AND :last_booking_id AND b.user_id IS NULL
"""
"""The batch's unlinked bookings: normalised email, why it cannot link, details."""

CLAIM_BATCH = text("""
    INSERT INTO backfill_batches (id, first_booking_id, last_booking_id)
    VALUES (:batch_id, :first_booking_id, :last_booking_id)
    ON CONFLICT (id) DO UPDATE SET runs = backfill_batches.runs
    RETURNING first_booking_id, last_booking_id
""")
RECORD_UNLINKABLE = text(f"""
    INSERT INTO backfill_unlinkable (booking_id, reason, batch_id)
    SELECT c.id, c.reason, :batch_id FROM ({CANDIDATES}) AS c WHERE c.reason IS NOT NULL
    ORDER BY c.id
    ON CONFLICT (booking_id) DO NOTHING
""")
# One row per email, each field's first non-blank value in booking order (as if the
# bookings had been made one by one); sorted so concurrent batches lock alike.
CUSTOMERS_OF_BATCH = text(f"""
    SELECT email, 'customer' AS role,
           CASE WHEN company_name IS NULL THEN 'individual' ELSE 'corporate' END
               AS customer_type,
           name, phone, company_name
    FROM (
        SELECT c.email,
               (array_agg(c.name ORDER BY c.id) FILTER (WHERE c.name IS NOT NULL))[1] AS name,
               (array_agg(c.phone ORDER BY c.id) FILTER (WHERE c.phone IS NOT NULL))[1]
                   AS phone,
               (array_agg(c.company_name ORDER BY c.id)
                   FILTER (WHERE c.company_name IS NOT NULL))[1] AS company_name
        FROM ({CANDIDATES}) AS c
        WHERE c.reason IS NULL
        GROUP BY c.email
    ) AS merged
    ORDER BY email
""").columns(*(column(name, String) for name in CUSTOMER_COLUMNS))
LINK_BOOKINGS = text("""
    UPDATE bookings AS b SET user_id = u.id
    FROM users AS u
    WHERE b.id BETWEEN :first_booking_id AND :last_booking_id AND b.user_id IS NULL
      AND u.email_normalized = lower(btrim(b.contact_details ->> 'email', :whitespace))
      AND u.email_normalized ~ :email_pattern
""")
FINISH_BATCH = text("""
    UPDATE backfill_batches
    SET status = 'done', completed_at = now(), runs = runs + 1,
        bookings_linked = bookings_linked + :bookings_linked,
        customers_created = customers_created + :customers_created,
        unlinkable = unlinkable + :unlinkable
    WHERE id = :batch_id
""")


def _upsert_customers_statement() -> Any:
    upserted = (
        fill_blanks_on_conflict(
            insert(users).from_select(list(CUSTOMER_COLUMNS), CUSTOMERS_OF_BATCH)
        )
        .returning(literal_column("xmax = 0").label("created"))
        .cte("upserted")
    )
    return select(func.count().filter(upserted.c.created))


UPSERT_CUSTOMERS = _upsert_customers_statement()
"""``INSERT ... SELECT ... ON CONFLICT`` of the batch's customers; counts the created."""


def _claim_batch(connection: Connection, message: BackfillMessage, parameters: dict) -> None:
    recorded = connection.execute(CLAIM_BATCH, parameters).one()
    if (recorded.first_booking_id, recorded.last_booking_id) != (
        message.first_booking_id,
        message.last_booking_id,
    ):
        raise BatchRangeMismatch(
            f"batch {message.batch_id} is recorded for bookings "
            f"{recorded.first_booking_id}..{recorded.last_booking_id}, not "
            f"{message.first_booking_id}..{message.last_booking_id}"
        )


def _record_unlinkable(connection: Connection, parameters: dict) -> int:
    return connection.execute(RECORD_UNLINKABLE, parameters).rowcount


def _upsert_customers(connection: Connection, parameters: dict) -> int:
    return connection.execute(UPSERT_CUSTOMERS, parameters).scalar_one()


def _link_bookings(connection: Connection, parameters: dict) -> int:
    return connection.execute(LINK_BOOKINGS, parameters).rowcount


def link_batch(connection: Connection, message: BackfillMessage) -> BatchResult:
    """Process one batch inside the caller's transaction (the five statements above)."""
    started = time.perf_counter()
    parameters = _PARAMETERS | {
        "batch_id": message.batch_id,
        "first_booking_id": message.first_booking_id,
        "last_booking_id": message.last_booking_id,
    }
    _claim_batch(connection, message, parameters)
    unlinkable = _record_unlinkable(connection, parameters)
    customers_created = _upsert_customers(connection, parameters)
    bookings_linked = _link_bookings(connection, parameters)
    connection.execute(
        FINISH_BATCH,
        parameters
        | {
            "bookings_linked": bookings_linked,
            "customers_created": customers_created,
            "unlinkable": unlinkable,
        },
    )
    return BatchResult(
        batch_id=message.batch_id,
        bookings_linked=bookings_linked,
        customers_created=customers_created,
        unlinkable=unlinkable,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def process_batch(message: BackfillMessage) -> BatchResult:
    """One batch in its own transaction, retried on deadlock or serialisation failure."""
    return run_transaction(lambda connection: link_batch(connection, message))
