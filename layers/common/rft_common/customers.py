"""Find-or-create customers by normalised email, safely under concurrency.

Identity rules, shared by the booking path and the backfill:

- one user per normalised email (``users.email_normalized`` is unique);
- an existing user's role never changes;
- a customer's blank name/phone/company are filled from a booking, non-blank values
  are never overwritten;
- a staff member (admin, instructor) who books with their own email is linked
  unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, case, func, literal_column, or_
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


def fill_blanks_on_conflict(statement: Insert) -> Insert:
    """``ON CONFLICT (email_normalized) DO UPDATE`` applying the identity rules.

    The update always happens (so ``RETURNING`` yields every row, created or
    found, and the row is locked until commit), but it only changes blank fields
    of customers; staff rows are rewritten with their own values.
    """
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[users.c.email_normalized],
        set_={
            field: case(
                (
                    (users.c.role == "customer")
                    & _is_blank(users.c[field])
                    & ~_is_blank(excluded[field]),
                    excluded[field],
                ),
                else_=users.c[field],
            )
            for field in FILLABLE_FIELDS
        },
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


def _merge(first: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """Keep each fillable field's first non-blank value."""
    merged = first | {field: first[field] or later[field] for field in FILLABLE_FIELDS}
    merged["customer_type"] = "corporate" if merged["company_name"] else "individual"
    return merged


RETURNING = (users.c.email_normalized, users.c.id, literal_column("xmax = 0").label("created"))

UPSERT_ONE = fill_blanks_on_conflict(
    insert(users).values(
        {
            column: bindparam(column)
            for column in ("email", "role", "customer_type", *FILLABLE_FIELDS)
        }
    )
).returning(*RETURNING)
"""Built once, so SQLAlchemy compiles it once; the booking path runs it per checkout."""


def find_or_create_customers(
    connection: Connection, customers: Iterable[CustomerDetails]
) -> Mapping[str, tuple[int, bool]]:
    """Upsert customers in one statement; ``{email: (user_id, created)}``.

    Rows are sent in email order so that concurrent transactions lock the same users
    in the same order (no deadlocks between overlapping batches). Duplicate emails
    are merged first, keeping each field's first non-blank value.
    """
    merged: dict[str, dict[str, Any]] = {}
    for customer in customers:
        row = _new_customer_row(customer)
        merged[customer.email] = (
            _merge(merged[customer.email], row) if customer.email in merged else row
        )
    if not merged:
        return {}
    rows = [merged[email] for email in sorted(merged)]
    statement = fill_blanks_on_conflict(insert(users).values(rows)).returning(*RETURNING)
    return {row.email_normalized: (row.id, row.created) for row in connection.execute(statement)}


def find_or_create_customer(connection: Connection, customer: CustomerDetails) -> tuple[int, bool]:
    """The booking path's single-customer upsert: ``(user_id, created)``."""
    row = connection.execute(UPSERT_ONE, _new_customer_row(customer)).one()
    return row.id, row.created
