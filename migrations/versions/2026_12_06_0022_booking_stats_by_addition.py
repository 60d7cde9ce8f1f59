"""A new booking adds to its customer's statistics; only changes and deletions recount.

``rft_bookings_refresh_user_stats`` (the statement-level trigger function of migration
0002) recounted every affected customer's bookings after any insert, update or delete.
Two costs fell on every checkout:

- An insert only adds: one more booking (unless cancelled), its amount if paid, and its
  date to the first/last range. It is now added to the customer's row by one UPDATE,
  instead of a lock statement, a call and a recount over the customer's bookings. The
  UPDATE locks and re-reads the row (READ COMMITTED re-evaluates a row another
  transaction changed), so concurrent checkouts of one customer add up exactly. An
  insert of several customers' bookings (a seed, the legacy app's bulk import) locks
  their rows in id order first, as the recount does, so two such inserts cannot deadlock.
- The checkout's single statement holds an UPDATE of bookings that changes no row unless
  a paid booking supersedes its own unpaid hold; a statement-level trigger fires all the
  same. A change or deletion that touches no customer's figures now returns before
  calling the recount.

Updates and deletions still recount (a status or amount change is not a simple
addition), through ``rft_refresh_user_stats``, unchanged.

Revision ID: 0022_booking_stats_by_addition
Revises: 0021_threat_defences_2
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022_booking_stats_by_addition"
down_revision: str | None = "0021_threat_defences_2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION rft_bookings_refresh_user_stats() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed_users integer[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF (SELECT count(DISTINCT user_id) FROM new_rows) > 1 THEN
            PERFORM 1 FROM users WHERE id IN (SELECT user_id FROM new_rows)
            ORDER BY id FOR NO KEY UPDATE;
        END IF;
        UPDATE users AS u
        SET total_bookings = u.total_bookings + added.bookings,
            total_spent = u.total_spent + added.spent,
            first_booking_at = least(u.first_booking_at, added.first_booking_at),
            last_booking_at = greatest(u.last_booking_at, added.last_booking_at)
        FROM (
            SELECT user_id,
                   count(*) FILTER (WHERE status <> 'cancelled') AS bookings,
                   coalesce(sum(payment_amount) FILTER (WHERE payment_status = 'paid'), 0)
                       AS spent,
                   min(created_at) FILTER (WHERE status <> 'cancelled') AS first_booking_at,
                   max(created_at) FILTER (WHERE status <> 'cancelled') AS last_booking_at
            FROM new_rows
            WHERE user_id IS NOT NULL
            GROUP BY user_id
        ) AS added
        WHERE u.id = added.user_id AND (added.bookings > 0 OR added.spent <> 0);
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        changed_users := ARRAY(
            SELECT DISTINCT user_id FROM old_rows WHERE user_id IS NOT NULL);
    ELSE
        changed_users := ARRAY(
            SELECT affected.user_id
            FROM old_rows AS o
            JOIN new_rows AS n ON n.id = o.id
            CROSS JOIN LATERAL (VALUES (o.user_id), (n.user_id)) AS affected(user_id)
            WHERE affected.user_id IS NOT NULL
              AND (o.user_id, o.status, o.payment_status, o.payment_amount, o.created_at)
                  IS DISTINCT FROM
                  (n.user_id, n.status, n.payment_status, n.payment_amount, n.created_at)
            GROUP BY affected.user_id);
    END IF;
    IF cardinality(changed_users) > 0 THEN
        PERFORM rft_refresh_user_stats(changed_users);
    END IF;
    RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    op.execute(TRIGGER_FUNCTION)


def downgrade() -> None:
    """Back to migration 0002's recount after every insert, update and deletion."""
    previous = op.get_context().script.get_revision("0002_customer_accounts").module
    op.execute(previous.TRIGGER_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
