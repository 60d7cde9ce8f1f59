"""Backfill by customer (batches are ranges of an email hash; counters once per batch),
and search estimates fine enough to pick the right plan.

- ``rft_backfill_email_key(raw_email)``: a stable 32-bit hash of the normalised email
  (trimmed of ``EMAIL_WHITESPACE``, lower-cased; the first 4 bytes of its MD5 as a
  signed integer). ``rft_common.backfill.service.email_key`` computes the same in Python; a
  test compares them. Every booking of one customer has the same key, so a range of
  keys holds all of a customer's bookings, and disjoint ranges share no customer.
- ``ix_bookings_unlinked_email_key``: the key of each unlinked booking (partial, like
  ``ix_bookings_id_unlinked``): a batch reads its bookings, and enqueue partitions
  them, from the index alone. It shrinks as the backfill links bookings.
- ``backfill_batches`` records either a range of booking ids (version 1 messages) or
  a range of email keys (version 2), never both.
- ``user_counts`` deferral: a transaction that calls ``rft_defer_user_counts()``
  collects the counter changes of its writes to ``users`` in a transaction-local
  setting and applies them with ``rft_flush_user_counts()``, just before it commits.
  A backfill batch then locks a counter row for the instant of its commit instead of
  from its first insert on, so concurrent batches no longer queue on counter rows.
  Transactions that do not defer (checkouts, admin edits, the legacy app) apply their
  changes at once, as before. A deferred change that is never flushed is lost with
  nothing else: the setting is transaction-local and the batch flushes in the same
  statement that marks it done.
- The trigram search index's statistics target is 1000 (``ix_users_search_trgm``,
  migration 0004): with the default 100, a search term matching 0.5% of the users
  was estimated at 0.01% or 1% (no or one hit in a 100-entry histogram), and at 1%
  the planner walked the sort's index filtering row by row (5-20 ms at 30,000 users)
  instead of sorting the matches (under 1 ms). ANALYZE then samples 300,000 rows.

Revision ID: 0008_backfill_by_customer
Revises: 0007_payments
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_backfill_by_customer"
down_revision: str | None = "0007_payments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The whitespace ``rft_common.core.emails.EMAIL_WHITESPACE`` trims: space, \t \n \r \f \v, NBSP.
EMAIL_KEY_FUNCTION = r"""
CREATE FUNCTION rft_backfill_email_key(raw_email text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ('x' || left(md5(lower(btrim(coalesce(raw_email, ''),
                                    E' \t\n\r\f\u000b\u00a0'))), 8))::bit(32)::integer
"""
EMAIL_KEY_INDEX = (
    "CREATE INDEX ix_bookings_unlinked_email_key ON bookings "
    "(rft_backfill_email_key(contact_details ->> 'email')) WHERE user_id IS NULL"
)

PENDING = "rft.pending_user_counts"
APPLY_COUNTS_FUNCTION = """
CREATE FUNCTION rft_apply_user_counts(changes user_counts[]) RETURNS void
LANGUAGE sql AS $$
    -- One shard per transaction, rows locked in key order: no deadlock between the
    -- statements of concurrent transactions here.
    INSERT INTO user_counts AS c (role, customer_type, has_bookings, shard, total)
    SELECT role, customer_type, has_bookings, mod(txid_current(), 16), sum(total)
    FROM unnest(changes)
    GROUP BY role, customer_type, has_bookings
    HAVING sum(total) <> 0
    ORDER BY role, customer_type, has_bookings
    ON CONFLICT (role, customer_type, has_bookings, shard)
    DO UPDATE SET total = c.total + excluded.total
$$;
"""
COUNT_TRIGGER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION rft_users_refresh_counts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changes user_counts[];  -- (role, customer type, has bookings, shard unused, +1 or -1)
    pending text := current_setting('{PENDING}', true);
BEGIN
    IF TG_OP = 'INSERT' THEN
        changes := ARRAY(
            SELECT ROW(role, coalesce(customer_type, ''), total_bookings > 0, 0, 1)::user_counts
            FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        changes := ARRAY(
            SELECT ROW(role, coalesce(customer_type, ''), total_bookings > 0, 0, -1)::user_counts
            FROM old_rows);
    ELSE
        -- Only users whose key changed: a statistics refresh that leaves has_bookings
        -- as it was touches no counter row.
        changes := ARRAY(
            SELECT ROW(k.role, k.customer_type, k.has_bookings, 0, k.delta)::user_counts
            FROM old_rows AS o
            JOIN new_rows AS n ON n.id = o.id
            CROSS JOIN LATERAL (VALUES
                (o.role, coalesce(o.customer_type, ''), o.total_bookings > 0, -1),
                (n.role, coalesce(n.customer_type, ''), n.total_bookings > 0, 1)
            ) AS k(role, customer_type, has_bookings, delta)
            WHERE (o.role, o.customer_type, o.total_bookings > 0)
                  IS DISTINCT FROM (n.role, n.customer_type, n.total_bookings > 0));
    END IF;
    IF pending <> '' THEN
        -- Deferred (rft_defer_user_counts): add to this transaction's pending changes,
        -- summed per key, so they stay a handful of rows however many users change.
        PERFORM set_config('{PENDING}', ARRAY(
            SELECT ROW(role, customer_type, has_bookings, 0, sum(total))::user_counts
            FROM unnest(pending::user_counts[] || changes)
            GROUP BY role, customer_type, has_bookings
            HAVING sum(total) <> 0)::text, true);
    ELSE
        PERFORM rft_apply_user_counts(changes);
    END IF;
    RETURN NULL;
END
$$;
"""
DEFER_FUNCTION = f"""
CREATE FUNCTION rft_defer_user_counts() RETURNS void
LANGUAGE sql AS $$ SELECT set_config('{PENDING}', '{{}}', true) $$;
"""
FLUSH_FUNCTION = f"""
CREATE FUNCTION rft_flush_user_counts() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    pending text := current_setting('{PENDING}', true);
BEGIN
    PERFORM set_config('{PENDING}', '', true);
    IF pending <> '' THEN
        PERFORM rft_apply_user_counts(pending::user_counts[]);
    END IF;
END
$$;
"""

SEARCH_INDEX = "ix_users_search_trgm"
SEARCH_STATISTICS = 1000

ONE_RANGE = """
    (first_booking_id IS NOT NULL AND last_booking_id IS NOT NULL
     AND first_email_key IS NULL AND last_email_key IS NULL)
    OR (first_booking_id IS NULL AND last_booking_id IS NULL
        AND first_email_key IS NOT NULL AND last_email_key IS NOT NULL
        AND first_email_key <= last_email_key)
"""


def upgrade() -> None:
    op.execute(EMAIL_KEY_FUNCTION)
    op.execute(EMAIL_KEY_INDEX)
    op.add_column("backfill_batches", sa.Column("first_email_key", sa.Integer))
    op.add_column("backfill_batches", sa.Column("last_email_key", sa.Integer))
    op.alter_column("backfill_batches", "first_booking_id", nullable=True)
    op.alter_column("backfill_batches", "last_booking_id", nullable=True)
    op.create_check_constraint("ck_backfill_batches_one_range", "backfill_batches", ONE_RANGE)
    op.execute(APPLY_COUNTS_FUNCTION)
    op.execute(COUNT_TRIGGER_FUNCTION)
    op.execute(DEFER_FUNCTION)
    op.execute(FLUSH_FUNCTION)
    op.execute(
        f"ALTER INDEX ix_users_search_trgm ALTER COLUMN 1 SET STATISTICS {SEARCH_STATISTICS}"
    )
    op.execute("ANALYZE users")


def downgrade() -> None:
    """Back to 0004's counter trigger; version 2 batch rows are removed (their bookings
    stay linked; an enqueue after the downgrade plans what is left by id)."""
    previous = op.get_context().script.get_revision("0004_admin_users").module
    op.execute(f"ALTER INDEX {SEARCH_INDEX} ALTER COLUMN 1 SET STATISTICS -1")
    op.execute("DROP FUNCTION rft_flush_user_counts()")
    op.execute("DROP FUNCTION rft_defer_user_counts()")
    op.execute(
        previous.COUNT_TRIGGER_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    )
    op.execute("DROP FUNCTION rft_apply_user_counts(user_counts[])")
    op.drop_constraint("ck_backfill_batches_one_range", "backfill_batches", type_="check")
    op.execute("DELETE FROM backfill_batches WHERE first_booking_id IS NULL")
    op.alter_column("backfill_batches", "last_booking_id", nullable=False)
    op.alter_column("backfill_batches", "first_booking_id", nullable=False)
    op.drop_column("backfill_batches", "last_email_key")
    op.drop_column("backfill_batches", "first_email_key")
    op.execute("DROP INDEX ix_bookings_unlinked_email_key")
    op.execute("DROP FUNCTION rft_backfill_email_key(text)")
