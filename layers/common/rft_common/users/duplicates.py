"""Likely duplicate customers: the candidate list, a user's candidates, dismissals.

The pairs are found by the database (migration 0009): every customer written is
queued in ``duplicate_scan_queue`` by a trigger on ``users``, and ``scan_queued``
(the scheduled duplicate scan) probes three indexes per queued customer and scores
what it finds. A page here is one index-ordered read of ``duplicate_candidates``:

- ``same_phone``: the same phone number in E.164 (UK numbers in any spelling);
- ``same_name_and_company``: the same name (case and spacing ignored) and company;
- ``email_typo_domain``: the same local part at a domain one edit away or a known
  misspelling of a mail provider (``gmial.com``);
- ``email_one_edit``: local parts one edit apart or with one character moved (digits
  equal: ``jo.smith1`` and ``jo.smith2`` are two people) at the same or a misspelt
  domain;
- ``same_name_similar_email``: the same name, and local parts equal or one edit apart
  at unrelated domains (work and personal addresses);
- ``same_name``, and ``similar_name`` (``pg_trgm`` similarity of at least 0.5, as
  ``Sam Patel`` and ``Samuel Patel``): only strengthen another reason.

The score is ``1 - prod(1 - weight)`` over the reasons (0.6, 0.7, 0.85, 0.6, 0.7,
0.3, 0.2 in that order). Pairs an admin marked "not a duplicate" never come back: the
scan skips them and every read filters them out, so a mark committed while a scan
ran still hides the pair.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from rft_common.core.errors import Conflict, InvalidRequest, NotFound
from rft_common.core.formatting import money
from rft_common.db.paging import (
    READ_ONLY_SNAPSHOT,
    decode_cursor,
    encode_cursor,
    query_fingerprint,
)
from rft_common.db.postgres import Connection, run_transaction
from rft_common.staff.tokens import Staff

POSSIBLE_DUPLICATES_SHOWN = 10
REASONS = (
    "same_phone",
    "same_name_and_company",
    "email_typo_domain",
    "email_one_edit",
    "same_name_similar_email",
    "same_name",
    "similar_name",
)


class DuplicateUser(BaseModel):
    """One side of a candidate pair: enough to tell two records apart at a glance."""

    id: int
    name: str | None
    email: str
    phone: str | None
    company_name: str | None
    created_at: datetime
    total_bookings: int
    total_spent: str = Field(examples=["150.00"])


class DuplicatePair(BaseModel):
    score: float = Field(ge=0, le=1, description="Higher is likelier the same person")
    reasons: list[str] = Field(description=f"Any of {', '.join(REASONS)}")
    user: DuplicateUser = Field(description="The older record (lower id)")
    other: DuplicateUser


class DuplicatePage(BaseModel):
    data: list[DuplicatePair] = Field(description="Best first (score, then ids)")
    total: int = Field(description="Candidate pairs in the whole list")
    pending_scan: int = Field(
        description="Customers written since the last scan, not yet compared with the "
        "rest: the scheduled scan (every 5 minutes) adds their pairs"
    )
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class PossibleDuplicate(BaseModel):
    id: int
    score: float
    reasons: list[str]


class NotDuplicateMark(BaseModel):
    user_id: int
    other_id: int
    marked_by: str = Field(description="The admin's email")
    marked_by_id: int | None
    marked_at: datetime


def _side(prefix: str) -> str:
    return ", ".join(
        f"{prefix}.{column} AS {prefix}_{column}"
        for column in (
            "id", "name", "email", "phone", "company_name", "created_at", "total_bookings",
            "total_spent",
        )
    )  # fmt: skip


VISIBLE_PAIR = """
    a.merged_into IS NULL AND b.merged_into IS NULL
    AND NOT EXISTS (SELECT 1 FROM not_duplicate_pairs AS nd
                    WHERE nd.user_id = dc.user_id AND nd.other_id = dc.other_id)
"""
# Keyset over ix_duplicate_candidates_score (score DESC, user_id, other_id).
PAGE = f"""
    SELECT dc.score, dc.reasons, {_side("a")}, {_side("b")}
    FROM duplicate_candidates AS dc
    JOIN users AS a ON a.id = dc.user_id
    JOIN users AS b ON b.id = dc.other_id
    WHERE {VISIBLE_PAIR}
      AND (CAST(:after_score AS numeric) IS NULL
           OR dc.score < :after_score
           OR (dc.score = :after_score AND (dc.user_id, dc.other_id) > (:after_user, :after_other)))
    ORDER BY dc.score DESC, dc.user_id, dc.other_id
    LIMIT :limit_plus_one
"""
# Without the users: the merge forgets the merged user's pairs in its own
# transaction, and joining users made the count scan them (about 50 ms at 30,000).
TOTAL = """
    SELECT count(*) FROM duplicate_candidates AS dc
    WHERE NOT EXISTS (SELECT 1 FROM not_duplicate_pairs AS nd
                      WHERE nd.user_id = dc.user_id AND nd.other_id = dc.other_id)
"""
OF_USER = f"""
    SELECT CASE WHEN dc.user_id = :user_id THEN dc.other_id ELSE dc.user_id END AS id,
           dc.score, dc.reasons
    FROM duplicate_candidates AS dc
    JOIN users AS a ON a.id = dc.user_id
    JOIN users AS b ON b.id = dc.other_id
    WHERE (dc.user_id = :user_id OR dc.other_id = :user_id) AND {VISIBLE_PAIR}
    ORDER BY dc.score DESC, id
    LIMIT {POSSIBLE_DUPLICATES_SHOWN}
