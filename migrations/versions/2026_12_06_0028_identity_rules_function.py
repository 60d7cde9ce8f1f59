"""The identity rules are a database function, whose plan is kept.

``rft_find_or_create_customers(customers rft_new_customer[])`` finds or creates the given
customers, one per normalised email, by the identity rules (``customers.identity`` says
them in words), and answers ``email, id, created`` for each of them: ``id`` is the
survivor for a merged customer, ``created`` whether this call inserted it. The checkout
calls it for its one customer; the participants of a group booking and the backfill's
batches call it for theirs. A customer is a row of the composite type
``rft_new_customer``: ``email`` (normalised, a fixed point of ``lower(btrim(email))``),
``name``, ``phone``, ``company_name`` (blank as null), ``details_source``
(``unpaid_booking``, ``paid_booking`` or null) and ``created_at``.

The rules were SQL text in ``customers.identity``, a pair of CTEs each caller wrapped in a
statement of its own; PostgreSQL parsed and planned that upsert for every checkout (about
0.35 ms of planning on the bench's machine, the functions send no named prepared
statements through RDS Proxy). PL/pgSQL plans it once per connection, as migrations 0026
and 0027 do for the booking's email and the booking itself. The statement is unchanged:

- The upsert inserts in email order, so two calls sharing customers lock them in the
  same order and wait for each other instead of deadlocking.
- A found customer is rewritten only when a blank name, phone or company would be
  filled, or (``details_source``) a paid booking replaces an unpaid one's provisional
  details; staff rows never are. A row that would not change is still locked until
  commit (PostgreSQL locks every conflicting row of a ``DO UPDATE``), but it is not
  rewritten, so neither its indexes nor its counters are touched, and ``RETURNING``
  leaves it out: ``found_or_created`` adds those rows back, each looked up by the unique
  email index (a subquery per email, whatever the planner believes about the size of
  ``users``).
- Two exceptions keep that complete, each "updated" to its own values and returned as
  the row stands after any concurrent commit: a customer committed by a concurrent
  transaction after this statement's snapshot was taken (it is not in the snapshot),
  and a merged customer. A merge holds the duplicate's row locked, so an upsert arriving
  mid-merge waits, then finds the row merged and returns the survivor; the snapshot
  still shows it unmerged.

Revision ID: 0028_identity_rules_function
Revises: 0027_place_booking_function
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028_identity_rules_function"
down_revision: str | None = "0027_place_booking_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLACES_PROVISIONAL = (
    "users.details_source = 'unpaid_booking' AND excluded.details_source = 'paid_booking'"
)
MAY_FILL = (
    "(excluded.details_source IS DISTINCT FROM 'unpaid_booking'"
    " OR coalesce(users.details_source, 'unpaid_booking') = 'unpaid_booking')"
)
FOUND_CUSTOMER = "users.role = 'customer' AND users.merged_into IS NULL"
FILLABLE = ("name", "phone", "company_name")


def fills_blank(column: str) -> str:
    """The found row's ``column`` is blank and the given customer has a value for it."""
    return (
        f"coalesce(btrim(users.{column}), '') = '' AND coalesce(btrim(excluded.{column}), '') <> ''"
    )


def filled(column: str) -> str:
    """``column`` replaced by a paid booking's (even blank), else filled if blank."""
    return f"""{column} = CASE WHEN {FOUND_CUSTOMER} AND {REPLACES_PROVISIONAL}
                 THEN excluded.{column}
                 WHEN {FOUND_CUSTOMER} AND {MAY_FILL} AND {fills_blank(column)}
                 THEN excluded.{column} ELSE users.{column} END"""


CUSTOMER_TYPE = """
CREATE TYPE rft_new_customer AS (
    email text, name text, phone text, company_name text, details_source text,
    created_at timestamptz)
"""

FUNCTION = f"""
CREATE FUNCTION rft_find_or_create_customers(customers rft_new_customer[])
RETURNS TABLE (email text, id integer, created boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH new_customers AS (SELECT * FROM unnest(customers)),
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
            {filled("phone")},
            {filled("company_name")},
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
               OR {MAY_FILL} AND ({" OR ".join(fills_blank(column) for column in FILLABLE)}))
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
    )
    SELECT CAST(found_or_created.email AS text), found_or_created.id,
           found_or_created.created
    FROM found_or_created;
END
$$
"""


def upgrade() -> None:
    op.execute(CUSTOMER_TYPE)
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION rft_find_or_create_customers")
    op.execute("DROP TYPE rft_new_customer")
