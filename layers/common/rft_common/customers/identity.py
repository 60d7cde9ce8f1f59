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

The rules are SQL, written once (``FIND_OR_CREATE_CUSTOMERS``): the checkout runs it
for one customer (``find_or_create_customer``), the backfill for a batch of them
(``backfill.service``), each in a statement of its own around it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rft_common.db.postgres import Connection

FILLABLE_FIELDS = ("name", "phone", "company_name")

REPLACES_PROVISIONAL = (
    "users.details_source = 'unpaid_booking' AND excluded.details_source = 'paid_booking'"
)
"""A paid booking's details replace those an unpaid booking gave (``details_source``)."""
MAY_FILL = (
    "(excluded.details_source IS DISTINCT FROM 'unpaid_booking'"
    " OR coalesce(users.details_source, 'unpaid_booking') = 'unpaid_booking')"
)
"""An unpaid booking never adds to details that came from a paid booking or an admin."""
FOUND_CUSTOMER = "users.role = 'customer' AND users.merged_into IS NULL"

FIND_OR_CREATE_CUSTOMERS = f"""
    upserted AS (
        INSERT INTO users (email, role, customer_type, name, phone, company_name,
                           details_source, created_at)
        SELECT email, 'customer',
               CASE WHEN company_name IS NULL THEN 'individual' ELSE 'corporate' END,
               name, phone, company_name, details_source, created_at
        FROM new_customers
        ORDER BY email
        ON CONFLICT (email_normalized) DO UPDATE SET
            name = CASE WHEN {FOUND_CUSTOMER} AND coalesce(btrim(excluded.name), '') <> ''
                              AND ({REPLACES_PROVISIONAL}
                                   OR coalesce(btrim(users.name), '') = '' AND {MAY_FILL})
                        THEN excluded.name ELSE users.name END,
            phone = CASE WHEN {FOUND_CUSTOMER} AND {REPLACES_PROVISIONAL}
                         THEN excluded.phone
                         WHEN {FOUND_CUSTOMER} AND {MAY_FILL}
                              AND coalesce(btrim(users.phone), '') = ''
                              AND coalesce(btrim(excluded.phone), '') <> ''
                         THEN excluded.phone ELSE users.phone END,
            company_name = CASE WHEN {FOUND_CUSTOMER} AND {REPLACES_PROVISIONAL}
                                THEN excluded.company_name
                                WHEN {FOUND_CUSTOMER} AND {MAY_FILL}
                                     AND coalesce(btrim(users.company_name), '') = ''
                                     AND coalesce(btrim(excluded.company_name), '') <> ''
                                THEN excluded.company_name ELSE users.company_name END,
            customer_type = CASE WHEN {FOUND_CUSTOMER} AND {REPLACES_PROVISIONAL}
                                 THEN excluded.customer_type ELSE users.customer_type END,
            details_source = CASE WHEN {FOUND_CUSTOMER}
                                       AND excluded.details_source = 'paid_booking'
                                       AND users.details_source IS DISTINCT FROM 'admin'
                                  THEN 'paid_booking' ELSE users.details_source END
        WHERE users.merged_into IS NOT NULL
           OR NOT EXISTS (
               SELECT FROM users AS seen WHERE seen.email_normalized = excluded.email_normalized
           )
           OR users.role = 'customer' AND (
                  {REPLACES_PROVISIONAL}
               OR {MAY_FILL} AND (
                      coalesce(btrim(users.name), '') = ''
                      AND coalesce(btrim(excluded.name), '') <> ''
                   OR coalesce(btrim(users.phone), '') = ''
                      AND coalesce(btrim(excluded.phone), '') <> ''
                   OR coalesce(btrim(users.company_name), '') = ''
                      AND coalesce(btrim(excluded.company_name), '') <> ''))
        RETURNING users.email_normalized AS email,
                  coalesce(users.merged_into, users.id) AS id,
                  xmax = 0 AS created
    ),
    found_or_created AS (
        SELECT email, id, created FROM upserted
        UNION ALL
        SELECT given.email,
               (SELECT coalesce(users.merged_into, users.id)
                FROM users WHERE users.email_normalized = given.email),
               false
        FROM new_customers AS given
        WHERE NOT EXISTS (SELECT FROM upserted WHERE upserted.email = given.email)
    )"""
"""The identity rules: two CTEs to follow ``WITH new_customers AS (...)``, a CTE of the
customers to find or create, one row per normalised email (a fixed point of
``lower(btrim(email))``): ``email, name, phone, company_name, details_source, created_at``,
blank details NULL (``details_source``: ``unpaid_booking``, ``paid_booking`` or NULL).
They define ``upserted`` (the rows the upsert wrote: ``email, id, created``) and
``found_or_created`` (``email, id, created`` of every customer given; ``id`` is the
survivor for a merged one).

The upsert inserts in email order, so two statements sharing customers lock them in the
same order and wait for each other instead of deadlocking. A found customer is rewritten
only when a blank name, phone or company would be filled; staff rows never are. A row
that would not change is still locked until commit (PostgreSQL locks every conflicting
row of a ``DO UPDATE``), but it is not rewritten, so neither its indexes nor its counters
are touched, and ``RETURNING`` leaves it out: ``found_or_created`` adds those rows back,
each looked up by the unique email index (a subquery per email, whatever the planner
believes about the size of ``users``).

Two exceptions keep that complete, each "updated" to its own values and returned as the
row stands after any concurrent commit: a customer committed by a concurrent transaction
after this statement's snapshot was taken (it is not in the snapshot), and a merged
customer. A merge holds the duplicate's row locked, so an upsert arriving mid-merge
waits, then finds the row merged and returns the survivor; the snapshot still shows it
unmerged.
"""

FIND_OR_CREATE_ONE = f"""
    WITH new_customers AS (
        SELECT CAST(:email AS text) AS email, CAST(:name AS text) AS name,
               CAST(:phone AS text) AS phone, CAST(:company_name AS text) AS company_name,
               CAST(:details_source AS text) AS details_source, now() AS created_at
    ),
    {FIND_OR_CREATE_CUSTOMERS}
    SELECT id, created FROM found_or_created
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
