"""Find-or-create customers by normalised email, safely under concurrency.

Identity rules, shared by the booking path and the backfill:

- one user per normalised email (``users.email_normalized`` is unique);
- an existing user's role never changes;
- a customer's blank name/phone/company are filled from a booking, non-blank values
  are never overwritten;
- a staff member (admin, instructor) who books with their own email is linked
  unchanged;
- an email that is an alias (the email of a customer merged into another) links to
  the survivor: the merged row keeps its email, so the upsert finds it through the
  unique normalised email and answers ``merged_into`` instead (``RESOLVED_ID``).
  Merged rows are never filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Select,
    bindparam,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import Insert, insert

from rft_common.models import users

FILLABLE_FIELDS = ("name", "phone", "company_name")


@dataclass(frozen=True)
class CustomerDetails:
    email: str
    """Already normalised (``emails.normalize_email``)."""
    name: str | None = None
    phone: str | None = None
    company_name: str | None = None


def _is_blank(column: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(column.is_(None), func.btrim(column) == "")


RESOLVED_ID = func.coalesce(users.c.merged_into, users.c.id).label("id")
"""The customer a users row stands for: itself, or the survivor it was merged into."""


def fill_blanks_on_conflict(statement: Insert) -> Insert:
    """``ON CONFLICT (email_normalized) DO UPDATE`` applying the identity rules.

    A found customer is rewritten only when a blank name, phone or company would be
    filled; staff rows never are. A row that would not change is still locked until
    commit (PostgreSQL locks every conflicting row of a ``DO UPDATE``), but it is not
    rewritten, so neither its indexes nor its counters are touched, and ``RETURNING``
    leaves it out: ``found_or_created`` adds those rows back from the snapshot.

    Two exceptions keep that complete, each "updated" to its own values and returned
    as the row stands after any concurrent commit: a customer committed by a
    concurrent transaction after this statement's snapshot was taken (it is not in
    the snapshot), and a merged customer. A merge holds the duplicate's row locked,
    so an upsert arriving mid-merge waits, then finds the row merged and returns the
    survivor; the snapshot still shows it unmerged.
    """
    excluded = statement.excluded
    fills = {
        field: (users.c.role == "customer")
        & users.c.merged_into.is_(None)
        & _is_blank(users.c[field])
        & ~_is_blank(excluded[field])
        for field in FILLABLE_FIELDS
    }
    seen = users.alias("seen")
    # ``excluded`` spelt out: SQLAlchemy would add the alias to the subquery's FROM.
    in_snapshot = exists().where(
        seen.c.email_normalized == literal_column("excluded.email_normalized")
    )
    return statement.on_conflict_do_update(
        index_elements=[users.c.email_normalized],
        set_={
            field: case((fill, excluded[field]), else_=users.c[field])
            for field, fill in fills.items()
        },
        where=or_(*fills.values(), ~in_snapshot, users.c.merged_into.is_not(None)),
    )


def found_or_created(upserted: CTE, email: ColumnElement[str]) -> Select[Any]:
    """``(email_normalized, id, created)`` of every customer of an upsert.

    ``upserted`` is a ``fill_blanks_on_conflict`` upsert with ``RETURNING`` as a CTE;
    ``email`` the normalised emails it was given (a column of a CTE, or a bound
    value). The customers it did not return were in this statement's snapshot,
    unchanged: each is looked up by the unique email index (a subquery per email,
    whatever the planner believes about the size of ``users``).
    """
    existing_id = select(RESOLVED_ID).where(users.c.email_normalized == email).scalar_subquery()
    return select(upserted.c.email_normalized, upserted.c.id, upserted.c.created).union_all(
        select(email.label("email_normalized"), existing_id.label("id"), false()).where(
            ~exists().where(upserted.c.email_normalized == email)
        )
    )


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def _new_customer_row(customer: CustomerDetails) -> dict[str, Any]:
    row: dict[str, Any] = {
        field: _blank_to_none(getattr(customer, field)) for field in FILLABLE_FIELDS
    }
    row["email"] = customer.email
    row["role"] = "customer"
    row["customer_type"] = "corporate" if row["company_name"] else "individual"
    return row


RETURNING = (users.c.email_normalized, RESOLVED_ID, literal_column("xmax = 0").label("created"))


def _upsert_one() -> Select[Any]:
    upserted = (
        fill_blanks_on_conflict(
            insert(users).values(
                {
                    column: bindparam(column)
                    for column in ("email", "role", "customer_type", *FILLABLE_FIELDS)
                }
            )
        )
        .returning(*RETURNING)
        .cte("upserted")
    )
    return found_or_created(upserted, func.lower(func.btrim(bindparam("email"))))


UPSERT_ONE = _upsert_one()
"""Built once, so SQLAlchemy compiles it once; the booking path runs it per checkout."""


def find_or_create_customer(connection: Connection, customer: CustomerDetails) -> tuple[int, bool]:
    """The booking path's single-customer upsert: ``(user_id, created)``."""
    row = connection.execute(UPSERT_ONE, _new_customer_row(customer)).one()
    return row.id, row.created
