"""Staff sign-in: account state, token versions, failed logins, revoked refresh tokens.

- ``users.is_active``: staff can be deactivated (a deactivated account cannot sign
  in: 403); customers stay active. ``users.last_login_at``: the latest sign-in.
  ``users.county``: the address field the admin detail page shows.
- ``users.token_version``: every refresh token carries the version it was issued
  under, and a refresh is refused once the version moved on. A row trigger moves it
  whenever the password hash, the role or the active state changes, whoever writes
  the row (this API, ``rft staff create`` or the legacy app's plain SQL), so every
  token of that user stops working at their next refresh.
- ``admin_login_failures``: one row per failed (or still running) sign-in attempt
  per normalised email. Five within 15 minutes refuse further attempts (429). Rows
  live in the database, not in a Lambda's memory, so the limit holds across every
  concurrent execution environment.
- ``admin_revoked_refresh_tokens``: the ``jti`` of each refresh token signed out
  (logout), kept until the token would have expired anyway.
- ``user_audit_log.actor_id``: the signed-in admin's user id (``actor`` holds their
  email); older rows, written with the token's ``sub``, have none.

Revision ID: 0006_admin_sign_in
Revises: 0005_backfill
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision: str = "0006_admin_sign_in"
down_revision: str | None = "0005_backfill"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVOKE_TOKENS_FUNCTION = """
CREATE FUNCTION rft_users_revoke_tokens() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.token_version := OLD.token_version + 1;
    RETURN NEW;
END
$$
"""
REVOKE_TOKENS_TRIGGER = """
CREATE TRIGGER users_revoke_tokens
BEFORE UPDATE OF password_hash, role, is_active ON users
FOR EACH ROW
WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash
      OR OLD.role IS DISTINCT FROM NEW.role
      OR OLD.is_active IS DISTINCT FROM NEW.is_active)
EXECUTE FUNCTION rft_users_revoke_tokens()
"""


def upgrade() -> None:
    timestamp = TIMESTAMP(timezone=True)
    # Constant defaults: PostgreSQL adds these columns without rewriting the table.
    op.add_column(
        "users", sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true())
    )
    op.add_column(
        "users", sa.Column("token_version", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column("users", sa.Column("last_login_at", timestamp))
    op.add_column("users", sa.Column("county", sa.String(100)))
    op.add_column("user_audit_log", sa.Column("actor_id", sa.Integer))
    op.execute(REVOKE_TOKENS_FUNCTION)
    op.execute(REVOKE_TOKENS_TRIGGER)

    op.create_table(
        "admin_login_failures",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("email_normalized", sa.Text, nullable=False),
        sa.Column("attempted_at", timestamp, nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "ix_admin_login_failures_email_normalized_attempted_at",
        "admin_login_failures",
        ["email_normalized", "attempted_at"],
    )
    op.create_index(
        "ix_admin_login_failures_attempted_at", "admin_login_failures", ["attempted_at"]
    )
    op.create_table(
        "admin_revoked_refresh_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("expires_at", timestamp, nullable=False),
    )
    op.create_index(
        "ix_admin_revoked_refresh_tokens_expires_at",
        "admin_revoked_refresh_tokens",
        ["expires_at"],
    )


def downgrade() -> None:
    op.drop_table("admin_revoked_refresh_tokens")
    op.drop_table("admin_login_failures")
    op.execute("DROP TRIGGER users_revoke_tokens ON users")
    op.execute("DROP FUNCTION rft_users_revoke_tokens()")
    op.drop_column("user_audit_log", "actor_id")
    for column in ("county", "last_login_at", "token_version", "is_active"):
        op.drop_column("users", column)
