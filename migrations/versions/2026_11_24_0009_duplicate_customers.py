"""Duplicate customers: candidates, "not a duplicate" marks, merges and email aliases.

- ``users.merged_into``: a merged duplicate keeps its row (and its email, so the
  unique normalised email still guards it), pointing at the survivor. Lists and
  exports leave it out, and the merge takes it out of ``user_counts`` (its key never
  changes again: its bookings moved, it cannot be edited); find-or-create resolves
  it to the survivor.
- ``user_email_aliases``: the duplicate's email, now an alias of the survivor. An
  alias is always the normalised email of a merged row, so one address is an email
  or an alias of exactly one person (the ``users`` unique constraint decides races).
- ``user_merges``: the merge record (who, when, every moved booking id, the fields
  filled and the conflicts kept); unmerge reads it.
- ``duplicate_candidates``: pairs of customers that look like one person, with a
  score and the reasons (``rft_refresh_duplicate_candidates``: a few index lookups
  per customer: equal E.164 phone, equal name and company, local parts of the email
  one edit apart through their deletion variants).
- ``duplicate_scan_queue``: a statement-level trigger on ``users`` queues every
  customer a statement inserts or whose name, email, phone, company, role or merge
  changes; the scheduled duplicate scan drains it (``rft_scan_queued_duplicates``).
  Writers never touch the candidates: a checkout or a backfill batch pays one small
  insert, and concurrent writers cannot deadlock on candidate rows (scoring inside
  the writers did, in the backfill's concurrency test). The scan, running after
  those commits, also sees customers that concurrent transactions created.
- ``not_duplicate_pairs``: pairs an admin dismissed; the trigger never proposes them.

Revision ID: 0009_duplicate_customers
Revises: 0008_backfill_by_customer
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP

revision: str = "0009_duplicate_customers"
down_revision: str | None = "0008_backfill_by_customer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = TIMESTAMP(timezone=True)

PHONE_FUNCTION = r"""
CREATE FUNCTION rft_phone_e164(phone text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    SELECT CASE
        WHEN s ~ '^\+440?[1-9][0-9]{8,9}$' THEN '+44' || ltrim(substr(s, 4), '0')
        WHEN s ~ '^00440?[1-9][0-9]{8,9}$' THEN '+44' || ltrim(substr(s, 5), '0')
        WHEN s ~ '^440?[1-9][0-9]{8,9}$' THEN '+44' || ltrim(substr(s, 3), '0')
        WHEN s ~ '^0[1-9][0-9]{8,9}$' THEN '+44' || substr(s, 2)
        WHEN s ~ '^[1-9][0-9]{8,9}$' THEN '+44' || s
        WHEN s ~ '^\+[1-9][0-9]{6,14}$' AND s !~ '^\+44' THEN s
        WHEN s ~ '^00[1-9][0-9]{6,14}$' AND s !~ '^0044' THEN '+' || substr(s, 3)
    END
    FROM (SELECT regexp_replace(regexp_replace(coalesce(phone, ''), '\(0\)', ''),
                                '[^0-9+]', '', 'g') AS s) AS cleaned
)
"""
"""A phone number in E.164: UK numbers (national, with or without the 0, +44, 44,
0044, +44 (0)) and numbers already international; NULL for anything else.
``tests/customers/test_phone_normalisation.py`` holds it to ``phonenumbers``."""

NAME_KEY_FUNCTION = r"""
CREATE FUNCTION rft_name_key(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(lower(regexp_replace(btrim(coalesce(name, '')), '\s+', ' ', 'g')), '')
"""

VARIANTS_FUNCTION = r"""
CREATE FUNCTION rft_deletion_variants(s text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_append(
    ARRAY(SELECT overlay(s PLACING '' FROM i FOR 1) FROM generate_series(1, length(s)) AS i), s)
"""
"""The string and every string one deletion away from it. Two strings share one of
these exactly when they are equal, one edit apart (insertion, deletion,
substitution) or one character moved (a swap such as ``gmial``): a GIN index on the
email local parts' variants finds such addresses without a scan."""

TYPO_DOMAINS = {
    "gmial.com": "gmail.com", "gmai.com": "gmail.com", "gmal.com": "gmail.com",
    "gamil.com": "gmail.com", "gnail.com": "gmail.com", "gmail.co": "gmail.com",
    "gmail.co.uk": "gmail.com", "googlemail.com": "gmail.com", "gmaill.com": "gmail.com",
    "hotmial.com": "hotmail.com", "hotmal.com": "hotmail.com", "hotmail.co": "hotmail.com",
    "hotmial.co.uk": "hotmail.co.uk", "hotmal.co.uk": "hotmail.co.uk",
    "outlok.com": "outlook.com", "outloo.com": "outlook.com", "outlook.co": "outlook.com",
    "yahooo.co.uk": "yahoo.co.uk", "yaho.co.uk": "yahoo.co.uk", "yahoo.co": "yahoo.co.uk",
    "yahooo.com": "yahoo.com", "yaho.com": "yahoo.com",
    "iclod.com": "icloud.com", "icoud.com": "icloud.com", "icloud.co": "icloud.com",
    "btinternet.co": "btinternet.com", "btinternt.com": "btinternet.com",
    "btinernet.com": "btinternet.com", "live.co": "live.co.uk", "sky.con": "sky.com",
}  # fmt: skip
"""Misspellings of the mail providers UK customers use, and what they meant."""


def _domain_function() -> str:
    cases = " ".join(f"WHEN '{typo}' THEN '{real}'" for typo, real in sorted(TYPO_DOMAINS.items()))
    return f"""
CREATE FUNCTION rft_email_domain_key(email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT CASE d {cases} ELSE d END FROM (SELECT split_part(email, '@', 2) AS d) AS x)
"""


REFRESH_CANDIDATES_FUNCTION = r"""
CREATE FUNCTION rft_refresh_duplicate_candidates(user_ids integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM duplicate_candidates
    WHERE user_id = ANY(user_ids) OR other_id = ANY(user_ids);
    INSERT INTO duplicate_candidates AS dc (user_id, other_id, score, reasons)
    SELECT pair.user_id, pair.other_id, judged.score, judged.reasons
    FROM (
        SELECT DISTINCT least(c.id, o.id) AS user_id, greatest(c.id, o.id) AS other_id
        FROM users AS c
        CROSS JOIN LATERAL (
            SELECT u.id FROM users AS u
            WHERE rft_phone_e164(u.phone) = rft_phone_e164(c.phone)
            UNION
            SELECT u.id FROM users AS u
            WHERE rft_deletion_variants(split_part(u.email_normalized, '@', 1))
                  && rft_deletion_variants(split_part(c.email_normalized, '@', 1))
            UNION
            SELECT u.id FROM users AS u
            WHERE rft_name_key(u.name) = rft_name_key(c.name)
              AND lower(btrim(u.company_name)) = lower(btrim(c.company_name))
        ) AS o
        WHERE c.id = ANY(user_ids) AND o.id <> c.id
          AND c.role = 'customer' AND c.merged_into IS NULL
    ) AS pair
    JOIN users AS a ON a.id = pair.user_id
    JOIN users AS b ON b.id = pair.other_id
    CROSS JOIN LATERAL (
        SELECT split_part(a.email_normalized, '@', 1) AS local_a,
               split_part(b.email_normalized, '@', 1) AS local_b,
               split_part(a.email_normalized, '@', 2) AS domain_a,
               split_part(b.email_normalized, '@', 2) AS domain_b,
               coalesce(rft_name_key(a.name) = rft_name_key(b.name), false) AS same_name
    ) AS e
    CROSS JOIN LATERAL (
        SELECT rft_email_domain_key(a.email_normalized) = rft_email_domain_key(b.email_normalized)
                   OR rft_deletion_variants(e.domain_a) && rft_deletion_variants(e.domain_b)
                   AS related_domains,
               e.local_a = e.local_b
                   OR (regexp_replace(e.local_a, '[^0-9]', '', 'g')
                           = regexp_replace(e.local_b, '[^0-9]', '', 'g')
                       AND rft_deletion_variants(e.local_a) && rft_deletion_variants(e.local_b))
                   AS near_local
    ) AS n
    CROSS JOIN LATERAL (
        SELECT coalesce(rft_phone_e164(a.phone) = rft_phone_e164(b.phone), false) AS same_phone,
               coalesce(e.same_name
                        AND lower(btrim(a.company_name)) = lower(btrim(b.company_name)), false)
                   AS same_name_and_company,
               e.local_a = e.local_b AND n.related_domains AS email_typo_domain,
               e.local_a <> e.local_b AND n.near_local AND n.related_domains AS email_one_edit,
               e.same_name AND n.near_local AND NOT n.related_domains
                   AS same_name_similar_email,
               e.same_name,
               NOT e.same_name
                   AND coalesce(similarity(rft_name_key(a.name), rft_name_key(b.name)), 0) >= 0.5
                   AS similar_name
    ) AS f
    CROSS JOIN LATERAL (
        SELECT array_remove(ARRAY[
                   CASE WHEN f.same_phone THEN 'same_phone' END,
                   CASE WHEN f.same_name_and_company THEN 'same_name_and_company' END,
                   CASE WHEN f.email_typo_domain THEN 'email_typo_domain' END,
                   CASE WHEN f.email_one_edit THEN 'email_one_edit' END,
                   CASE WHEN f.same_name_similar_email THEN 'same_name_similar_email' END,
                   CASE WHEN f.same_name THEN 'same_name' END,
                   CASE WHEN f.similar_name THEN 'similar_name' END], NULL) AS reasons,
               round(1 - (1 - 0.6 * f.same_phone::int) * (1 - 0.7 * f.same_name_and_company::int)
                       * (1 - 0.85 * f.email_typo_domain::int) * (1 - 0.6 * f.email_one_edit::int)
                       * (1 - 0.7 * f.same_name_similar_email::int) * (1 - 0.3 * f.same_name::int)
                       * (1 - 0.2 * f.similar_name::int), 3) AS score
    ) AS judged
    WHERE b.role = 'customer' AND b.merged_into IS NULL
      AND a.role = 'customer' AND a.merged_into IS NULL
      AND (f.same_phone OR f.same_name_and_company OR f.email_typo_domain OR f.email_one_edit
           OR f.same_name_similar_email)
      AND NOT EXISTS (SELECT 1 FROM not_duplicate_pairs AS nd
                      WHERE nd.user_id = pair.user_id AND nd.other_id = pair.other_id)
    ORDER BY pair.user_id, pair.other_id
    ON CONFLICT (user_id, other_id)
    DO UPDATE SET score = excluded.score, reasons = excluded.reasons, found_at = now();
END
$$;
"""
"""Forget the candidate pairs of ``user_ids`` and find them again (set-based)."""

QUEUE_TRIGGER_FUNCTION = """
CREATE FUNCTION rft_users_queue_duplicate_scan() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed integer[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        changed := ARRAY(SELECT id FROM new_rows WHERE role = 'customer' ORDER BY id);
    ELSE
        changed := ARRAY(
            SELECT n.id FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
            WHERE (o.name, o.email_normalized, o.phone, o.company_name, o.role, o.merged_into)
                  IS DISTINCT FROM
                  (n.name, n.email_normalized, n.phone, n.company_name, n.role, n.merged_into)
            ORDER BY n.id);
    END IF;
    -- Only a transaction holding the user's row (it inserted, updated or locked it)
    -- gets here for that user, so two never wait for each other on a queue row.
    INSERT INTO duplicate_scan_queue (user_id)
    SELECT unnest(changed) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
"""

SCAN_QUEUE_FUNCTION = """
CREATE FUNCTION rft_scan_queued_duplicates(max_users integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    taken integer[];
BEGIN
    -- Dequeued first, scored by a later statement (a later snapshot): a change
    -- committed in between is seen, and one committed after queues the user again
    -- (its insert waits for this delete). SKIP LOCKED: concurrent scans take
    -- different customers.
    WITH dequeued AS (
        DELETE FROM duplicate_scan_queue
        WHERE user_id IN (SELECT user_id FROM duplicate_scan_queue ORDER BY user_id
                          LIMIT max_users FOR UPDATE SKIP LOCKED)
        RETURNING user_id)
    SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') INTO taken FROM dequeued;
    IF cardinality(taken) > 0 THEN
        PERFORM rft_refresh_duplicate_candidates(taken);
    END IF;
    RETURN cardinality(taken);
END
$$;
"""
"""Find the candidates of up to ``max_users`` queued customers; how many it took."""

CANDIDATE_TRIGGERS = {
    "rft_users_duplicates_insert": "AFTER INSERT ON users REFERENCING NEW TABLE AS new_rows",
    "rft_users_duplicates_update": (
        "AFTER UPDATE ON users REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
}

USER_INDEXES = {
    "ix_users_phone_e164": "(rft_phone_e164(phone)) WHERE rft_phone_e164(phone) IS NOT NULL",
    # fastupdate off: every checkout probes this index, and a pending list (scanned
    # whole by each probe until vacuum merges it) made a probe 100 times slower.
    "ix_users_email_local_variants": (
        "USING gin (rft_deletion_variants(split_part(email_normalized, '@', 1))) "
        "WITH (fastupdate = off)"
    ),
    "ix_users_name_company": (
        "(rft_name_key(name), lower(btrim(company_name))) WHERE company_name IS NOT NULL"
    ),
    "ix_users_merged_into": "(merged_into) WHERE merged_into IS NOT NULL",
}


def _user_reference(table: str, column: str) -> sa.Column:
    foreign_key = sa.ForeignKey("users.id", name=f"fk_{table}_{column}_users")
    return sa.Column(column, sa.Integer, foreign_key, nullable=False)


def _pair_columns(table: str) -> list[sa.Column]:
    return [_user_reference(table, "user_id"), _user_reference(table, "other_id")]


def upgrade() -> None:
    op.add_column("users", sa.Column("merged_into", sa.Integer))
    op.create_foreign_key("fk_users_merged_into_users", "users", "users", ["merged_into"], ["id"])
    op.create_check_constraint("ck_users_not_merged_into_self", "users", "merged_into <> id")
    op.create_table(
        "user_email_aliases",
        sa.Column("email", sa.Text, nullable=False),
        _user_reference("user_email_aliases", "user_id"),
        _user_reference("user_email_aliases", "merged_user_id"),
        sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("email", name="pk_user_email_aliases"),
        sa.UniqueConstraint("merged_user_id", name="uq_user_email_aliases_merged_user_id"),
    )
    op.create_index("ix_user_email_aliases_user_id", "user_email_aliases", ["user_id"])
    op.create_table(
        "user_merges",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        _user_reference("user_merges", "survivor_id"),
        _user_reference("user_merges", "duplicate_id"),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("actor_id", sa.Integer),
        sa.Column("merged_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.Column("moved_booking_ids", ARRAY(sa.Integer), nullable=False),
        sa.Column("filled", JSONB, nullable=False),
        sa.Column("conflicts", JSONB, nullable=False),
        sa.Column("unmerged_at", Timestamp),
        sa.Column("unmerged_by", sa.String(255)),
        sa.Column("unmerged_by_id", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_user_merges"),
    )
    op.create_index("ix_user_merges_survivor_id", "user_merges", ["survivor_id"])
    op.create_index("ix_user_merges_duplicate_id", "user_merges", ["duplicate_id"])
    op.create_table(
        "not_duplicate_pairs",
        *_pair_columns("not_duplicate_pairs"),
        sa.Column("marked_by", sa.String(255), nullable=False),
        sa.Column("marked_by_id", sa.Integer),
        sa.Column("marked_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("user_id", "other_id", name="pk_not_duplicate_pairs"),
        sa.CheckConstraint("user_id < other_id", name="ck_not_duplicate_pairs_ordered"),
    )
    op.create_table(
        "duplicate_candidates",
        *_pair_columns("duplicate_candidates"),
        sa.Column("score", sa.Numeric(4, 3), nullable=False),
        sa.Column("reasons", ARRAY(sa.Text), nullable=False),
        sa.Column("found_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("user_id", "other_id", name="pk_duplicate_candidates"),
        sa.CheckConstraint("user_id < other_id", name="ck_duplicate_candidates_ordered"),
    )
    op.create_table(
        "duplicate_scan_queue",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("queued_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("user_id", name="pk_duplicate_scan_queue"),
    )
    op.execute(
        "CREATE INDEX ix_duplicate_candidates_score ON duplicate_candidates "
        "(score DESC, user_id, other_id)"
    )
    op.create_index("ix_duplicate_candidates_other_id", "duplicate_candidates", ["other_id"])
    for function in (
        PHONE_FUNCTION,
        NAME_KEY_FUNCTION,
        VARIANTS_FUNCTION,
        _domain_function(),
        REFRESH_CANDIDATES_FUNCTION,
        QUEUE_TRIGGER_FUNCTION,
        SCAN_QUEUE_FUNCTION,
    ):
        op.execute(function)
    for name, definition in USER_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON users {definition}")
    for name, timing in CANDIDATE_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {timing} "
            "FOR EACH STATEMENT EXECUTE FUNCTION rft_users_queue_duplicate_scan()"
        )
    op.execute(
        "INSERT INTO duplicate_scan_queue (user_id) SELECT id FROM users WHERE role = 'customer'"
    )


def downgrade() -> None:
    """Merged rows stay (their bookings stay with the survivor) and count again."""
    op.execute(
        "SELECT rft_apply_user_counts(ARRAY("
        "SELECT ROW(role, coalesce(customer_type, ''), total_bookings > 0, 0, 1)::user_counts "
        "FROM users WHERE merged_into IS NOT NULL))"
    )
    for name in CANDIDATE_TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON users")
    for name in reversed(USER_INDEXES):
        op.execute(f"DROP INDEX {name}")
    op.execute("DROP FUNCTION rft_users_queue_duplicate_scan()")
    op.execute("DROP FUNCTION rft_scan_queued_duplicates(integer)")
    op.execute("DROP FUNCTION rft_refresh_duplicate_candidates(integer[])")
    op.execute("DROP FUNCTION rft_email_domain_key(text)")
    op.execute("DROP FUNCTION rft_deletion_variants(text)")
    op.execute("DROP FUNCTION rft_name_key(text)")
    op.execute("DROP FUNCTION rft_phone_e164(text)")
    for table in (
        "duplicate_scan_queue",
        "duplicate_candidates",
        "not_duplicate_pairs",
        "user_merges",
    ):
        op.drop_table(table)
    op.drop_table("user_email_aliases")
    op.drop_constraint("ck_users_not_merged_into_self", "users", type_="check")
    op.drop_constraint("fk_users_merged_into_users", "users", type_="foreignkey")
    op.drop_column("users", "merged_into")
