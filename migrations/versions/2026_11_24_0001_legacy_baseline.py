"""Legacy baseline: the live system's schema as it is before the customer system.

A production database already has these tables: adopt it with
``alembic stamp 0001_legacy_baseline`` instead of upgrading through this revision.
On a fresh database this creates them. Alembic does not own the live tables, so
downgrading past this revision leaves them (and every row in them) in place.

Revision ID: 0001_legacy_baseline
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision: str = "0001_legacy_baseline"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = TIMESTAMP(timezone=True)


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", Timestamp, nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "users" not in existing:
        op.create_table(
            "users",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("email", sa.String(255), nullable=False),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("password_hash", sa.String(255), nullable=False),
            sa.Column("role", sa.String(20), nullable=False),
            sa.UniqueConstraint("email", name="users_email_key"),
            *_timestamps(),
        )
    if "courses" not in existing:
        op.create_table(
            "courses",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("category", sa.String(100)),
            sa.Column("duration", sa.String(50)),
            sa.Column("price", sa.Numeric(10, 2), nullable=False),
            *_timestamps(),
        )
    if "course_schedules" not in existing:
        op.create_table(
            "course_schedules",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("course_id", sa.Integer, sa.ForeignKey("courses.id"), nullable=False),
            sa.Column("start_datetime", Timestamp, nullable=False),
            sa.Column("end_datetime", Timestamp, nullable=False),
            sa.Column("venue", sa.String(255), nullable=False),
            sa.Column("price", sa.Numeric(10, 2)),
            sa.Column("max_capacity", sa.Integer, nullable=False, server_default="12"),
            sa.Column("current_capacity", sa.Integer, nullable=False, server_default="0"),
            sa.Column("status", sa.String(20), nullable=False, server_default="published"),
            sa.CheckConstraint("status IN ('published', 'full', 'cancelled')", name="status"),
            *_timestamps(),
        )
    if "bookings" not in existing:
        op.create_table(
            "bookings",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("booking_reference", sa.String(50), nullable=False),
            sa.UniqueConstraint("booking_reference", name="bookings_booking_reference_key"),
            sa.Column(
                "course_schedule_id",
                sa.Integer,
                sa.ForeignKey("course_schedules.id"),
                nullable=False,
            ),
            sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),
            sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
            sa.Column("payment_status", sa.String(20), nullable=False, server_default="pending"),
            sa.Column("payment_amount", sa.Numeric(10, 2), nullable=False),
            sa.Column("payment_method", sa.String(50)),
            sa.Column("stripe_payment_intent_id", sa.String(255)),
            sa.Column("number_of_attendees", sa.Integer, nullable=False, server_default="1"),
            sa.Column("contact_details", sa.JSON, nullable=False),
            sa.CheckConstraint(
                "status IN ('pending', 'confirmed', 'cancelled', 'completed', 'no_show')",
                name="status",
            ),
            sa.CheckConstraint(
                "payment_status IN ('pending', 'paid', 'refunded', 'failed')",
                name="payment_status",
            ),
            sa.CheckConstraint("number_of_attendees BETWEEN 1 AND 12", name="number_of_attendees"),
            *_timestamps(),
        )
    if "payments" not in existing:
        op.create_table(
            "payments",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("booking_id", sa.Integer, sa.ForeignKey("bookings.id"), nullable=False),
            sa.Column("amount", sa.Numeric(10, 2), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("stripe_payment_intent_id", sa.String(255)),
            sa.Column("stripe_charge_id", sa.String(255)),
            sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
        )


def downgrade() -> None:
    """Leave the live tables alone: they belong to the legacy system, not to alembic."""
