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
  unique normalised email and answers ``merged_into`` instead
  (``customer_upsert.RESOLVED_ID``). Merged rows are never filled.

The rules are SQL, written once in SQLAlchemy Core (``customer_upsert``); the checkout
runs the single-customer upsert from its rendering (``customer_upsert_sql``), which
needs no SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rft_common.customers.upsert_sql import UPSERT_ONE_CONSTANTS, UPSERT_ONE_SQL
from rft_common.db.postgres import Connection

FILLABLE_FIELDS = ("name", "phone", "company_name")
UPSERT_PARAMETERS = ("email", "role", "customer_type", *FILLABLE_FIELDS)
"""What a new customer is given: the single-customer upsert's parameters."""


@dataclass(frozen=True)
class CustomerDetails:
    email: str
    """Already normalised (``emails.normalize_email``)."""
    name: str | None = None
    phone: str | None = None
    company_name: str | None = None


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


def find_or_create_customer(connection: Connection, customer: CustomerDetails) -> tuple[int, bool]:
    """The booking path's single-customer upsert: ``(user_id, created)``."""
    row = connection.execute(
        UPSERT_ONE_SQL, UPSERT_ONE_CONSTANTS | _new_customer_row(customer)
    ).one()
    return row.id, row.created
