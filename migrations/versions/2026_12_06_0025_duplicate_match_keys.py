"""The duplicate scan's match keys move off ``users`` into ``user_match_keys``.

Migration 0009 indexed three expressions on ``users`` for the duplicate scan: the E.164
phone, the deletion variants of the email's local part (GIN) and name with company.
PostgreSQL writes an entry into every index of a table whenever a row's update cannot
be HOT, and a checkout's update of its customer's statistics cannot be (the list's sort
indexes cover them), so each booking evaluated the three expressions (regular
expressions and a generated array) and wrote those entries again although the keys had
not changed. Measured by interleaved runs of the checkout, that was about 1 ms of a 7 ms
booking.

``user_match_keys`` holds the three keys per user, with the same indexes. They are
written only when a user is inserted or their name, email, phone or company changes: by
the trigger that already queues those users for the scan, in the same statement-level
trigger, so a statistics update pays nothing for them. The scan looks the keys up there
and scores pairs from ``users`` as before, reading each pair's two users by id.

Revision ID: 0025_duplicate_match_keys
Revises: 0024_certificate_number_length
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0025_duplicate_match_keys"
down_revision: str | None = "0024_certificate_number_length"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def match_keys(row: str) -> str:
    """The keys of the ``users`` row ``row``, as migration 0009 indexed them."""
    return f"""
        rft_phone_e164({row}.phone) AS phone_e164,
        rft_deletion_variants(split_part({row}.email_normalized, '@', 1))
            AS email_local_variants,
        rft_name_key({row}.name) AS name_key,
        lower(btrim({row}.company_name)) AS company_key"""


def write_match_keys(rows: str) -> str:
    """PL/pgSQL: write the keys of the ``users`` rows ``n`` that ``rows`` (a FROM clause,
    with a WHERE if any) yields."""
    return f"""
        INSERT INTO user_match_keys (user_id, phone_e164, email_local_variants, name_key,
                                     company_key)
        SELECT n.id, {match_keys("n")}
        {rows}
        ORDER BY n.id
        ON CONFLICT (user_id) DO UPDATE
        SET phone_e164 = excluded.phone_e164,
            email_local_variants = excluded.email_local_variants,
            name_key = excluded.name_key,
            company_key = excluded.company_key;"""


IDENTITY_CHANGED = """
        FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
        WHERE (o.name, o.email_normalized, o.phone, o.company_name)
              IS DISTINCT FROM (n.name, n.email_normalized, n.phone, n.company_name)"""


def _queue_trigger_function() -> str:
    """Migration 0009's queue trigger, writing the keys of the users it sees inserted or
    whose name, email, phone or company changed."""
    source = _migration_0009().QUEUE_TRIGGER_FUNCTION
    for branch, rows in (
        ("    IF TG_OP = 'INSERT' THEN", "FROM new_rows AS n"),
        ("    ELSE", IDENTITY_CHANGED),
    ):
        assert source.count(branch + "\n") == 1, f"migration 0009's trigger changed: {branch}"
        source = source.replace(branch + "\n", branch + write_match_keys(rows) + "\n")
    return source.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


# Each pair's two users are read by their id, per pair (a subquery with LIMIT is never
# flattened into the join): the planner cannot start from a cross join of all
# customers, which it did for the plain joins when the statistics of a freshly filled
# table said "one customer" (185 s for 100 users in the duplicate-quality test).
CANDIDATE_LOOKUP = """
        FROM users AS c
        JOIN user_match_keys AS ck ON ck.user_id = c.id
        CROSS JOIN LATERAL (
            SELECT k.user_id AS id FROM user_match_keys AS k
            WHERE k.phone_e164 = ck.phone_e164
            UNION
            SELECT k.user_id FROM user_match_keys AS k
            WHERE k.email_local_variants && ck.email_local_variants
            UNION
            SELECT k.user_id FROM user_match_keys AS k
            WHERE k.name_key = ck.name_key AND k.company_key = ck.company_key
        ) AS o
        WHERE c.id = ANY(user_ids) AND o.id <> c.id
          AND c.role = 'customer' AND c.merged_into IS NULL
    ) AS pair
    CROSS JOIN LATERAL (SELECT * FROM users WHERE id = pair.user_id LIMIT 1) AS a
    CROSS JOIN LATERAL (SELECT * FROM users WHERE id = pair.other_id LIMIT 1) AS b
"""

USER_INDEXES_0009 = (
    "ix_users_phone_e164",
    "ix_users_email_local_variants",
    "ix_users_name_company",
)


def _migration_0009():  # type: ignore[no-untyped-def]
    return op.get_context().script.get_revision("0009_duplicate_customers").module


def _refresh_candidates_function() -> str:
    """Migration 0009's function with ``CANDIDATE_LOOKUP`` in place of its lookup (from
    its customers to the join of each pair's two users)."""
    source = _migration_0009().REFRESH_CANDIDATES_FUNCTION
    start = source.index("        FROM users AS c\n")
    end = source.index("    CROSS JOIN LATERAL (\n        SELECT split_part(a.email_normalized")
    replaced = source[:start] + CANDIDATE_LOOKUP + source[end:]
    return replaced.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


def upgrade() -> None:
    op.create_table(
        "user_match_keys",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("phone_e164", sa.Text),
        sa.Column("email_local_variants", ARRAY(sa.Text), nullable=False),
        sa.Column("name_key", sa.Text),
        sa.Column("company_key", sa.Text),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_match_keys"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_user_match_keys_user_id_users", ondelete="CASCADE"
        ),
    )
    op.execute(
        "INSERT INTO user_match_keys (user_id, phone_e164, email_local_variants, name_key, "
        f"company_key) SELECT u.id, {match_keys('u')} FROM users AS u"
    )
    op.execute(
        "CREATE INDEX ix_user_match_keys_phone_e164 ON user_match_keys (phone_e164) "
        "WHERE phone_e164 IS NOT NULL"
    )
    # fastupdate off, as on migration 0009's index: a pending list is scanned whole by
    # every lookup until vacuum merges it.
    op.execute(
        "CREATE INDEX ix_user_match_keys_email_local_variants ON user_match_keys "
        "USING gin (email_local_variants) WITH (fastupdate = off)"
    )
    op.execute(
        "CREATE INDEX ix_user_match_keys_name_company ON user_match_keys "
        "(name_key, company_key) WHERE company_key IS NOT NULL"
    )
    op.execute(_queue_trigger_function())
    op.execute(_refresh_candidates_function())
    for name in USER_INDEXES_0009:
        op.execute(f"DROP INDEX {name}")


def downgrade() -> None:
    migration_0009 = _migration_0009()
    for name in USER_INDEXES_0009:
        op.execute(f"CREATE INDEX {name} ON users {migration_0009.USER_INDEXES[name]}")
    for function in (
        migration_0009.REFRESH_CANDIDATES_FUNCTION,
        migration_0009.QUEUE_TRIGGER_FUNCTION,
    ):
        op.execute(function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    op.drop_table("user_match_keys")
