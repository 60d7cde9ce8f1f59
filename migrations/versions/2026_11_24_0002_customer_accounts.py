"""Customer accounts: customers become users, with statistics kept by the database.

Additive only. ``users`` gains the customer profile, a unique normalised email and
statistics; ``role`` is constrained; bookings get the indexes the customer queries
need; statement-level triggers keep the statistics equal to a recomputation from
``bookings`` whatever writes them (this system, the legacy app's plain SQL, an
operator).

What counts (the one definition, in ``rft_refresh_user_stats``):

- ``total_bookings``: bookings whose status is not ``cancelled``;
- ``total_spent``: ``payment_amount`` of bookings whose ``payment_status`` is
  ``paid`` (money received and not refunded, whatever the booking status);
- ``first_booking_at`` / ``last_booking_at``: earliest / latest ``created_at`` of
  the counted bookings.

Revision ID: 0002_customer_accounts
Revises: 0001_legacy_baseline
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision: str = "0002_customer_accounts"
down_revision: str | None = "0001_legacy_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = TIMESTAMP(timezone=True)

CUSTOMER_COLUMNS = [
    sa.Column("phone", sa.String(50)),
    sa.Column("company_name", sa.String(255)),
    sa.Column("customer_type", sa.String(20)),
    sa.Column("address_line1", sa.String(255)),
    sa.Column("address_line2", sa.String(255)),
    sa.Column("city", sa.String(100)),
    sa.Column("postcode", sa.String(20)),
    sa.Column("marketing_consent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("newsletter_subscribed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("notes", sa.Text),
    sa.Column("total_bookings", sa.Integer, nullable=False, server_default="0"),
    sa.Column("total_spent", sa.Numeric(12, 2), nullable=False, server_default="0"),
    sa.Column("first_booking_at", Timestamp),
    sa.Column("last_booking_at", Timestamp),
]
RELAXED_NOT_NULL = ("name", "password_hash")
INDEXES = [
    ("ix_bookings_user_id_created_at", "bookings", ["user_id", "created_at"]),
    ("ix_bookings_course_schedule_id", "bookings", ["course_schedule_id"]),
    ("ix_course_schedules_course_id", "course_schedules", ["course_id"]),
    ("ix_payments_booking_id", "payments", ["booking_id"]),
]

REFRESH_FUNCTION = """
CREATE FUNCTION rft_refresh_user_stats(user_ids integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- Lock the customers first, in id order: under READ COMMITTED the recomputation
    -- below then takes its snapshot after every concurrent writer of the same
    -- customers has committed, so no booking is missed and no update is lost.
    PERFORM 1 FROM users WHERE id = ANY(user_ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE users AS u
    SET total_bookings = s.total_bookings,
        total_spent = s.total_spent,
        first_booking_at = s.first_booking_at,
        last_booking_at = s.last_booking_at
    FROM (
        SELECT ids.id,
               count(b.id) FILTER (WHERE b.status <> 'cancelled') AS total_bookings,
               coalesce(sum(b.payment_amount) FILTER (WHERE b.payment_status = 'paid'), 0)
                   AS total_spent,
               min(b.created_at) FILTER (WHERE b.status <> 'cancelled') AS first_booking_at,
               max(b.created_at) FILTER (WHERE b.status <> 'cancelled') AS last_booking_at
        FROM unnest(user_ids) AS ids(id)
        LEFT JOIN bookings AS b ON b.user_id = ids.id
        GROUP BY ids.id
    ) AS s
    WHERE u.id = s.id
      AND (u.total_bookings, u.total_spent, u.first_booking_at, u.last_booking_at)
          IS DISTINCT FROM
          (s.total_bookings, s.total_spent, s.first_booking_at, s.last_booking_at);
END
$$;
"""

TRIGGER_FUNCTION = """
CREATE FUNCTION rft_bookings_refresh_user_stats() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM rft_refresh_user_stats(ARRAY(
            SELECT DISTINCT user_id FROM new_rows WHERE user_id IS NOT NULL));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM rft_refresh_user_stats(ARRAY(
            SELECT DISTINCT user_id FROM old_rows WHERE user_id IS NOT NULL));
    ELSE
        PERFORM rft_refresh_user_stats(ARRAY(
            SELECT affected.user_id
            FROM old_rows AS o
            JOIN new_rows AS n ON n.id = o.id
            CROSS JOIN LATERAL (VALUES (o.user_id), (n.user_id)) AS affected(user_id)
            WHERE affected.user_id IS NOT NULL
              AND (o.user_id, o.status, o.payment_status, o.payment_amount, o.created_at)
                  IS DISTINCT FROM
                  (n.user_id, n.status, n.payment_status, n.payment_amount, n.created_at)
            GROUP BY affected.user_id));
    END IF;
    RETURN NULL;
END
$$;
"""

TRIGGERS = {
    "rft_bookings_stats_insert": "AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_rows",
    "rft_bookings_stats_update": (
        "AFTER UPDATE ON bookings REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "rft_bookings_stats_delete": "AFTER DELETE ON bookings REFERENCING OLD TABLE AS old_rows",
}


def _stop_on_conflicting_staff_rows() -> None:
    """Refuse to run, listing the rows, rather than merge or delete anybody."""
    bind = op.get_bind()
    collisions = bind.execute(
        sa.text(
            "SELECT lower(btrim(email)) AS normalized, array_agg(id ORDER BY id) AS ids "
            "FROM users GROUP BY 1 HAVING count(*) > 1 ORDER BY 1"
        )
    ).all()
    bad_roles = bind.execute(
        sa.text(
            "SELECT id, role FROM users "
            "WHERE role NOT IN ('customer', 'admin', 'instructor') ORDER BY id"
        )
    ).all()
    problems = [
        f"users {list(row.ids)} share the normalised email {row.normalized!r}" for row in collisions
    ] + [f"user {row.id} has role {row.role!r}" for row in bad_roles]
    if problems:
        raise RuntimeError(
            "customer_accounts migration stopped; resolve these users by hand, then rerun:\n  "
            + "\n  ".join(problems)
        )


def upgrade() -> None:
    _stop_on_conflicting_staff_rows()
    for column in CUSTOMER_COLUMNS:
        op.add_column("users", column._copy())
    for column in RELAXED_NOT_NULL:
        op.alter_column("users", column, nullable=True)
    op.add_column(
        "users",
        sa.Column(
            "email_normalized",
            sa.Text,
            sa.Computed("lower(btrim(email))", persisted=True),
            nullable=False,
        ),
    )
    op.create_unique_constraint("uq_users_email_normalized", "users", ["email_normalized"])
    op.create_check_constraint(
        "ck_users_role", "users", "role IN ('customer', 'admin', 'instructor')"
    )
    op.create_check_constraint(
        "ck_users_customer_type",
        "users",
        "customer_type IS NULL OR customer_type IN ('individual', 'corporate')",
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    op.execute(REFRESH_FUNCTION)
    op.execute(TRIGGER_FUNCTION)
    for name, timing in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {timing} "
            "FOR EACH STATEMENT EXECUTE FUNCTION rft_bookings_refresh_user_stats()"
        )
    op.execute(
        "SELECT rft_refresh_user_stats(ARRAY("
        "SELECT DISTINCT user_id FROM bookings WHERE user_id IS NOT NULL))"
    )


def downgrade() -> None:
    """Remove what upgrade added. Customer rows and booking links stay (no data loss);
    NOT NULL on name/password_hash comes back only where no customer row lacks them."""
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON bookings")
    op.execute("DROP FUNCTION rft_bookings_refresh_user_stats()")
    op.execute("DROP FUNCTION rft_refresh_user_stats(integer[])")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_constraint("ck_users_customer_type", "users", type_="check")
    op.drop_constraint("ck_users_role", "users", type_="check")
    op.drop_constraint("uq_users_email_normalized", "users", type_="unique")
    op.drop_column("users", "email_normalized")
    for column in RELAXED_NOT_NULL:
        op.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM users WHERE {column} IS NULL) THEN "
            f"ALTER TABLE users ALTER COLUMN {column} SET NOT NULL; END IF; END $$"
        )
    for column in reversed(CUSTOMER_COLUMNS):
        op.drop_column("users", column.name)
