"""Email: the outbox, the suppression list, staff password resets and their rate limits.

- ``email_outbox``: one row per message, written in the transaction of the event that
  causes it (a paid booking, a password change). Unique on (kind, dedupe key), so the
  same event enqueued twice (the browser and Stripe's webhook, a redelivery) is one
  message. The email sender claims pending rows whose ``next_attempt_at`` has come
  (``FOR UPDATE SKIP LOCKED``), pushes that time on by a lease, sends, and marks them
  sent, retries them later, or gives up (``dead``). A partial index holds only the
  pending rows, so the sender's scan stays small however many were sent.
- ``email_suppressions``: addresses SES reported as bouncing permanently or
  complaining; nothing is sent to them (the message is marked ``suppressed``).
- ``staff_password_resets``: forgot-password tokens by SHA-256, single use, 30 minutes.
- ``staff_password_reset_requests``: forgot-password requests per email and per client,
  for the rate limits (kept an hour).

Revision ID: 0014_email_outbox
Revises: 0013_session_seats
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, TIMESTAMP

revision: str = "0014_email_outbox"
down_revision: str | None = "0013_session_seats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    timestamp = TIMESTAMP(timezone=True)
    op.create_table(
        "email_outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("dedupe_key", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("payload", JSONB),
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'pending'")),
        sa.Column("attempts", sa.SmallInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", timestamp, nullable=False, server_default=sa.func.now()),
        sa.Column("last_error", sa.Text),
        sa.Column("ses_message_id", sa.Text),
        sa.Column("created_at", timestamp, nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", timestamp),
        sa.UniqueConstraint("kind", "dedupe_key", name="uq_email_outbox_kind_dedupe_key"),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'dead', 'suppressed')", name="ck_email_outbox_status"
        ),
    )
    op.create_index(
        "ix_email_outbox_next_attempt_at",
        "email_outbox",
        ["next_attempt_at", "id"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "email_suppressions",
        sa.Column("email_normalized", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("suppressed_at", timestamp, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "reason IN ('bounce', 'complaint')", name="ck_email_suppressions_reason"
        ),
    )
    op.create_table(
        "staff_password_resets",
        sa.Column("token_hash", BYTEA, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey(
                "users.id",
                ondelete="CASCADE",
                name="fk_staff_password_resets_user_id_users",
            ),
            nullable=False,
        ),
        sa.Column("expires_at", timestamp, nullable=False),
        sa.Column("used_at", timestamp),
    )
    op.create_index("ix_staff_password_resets_user_id", "staff_password_resets", ["user_id"])
    op.create_index("ix_staff_password_resets_expires_at", "staff_password_resets", ["expires_at"])
    op.create_table(
        "staff_password_reset_requests",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("limit_key", sa.Text, nullable=False),
        sa.Column("requested_at", timestamp, nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "ix_staff_password_reset_requests_requested_at",
        "staff_password_reset_requests",
        ["requested_at"],
    )
    op.create_index(
        "ix_staff_password_reset_requests_limit_key_requested_at",
        "staff_password_reset_requests",
        ["limit_key", "requested_at"],
    )


def downgrade() -> None:
    op.drop_table("staff_password_reset_requests")
    op.drop_table("staff_password_resets")
    op.drop_table("email_suppressions")
    op.drop_table("email_outbox")
