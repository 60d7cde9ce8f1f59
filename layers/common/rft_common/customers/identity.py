"""Find-or-create customers by normalised email, safely under concurrency.

Identity rules, shared by the booking path and the backfill:

- one user per normalised email (``users.email_normalized`` is unique);
- an existing user's role never changes;
- a customer's blank name/phone/company are filled from a booking, non-blank values
  are never overwritten, with one exception: details from a booking nobody paid for are
  provisional (``users.details_source = 'unpaid_booking'``), and the customer's first
  paid booking replaces them all (then ``paid_booking``); an admin's edit makes them
  ``admin``. Details from a paid booking or an admin are never replaced by a booking;
  ``details_source`` null (legacy rows, the backfill, participants) fills blanks only;
- a staff member (admin, instructor) who books with their own email is linked
  unchanged;
- an email that is an alias (the email of a customer merged into another) links to
  the survivor: the merged row keeps its email, so the upsert finds it through the
  unique normalised email and answers ``merged_into`` instead. Merged rows are never
  filled.

The rules are SQL, written once, in the database: the function
``rft_find_or_create_customers`` (migration 0028), which PostgreSQL plans once per
connection. The checkout calls it for one customer (``FIND_OR_CREATE_ONE``, through
``find_or_create_customer``); a group booking's participants (``customers.attendees``)
and the backfill (``backfill.service``) call it for a batch of them, each in a statement
of its own around ``FIND_OR_CREATE_CUSTOMERS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rft_common.db.postgres import Connection

FILLABLE_FIELDS = ("name", "phone", "company_name")

FIND_OR_CREATE_CUSTOMERS = """
    found_or_created AS (
        SELECT * FROM rft_find_or_create_customers(ARRAY(
            SELECT CAST(ROW(email, name, phone, company_name, details_source, created_at)
                        AS rft_new_customer)
            FROM new_customers))
    )"""
"""The identity rules for a batch: a CTE to follow ``WITH new_customers AS (...)``, a CTE
of the customers to find or create, one row per normalised email (a fixed point of
``lower(btrim(email))``): ``email, name, phone, company_name, details_source, created_at``,
blank details NULL (``details_source``: ``unpaid_booking``, ``paid_booking`` or NULL). It
defines ``found_or_created``: ``email, id, created`` of every customer given (``id`` is
the survivor for a merged one, ``created`` whether this statement inserted it).

The rules are the database function ``rft_find_or_create_customers`` (migration 0028,
which also says how they stay safe under concurrency). Read ``found_or_created`` in full
(the backfill counts it): a CTE that is only a function call runs when it is read."""

FIND_OR_CREATE_ONE = """
    SELECT id, created FROM rft_find_or_create_customers(ARRAY[CAST(ROW(
        CAST(:email AS text), CAST(:name AS text), CAST(:phone AS text),
        CAST(:company_name AS text), CAST(:details_source AS text), now())
        AS rft_new_customer)])
"""
"""One customer (the booking path): ``(id, created)``."""


@dataclass(frozen=True)
class CustomerDetails:
    email: str
    """Already normalised (``emails.normalize_email``)."""
    name: str | None = None
    phone: str | None = None
    company_name: str | None = None
    paid: bool | None = None
    """True: from a paid booking; False: from an unpaid one (provisional details);
    None: neither (details fill blanks only)."""


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def find_or_create_customer(connection: Connection, customer: CustomerDetails) -> tuple[int, bool]:
    """The booking path's single-customer upsert: ``(user_id, created)``."""
    parameters = {field: _blank_to_none(getattr(customer, field)) for field in FILLABLE_FIELDS}
    source = {True: "paid_booking", False: "unpaid_booking", None: None}[customer.paid]
    row = connection.execute(
        FIND_OR_CREATE_ONE,
        parameters | {"email": customer.email, "details_source": source},
    ).one()
    return row.id, row.created
