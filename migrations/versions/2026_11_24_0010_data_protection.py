"""Data protection: erasure that keeps the money, its suppression list, renewals.

- ``users.erased_at``: when the person was erased (README "Data protection"). The row
  stays, with its id and statistics, so bookings keep their customer and revenue per
  customer stays exact; its personal fields are cleared.
- ``user_audit_log.action`` and ``reason``: the log also records data exports and
  erasures (``edit`` for the existing profile edits), and why an erasure was done.
- ``erasure_suppressions``: salted SHA-256 hashes of erased normalised emails. The
  backfill never links (or creates a customer from) a booking made before the
  erasure whose email hashes to one of them. ``rft_suppression_hash(email)`` is the
  one definition of the hash, used by the erasure, the backfill and retention alike.
- ``erasure_suppression_salt``: one random salt, made here, so a hash on the list
  cannot be looked up in a table of precomputed hashes of known addresses.
- ``backfill_unlinkable.reason`` gains ``erased``.
- ``ix_course_schedules_end_datetime``: the renewals list finds the sessions whose
  certificates expire in its window by their end.

Revision ID: 0010_data_protection
Revises: 0009_duplicate_customers
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, TIMESTAMP

revision: str = "0010_data_protection"
down_revision: str | None = "0009_duplicate_customers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = TIMESTAMP(timezone=True)

SUPPRESSION_HASH_FUNCTION = """
CREATE FUNCTION rft_suppression_hash(normalized_email text) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (SELECT sha256(salt || convert_to(normalized_email, 'UTF8'))
        FROM erasure_suppression_salt)
"""


def upgrade() -> None:
    op.add_column("users", sa.Column("erased_at", Timestamp))
    op.add_column(
        "user_audit_log",
        sa.Column("action", sa.String(30), nullable=False, server_default="edit"),
    )
    op.add_column("user_audit_log", sa.Column("reason", sa.Text))
    op.create_table(
        "erasure_suppression_salt",
        sa.Column("id", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("salt", BYTEA, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erasure_suppression_salt"),
        sa.CheckConstraint("id", name="ck_erasure_suppression_salt_one_row"),
    )
    op.execute(
        "INSERT INTO erasure_suppression_salt (salt) VALUES (sha256(convert_to("
        "gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, "
        "'UTF8')))"
    )
    op.create_table(
        "erasure_suppressions",
        sa.Column("email_hash", BYTEA, nullable=False),
        sa.Column("erased_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("email_hash", name="pk_erasure_suppressions"),
    )
    op.execute(SUPPRESSION_HASH_FUNCTION)
    op.drop_constraint("ck_backfill_unlinkable_reason", "backfill_unlinkable", type_="check")
    op.create_check_constraint(
        "ck_backfill_unlinkable_reason",
        "backfill_unlinkable",
        "reason IN ('missing_email', 'malformed_email', 'erased')",
    )
    op.create_index("ix_course_schedules_end_datetime", "course_schedules", ["end_datetime"])


def downgrade() -> None:
    op.drop_index("ix_course_schedules_end_datetime", table_name="course_schedules")
    op.execute("DELETE FROM backfill_unlinkable WHERE reason = 'erased'")
    op.drop_constraint("ck_backfill_unlinkable_reason", "backfill_unlinkable", type_="check")
    op.create_check_constraint(
        "ck_backfill_unlinkable_reason",
        "backfill_unlinkable",
        "reason IN ('missing_email', 'malformed_email')",
    )
    op.execute("DROP FUNCTION rft_suppression_hash(text)")
    op.drop_table("erasure_suppressions")
    op.drop_table("erasure_suppression_salt")
    op.drop_column("user_audit_log", "reason")
    op.drop_column("user_audit_log", "action")
    op.drop_column("users", "erased_at")
