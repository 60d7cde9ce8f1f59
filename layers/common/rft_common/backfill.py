"""Backfill: link historical bookings to their customers, one batch of ids at a time.

A batch is a range of booking ids (``BackfillMessage``). Processing it is one
transaction of three statements, whatever the batch size:

1. claim the batch row (``backfill_batches``), which also serialises two deliveries
   of the same batch;
2. one statement whose parts share the batch's unlinked bookings, read once through
   the partial index on unlinked ids, with their normalised emails:

   - record those that cannot be linked (no or malformed email) in
     ``backfill_unlinkable``, once (``ON CONFLICT DO NOTHING``);
   - upsert one customer per normalised email, in email order, with the booking
     path's identity rules (``customers.fill_blanks_on_conflict``), which returns
     every customer, created or found;
   - link the bookings to those customers; the statement-level triggers on
     ``bookings`` then recompute the statistics of exactly the customers touched
     (migration 0002).

   Joining the bookings to the upsert's own output, not to ``users``, keeps the plan
   independent of how many users the planner believes there are: early in a backfill
   that estimate is stale by orders of magnitude;
3. mark the batch done and add what this run did to its counters.

Why it is safe to run anywhere, any number of times:

- Only bookings with ``user_id IS NULL`` are read or updated, so a redelivered batch,
  or one that died halfway (its transaction rolled back), finishes with the same
  state as one clean run; a second run links nothing and creates nobody.
- Concurrent batches that share customers lock those customers in email order in
  the upsert (and every later lock is on customers already held), so they wait for each
  other instead of deadlocking; ``run_transaction`` retries deadlocks, serialisation
  failures and lost races to insert one new customer anyway. The unique normalised
  email rules out duplicates.
- New bookings arriving meanwhile are either linked by the booking path or remain
  unlinked for a later enqueue; nothing here depends on them.

Which emails link (``unlinkable_reason_sql``): the address, trimmed of whitespace
(``EMAIL_WHITESPACE``) and lower-cased, must be a plain ASCII address: a dot-atom
local part of at most 64 characters; host labels of letters, digits and inner single
hyphens, at most 63 long; a top-level domain ending in a letter; at most 254
characters; not a special-use domain such as ``.test`` or ``.local``. Every address it
accepts is accepted by ``emails.normalize_email`` with the same normalised value, so a
booking links to the same customer as a checkout with that email would. It is
stricter in rare cases (international characters, punycode ``xn--`` or other ``--``
host names, quoted local parts): those bookings are recorded as ``malformed_email``
for a person to review, never linked to a guess.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import (
    Connection,
    Integer,
    String,
    bindparam,
    case,
    column,
    func,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from rft_common.customers import FILLABLE_FIELDS, fill_blanks_on_conflict, users
from rft_common.db import run_transaction
from rft_common.models import backfill_unlinkable as unlinkable_bookings
from rft_common.models import bookings

MAX_BOOKING_ID = 2**31 - 1

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_TOP_LEVEL = r"[a-z]([a-z0-9-]*[a-z])?"
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
EMAIL_PATTERN = rf"^{_ATOM}(\.{_ATOM})*@({_LABEL}\.)+{_TOP_LEVEL}$"
"""The shape of a valid normalised email (PostgreSQL and Python regex syntax alike)."""
EMAIL_EXCLUSIONS = rf"@(.*--|(.*\.)?({'|'.join(SPECIAL_USE_DOMAINS)})$)|@[^@]*[^.@]{{64}}"
"""Right shape but refused: ``--`` in the host, special-use domains, labels over 63."""
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
EMAIL_WHITESPACE = " \t\n\r\f\v\u00a0"
"""Trimmed from both ends before lower-casing: what ``str.strip`` removes in practice
(rarer Unicode spaces stay, and make the address malformed)."""
EMAIL_RULE_PARAMETERS = {
    "whitespace": EMAIL_WHITESPACE,
    "email_pattern": EMAIL_PATTERN,
    "email_exclusions": EMAIL_EXCLUSIONS,
}
"""Bind parameters of the SQL fragments below."""

MISSING_EMAIL = "missing_email"
MALFORMED_EMAIL = "malformed_email"


def normalized_email_sql(raw: str) -> str:
    """SQL: the normalised form of the text expression ``raw`` ('' when missing)."""
    return f"lower(btrim(coalesce({raw}, ''), :whitespace))"


def unlinkable_reason_sql(email: str) -> str:
    """SQL: why the normalised email expression ``email`` cannot link, or NULL.

    Simple regexes and lengths rather than one regex with lookaheads: PostgreSQL runs
    those about forty times slower, and this runs on every booking.
    """
    return (
        f"CASE WHEN {email} = '' THEN '{MISSING_EMAIL}' "
        f"WHEN NOT ({email} ~ :email_pattern AND {email} !~ :email_exclusions "
        f"AND length({email}) <= {MAX_EMAIL_LENGTH} "
        f"AND strpos({email}, '@') <= {MAX_LOCAL_PART_LENGTH + 1}) "
        f"THEN '{MALFORMED_EMAIL}' END"
    )


def normalized_email_or_reason(raw: str | None) -> tuple[str | None, str | None]:
    """The SQL rule in Python: ``(normalised email, None)`` or ``(None, reason)``.

    The statements below apply the same rule in SQL; tests compare the two.
    """
    email = (raw or "").strip(EMAIL_WHITESPACE).lower()
    if not email:
        return None, MISSING_EMAIL
    valid = (
        re.fullmatch(EMAIL_PATTERN, email) is not None
        and re.search(EMAIL_EXCLUSIONS, email) is None
        and len(email) <= MAX_EMAIL_LENGTH
        and email.index("@") <= MAX_LOCAL_PART_LENGTH
    )
    return (email, None) if valid else (None, MALFORMED_EMAIL)


class BackfillMessage(BaseModel):
    """One backfill batch: link the unlinked bookings whose ids lie in a range.

    Version 1. Sent by rft backfill enqueue, or by an operator with aws sqs
    send-message; processed by the backfill worker. The range is inclusive, and
    firstBookingId must not exceed lastBookingId. batchId names the batch in the
    backfill_batches table; a batch id already recorded must come with its range.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=True,
        title="BackfillMessage",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://reactfasttraining.co.uk/schemas/backfill-message.schema.json",
            "examples": [
                {
                    "version": 1,
                    "batchId": "manual-2026-11-25-001",
                    "firstBookingId": 1,
                    "lastBookingId": 2000,
                }
            ],
        },
    )

    version: Literal[1] = Field(title="Version", description="Message format version.")
    batch_id: Annotated[
        str,
        Field(
            alias="batchId",
            title="Batch id",
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
            description="Names the batch: letters, digits and _.:- (at most 64).",
            examples=["manual-2026-11-25-001"],
        ),
    ]
    first_booking_id: Annotated[
        int,
        Field(
            alias="firstBookingId",
            title="First booking id",
            ge=1,
            le=MAX_BOOKING_ID,
            description="First id of the range, inclusive.",
        ),
    ]
    last_booking_id: Annotated[
        int,
        Field(
            alias="lastBookingId",
            title="Last booking id",
            ge=1,
            le=MAX_BOOKING_ID,
            description="Last id of the range, inclusive; not below firstBookingId.",
        ),
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
CANDIDATES = f"""
    SELECT b.id, e.email, {unlinkable_reason_sql("e.email")} AS reason,
           left(nullif(btrim(b.contact_details ->> 'name', :whitespace), ''), 255) AS name,
           left(nullif(btrim(b.contact_details ->> 'phone', :whitespace), ''), 50) AS phone,
           left(nullif(btrim(b.contact_details ->> 'company', :whitespace), ''), 255)
               AS company_name
    FROM bookings AS b
    CROSS JOIN LATERAL (
        SELECT {normalized_email_sql("b.contact_details ->> 'email'")} AS email
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
FINISH_BATCH = text("""
    UPDATE backfill_batches
    SET status = 'done', completed_at = now(), runs = runs + 1,
        bookings_linked = bookings_linked + :bookings_linked,
        customers_created = customers_created + :customers_created,
        unlinkable = unlinkable + :unlinkable
    WHERE id = :batch_id
""")


def _first_non_blank(candidates: Any, field: str) -> Any:
    """The field's first non-blank value in booking order, as if booked one by one."""
    return literal_column(
        f"(array_agg({candidates.name}.{field} ORDER BY {candidates.name}.id) "
        f"FILTER (WHERE {candidates.name}.{field} IS NOT NULL))[1]",
        String,
    ).label(field)


def _link_batch_statement() -> Any:
    candidates = (
        text(CANDIDATES)
        .columns(
            column("id", Integer),
            *(column(name, String) for name in ("email", "reason")),
            *(column(name, String) for name in ("name", "phone", "company_name")),
        )
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    unlinkable = (
        insert(unlinkable_bookings)
        .from_select(
            ["booking_id", "reason", "batch_id"],
            select(candidates.c.id, candidates.c.reason, bindparam("batch_id", type_=String))
            .where(candidates.c.reason.is_not(None))
            .order_by(candidates.c.id),
        )
        .on_conflict_do_nothing(index_elements=["booking_id"])
        .returning(unlinkable_bookings.c.booking_id)
        .cte("unlinkable")
    )
    merged = (
        select(candidates.c.email, *(_first_non_blank(candidates, f) for f in FILLABLE_FIELDS))
        .where(candidates.c.reason.is_(None))
        .group_by(candidates.c.email)
        .subquery("merged")
    )
    customers = select(
        merged.c.email,
        literal("customer", String).label("role"),
        case((merged.c.company_name.is_(None), "individual"), else_="corporate").label(
            "customer_type"
        ),
        *(merged.c[field] for field in FILLABLE_FIELDS),
    ).order_by(merged.c.email)
    upserted = (
        fill_blanks_on_conflict(insert(users).from_select(list(CUSTOMER_COLUMNS), customers))
        .returning(
            users.c.id, users.c.email_normalized, literal_column("xmax = 0").label("created")
        )
        .cte("upserted")
    )
    linked = (
        update(bookings)
        .values(user_id=upserted.c.id)
        .where(
            bookings.c.id == candidates.c.id,
            bookings.c.user_id.is_(None),
            upserted.c.email_normalized == candidates.c.email,
        )
        .returning(bookings.c.id)
        .cte("linked")
    )

    def count(cte: Any, *where: Any) -> Any:
        return select(func.count()).select_from(cte).where(*where).scalar_subquery()

    return select(
        count(unlinkable).label("unlinkable"),
        count(upserted, upserted.c.created).label("customers_created"),
        count(linked).label("bookings_linked"),
    )


LINK_BATCH = _link_batch_statement()
"""Step 2: record the unlinkable, upsert the customers, link the bookings; the counts."""


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


def _finish_batch(connection: Connection, parameters: dict) -> None:
    connection.execute(FINISH_BATCH, parameters)


def link_batch(connection: Connection, message: BackfillMessage) -> BatchResult:
    """Process one batch inside the caller's transaction (the three statements above)."""
    started = time.perf_counter()
    parameters = EMAIL_RULE_PARAMETERS | {
        "batch_id": message.batch_id,
        "first_booking_id": message.first_booking_id,
        "last_booking_id": message.last_booking_id,
    }
    _claim_batch(connection, message, parameters)
    counts = connection.execute(LINK_BATCH, parameters).one()
    _finish_batch(connection, parameters | counts._asdict())
    return BatchResult(
        batch_id=message.batch_id,
        bookings_linked=counts.bookings_linked,
        customers_created=counts.customers_created,
        unlinkable=counts.unlinkable,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def process_batch(message: BackfillMessage) -> BatchResult:
    """One batch in its own transaction, retried by ``run_transaction`` on deadlocks,
    serialisation failures and lost races to insert the same new customer."""
    return run_transaction(lambda connection: link_batch(connection, message))
