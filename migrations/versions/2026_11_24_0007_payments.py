"""Payments: checkout intents, Stripe events, one booking per intent (issue 11).

- ``payment_checkouts``: the PaymentIntent made for each checkout (keyed by a hash of
  session, normalised email, participants and amount; no contact details), so the
  booking site's repeated calls get the same intent back.
- ``stripe_events``: webhook events already processed (their ids), with what each did.
- ``bookings.payment_verified_at``: when this system confirmed the booking's payment
  with Stripe. ``bookings.unplaced_reason``: a paid booking that got no seat, for staff.
- **One booking per PaymentIntent.** ``uq_bookings_stripe_payment_intent_id_verified``
  is a unique index on ``stripe_payment_intent_id`` *where ``payment_verified_at`` is
  set*. Every booking this system creates with an intent sets it (the booking path
  and the webhook only store an intent Stripe confirmed), so every one of them is
  covered. Legacy rows never have it, so duplicates the legacy app stored (it
  trusted the browser's ``paymentIntentId``) cannot make the migration fail; the
  upgrade lists them (``intent: booking ids``) for someone to look at, and changes
  none. The booking path also refuses an intent any legacy booking holds, through
  the plain index ``ix_bookings_stripe_payment_intent_id``.
- ``ix_bookings_unplaced_created_at``: the staff list of unplaced paid bookings.

Additive only. Both new ``bookings`` columns are nullable without a default, so adding
them rewrites nothing; building the two intent indexes reads ``bookings`` once each
and blocks its writes meanwhile (about a second per million rows).

Revision ID: 0007_payments
Revises: 0006_admin_sign_in
Create Date: 2026-11-24
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision: str = "0007_payments"
down_revision: str | None = "0006_admin_sign_in"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
Timestamp = TIMESTAMP(timezone=True)
UNPLACED_REASONS = ("session_full", "already_booked", "session_cancelled")

DUPLICATE_INTENTS = sa.text("""
    SELECT stripe_payment_intent_id AS intent, array_agg(id ORDER BY id) AS booking_ids
    FROM bookings WHERE stripe_payment_intent_id IS NOT NULL
    GROUP BY stripe_payment_intent_id HAVING count(*) > 1
    ORDER BY min(id)
""")


def _report_duplicate_intents() -> None:
    """Log each intent several legacy bookings hold, with their ids; change none of them."""
    duplicates = op.get_bind().execute(DUPLICATE_INTENTS).all()
    if duplicates:
        log.warning(
            "%d payment intents are held by several legacy bookings (left as they are; "
            "the unique index covers verified bookings only)",
            len(duplicates),
        )
    for row in duplicates:
        log.warning("  %s: bookings %s", row.intent, ", ".join(map(str, row.booking_ids)))


def upgrade() -> None:
    _report_duplicate_intents()
    op.add_column("bookings", sa.Column("payment_verified_at", Timestamp))
    op.add_column("bookings", sa.Column("unplaced_reason", sa.String(30)))
    reasons = ", ".join(f"'{reason}'" for reason in UNPLACED_REASONS)
    op.create_check_constraint(
        "ck_bookings_unplaced_reason",
        "bookings",
        f"unplaced_reason IS NULL OR unplaced_reason IN ({reasons})",
    )
    op.create_index(
        "ix_bookings_stripe_payment_intent_id", "bookings", ["stripe_payment_intent_id"]
    )
    op.create_index(
        "uq_bookings_stripe_payment_intent_id_verified",
        "bookings",
        ["stripe_payment_intent_id"],
        unique=True,
        postgresql_where=sa.text("payment_verified_at IS NOT NULL"),
    )
    op.create_index(
        "ix_bookings_unplaced_created_at",
        "bookings",
        ["created_at"],
        postgresql_where=sa.text("unplaced_reason IS NOT NULL"),
    )
    op.create_table(
        "payment_checkouts",
        sa.Column("checkout_key", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("payment_intent_id", sa.String(255), nullable=False),
        sa.Column(
            "course_schedule_id",
            sa.Integer,
            sa.ForeignKey(
                "course_schedules.id",
                name="fk_payment_checkouts_course_schedule_id_course_schedules",
            ),
            nullable=False,
        ),
        sa.Column("number_of_attendees", sa.Integer, nullable=False),
        sa.Column("amount_pence", sa.Integer, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("checkout_key", "generation", name="pk_payment_checkouts"),
        sa.UniqueConstraint("payment_intent_id", name="uq_payment_checkouts_payment_intent_id"),
    )
    op.create_index(
        "ix_payment_checkouts_course_schedule_id", "payment_checkouts", ["course_schedule_id"]
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("payment_intent_id", sa.String(255)),
        sa.Column(
            "booking_id",
            sa.Integer,
            sa.ForeignKey("bookings.id", name="fk_stripe_events_booking_id_bookings"),
        ),
        sa.Column("outcome", sa.String(30), nullable=False),
        sa.Column("received_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_stripe_events"),
    )
    op.create_index("ix_stripe_events_payment_intent_id", "stripe_events", ["payment_intent_id"])


def downgrade() -> None:
    op.drop_table("stripe_events")
    op.drop_table("payment_checkouts")
    op.drop_index("ix_bookings_unplaced_created_at", table_name="bookings")
    op.drop_index("uq_bookings_stripe_payment_intent_id_verified", table_name="bookings")
    op.drop_index("ix_bookings_stripe_payment_intent_id", table_name="bookings")
    op.drop_constraint("ck_bookings_unplaced_reason", "bookings", type_="check")
    op.drop_column("bookings", "unplaced_reason")
    op.drop_column("bookings", "payment_verified_at")