"""
USERS_OF_PAIR = "SELECT id FROM users WHERE id IN (:user_id, :other_id)"
MARK = """
    WITH mark AS (
        INSERT INTO not_duplicate_pairs (user_id, other_id, marked_by, marked_by_id)
        VALUES (:user_id, :other_id, :actor, :actor_id)
        ON CONFLICT (user_id, other_id) DO UPDATE SET marked_by = not_duplicate_pairs.marked_by
        RETURNING user_id, other_id, marked_by, marked_by_id, marked_at
    ), forgotten AS (
        DELETE FROM duplicate_candidates WHERE user_id = :user_id AND other_id = :other_id
    )
    SELECT * FROM mark
"""
PENDING_SCAN = "SELECT count(*) FROM duplicate_scan_queue"
SCAN_QUEUED = "SELECT rft_scan_queued_duplicates(:max_users)"
SCAN_SOCKET_TIMEOUT_SECONDS = "60"
"""``DB_SOCKET_TIMEOUT_SECONDS`` for a scan, the function's (template.yaml) and the CLI's:
one chunk of 2,000 customers can outlast the API's 5 s."""
PAGE_FINGERPRINT = query_fingerprint(["duplicates"])


def _user(row: Any, prefix: str) -> DuplicateUser:
    def value(column: str) -> Any:
        return getattr(row, f"{prefix}_{column}")

    return DuplicateUser(
        id=value("id"),
        name=value("name"),
        email=value("email"),
        phone=value("phone"),
        company_name=value("company_name"),
        created_at=value("created_at"),
        total_bookings=value("total_bookings"),
        total_spent=money(value("total_spent")),
    )


def _position(cursor: str | None) -> dict[str, Any]:
    if cursor is None:
        return {"after_score": None, "after_user": None, "after_other": None}
    try:
        score, user_id, other_id = decode_cursor(cursor, PAGE_FINGERPRINT)
        parsed = Decimal(score)
        if not parsed.is_finite() or not all(
            isinstance(value, int) and not isinstance(value, bool) for value in (user_id, other_id)
        ):
            raise ValueError
    except (ValueError, TypeError, ArithmeticError):
        raise InvalidRequest("not a cursor issued by this API", field="cursor") from None
    return {"after_score": parsed, "after_user": user_id, "after_other": other_id}


def read_duplicates_page(
    connection: Connection, *, limit: int, cursor: str | None
) -> DuplicatePage:
    position = _position(cursor)
    connection.execute(READ_ONLY_SNAPSHOT)
    rows = connection.execute(PAGE, {**position, "limit_plus_one": limit + 1}).all()
    page = rows[:limit]
    next_cursor = (
        encode_cursor(PAGE_FINGERPRINT, [str(page[-1].score), page[-1].a_id, page[-1].b_id])
        if len(rows) > limit
        else None
    )
    return DuplicatePage(
        data=[
            DuplicatePair(
                score=float(row.score),
                reasons=list(row.reasons),
                user=_user(row, "a"),
                other=_user(row, "b"),
            )
            for row in page
        ],
        total=connection.execute(TOTAL).scalar_one(),
        pending_scan=connection.execute(PENDING_SCAN).scalar_one(),
        limit=limit,
        next_cursor=next_cursor,
    )


def list_duplicates(*, limit: int, cursor: str | None = None) -> DuplicatePage:
    return run_transaction(
        lambda connection: read_duplicates_page(connection, limit=limit, cursor=cursor)
    )


def possible_duplicates(connection: Connection, user_id: int) -> list[PossibleDuplicate]:
    """The user's best candidates, for the detail page."""
    return [
        PossibleDuplicate(id=row.id, score=float(row.score), reasons=list(row.reasons))
        for row in connection.execute(OF_USER, {"user_id": user_id})
    ]


def mark_not_duplicate(user_id: int, other_id: int, *, actor: Staff) -> NotDuplicateMark:
    """Record that two users are different people; the pair is never proposed again."""
    if user_id == other_id:
        raise Conflict("a user cannot be a duplicate of itself", field="duplicate_id")
    low, high = sorted((user_id, other_id))

    def mark(connection: Connection) -> NotDuplicateMark:
        found = set(connection.execute(USERS_OF_PAIR, {"user_id": low, "other_id": high}).scalars())
        for missing in sorted({user_id, other_id} - found):
            raise NotFound(
                f"user {missing} does not exist",
                field="duplicate_id" if missing == other_id else None,
            )
        parameters = {"user_id": low, "other_id": high, "actor": actor.email, "actor_id": actor.id}
        row = connection.execute(MARK, parameters).one()
        return NotDuplicateMark(**row._asdict())

    return run_transaction(mark)


def scan_queued(*, budget_seconds: float, chunk: int = 2000) -> tuple[int, int]:
    """Find the candidates of queued customers, ``chunk`` per transaction, until the
    queue is empty or ``budget_seconds`` have passed; ``(scanned, still queued)``."""
    deadline = time.monotonic() + budget_seconds
    scanned = 0
    while True:
        taken = run_transaction(
            lambda connection: connection.execute(SCAN_QUEUED, {"max_users": chunk}).scalar_one()
        )
        scanned += taken
        if taken < chunk or time.monotonic() >= deadline:
            break
    remaining = run_transaction(lambda connection: connection.execute(PENDING_SCAN).scalar_one())
    return scanned, remaining
