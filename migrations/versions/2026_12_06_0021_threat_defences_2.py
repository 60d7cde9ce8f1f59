"""Failed staff sign-ins are counted per client; one email form in SQL as in Python.

Issue 23, outcomes 8 and 6:

- ``admin_login_failures.client_key`` is a keyed fingerprint of the address the attempt
  came from (``rft_common.aws.fingerprints``; no address is stored). Five failures from
  one client refuse that client for the account; a hundred from all clients together
  refuse everyone (the slow ceiling on distributed guessing). Rows from before have
  ``''``: they count towards the ceiling only.
- ``rft_backfill_email_key(raw_email)`` hashes the email in the identity's form
  (``rft_common.core.emails.canonical_email``: trimmed, NFD, lower-cased, NFC), so an
  address with its accents composed and one with them decomposed have one key, and
  the backfill meets all of a customer's bookings in one batch. Its index is rebuilt.
  No stored email changes: every writer of ``users.email`` already wrote this form.

Revision ID: 0021_threat_defences_2
Revises: 0020_renewal_reminders
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_threat_defences_2"
down_revision: str | None = "0020_renewal_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The whitespace ``rft_common.core.emails.EMAIL_WHITESPACE`` trims: space, \t \n \r \f \v, NBSP.
EMAIL_KEY_FUNCTION = r"""
CREATE OR REPLACE FUNCTION rft_backfill_email_key(raw_email text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ('x' || left(md5({email}), 8))::bit(32)::integer
"""
WHITESPACE = r"E' \t\n\r\f\u000b\u00a0'"
CANONICAL_EMAIL = (
    f"normalize(lower(normalize(btrim(coalesce(raw_email, ''), {WHITESPACE}), NFD)), NFC)"
)
PREVIOUS_EMAIL = f"lower(btrim(coalesce(raw_email, ''), {WHITESPACE}))"
EMAIL_KEY_INDEX = "ix_bookings_unlinked_email_key"


def upgrade() -> None:
    op.add_column(
        "admin_login_failures",
        sa.Column("client_key", sa.Text, nullable=False, server_default=""),
    )
    op.execute(EMAIL_KEY_FUNCTION.format(email=CANONICAL_EMAIL))
    op.execute(f"REINDEX INDEX {EMAIL_KEY_INDEX}")


def downgrade() -> None:
    op.execute(EMAIL_KEY_FUNCTION.format(email=PREVIOUS_EMAIL))
    op.execute(f"REINDEX INDEX {EMAIL_KEY_INDEX}")
    op.drop_column("admin_login_failures", "client_key")
