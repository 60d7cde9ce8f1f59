"""Typed table definitions: the legacy schema plus what the customer system adds.

The migrations in ``migrations/versions`` create exactly this; ``alembic check``
in the test run proves the two agree. Triggers and SQL functions live only in the
migrations (alembic does not compare them).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Computed,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = TIMESTAMP(timezone=True)
Money = Numeric(12, 2)

USER_ROLES = ("customer", "admin", "instructor")
CUSTOMER_TYPES = ("individual", "corporate")
BOOKING_STATUSES = ("pending", "confirmed", "cancelled", "completed", "no_show")
PAYMENT_STATUSES = ("pending", "paid", "refunded", "failed")
SESSION_STATUSES = ("published", "full", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """Staff logins (legacy) and, since the customer system, customers too."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("email", name="users_email_key"),
        CheckConstraint(_in("role", USER_ROLES), name="role"),
        CheckConstraint(
            f"customer_type IS NULL OR {_in('customer_type', CUSTOMER_TYPES)}",
            name="customer_type",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255))
    email_normalized: Mapped[str] = mapped_column(
        Text, Computed("lower(btrim(email))", persisted=True), unique=True
    )
    name: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(50))
    company_name: Mapped[str | None] = mapped_column(String(255))
    customer_type: Mapped[str | None] = mapped_column(String(20))
    address_line1: Mapped[str | None] = mapped_column(String(255))
    address_line2: Mapped[str | None] = mapped_column(String(255))
    city: Mapped[str | None] = mapped_column(String(100))
    postcode: Mapped[str | None] = mapped_column(String(20))
    marketing_consent: Mapped[bool] = mapped_column(server_default=text("false"))
    newsletter_subscribed: Mapped[bool] = mapped_column(server_default=text("false"))
    notes: Mapped[str | None] = mapped_column(Text)
    total_bookings: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    total_spent: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    first_booking_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_booking_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    category: Mapped[str | None] = mapped_column(String(100))
    duration: Mapped[str | None] = mapped_column(String(50))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class CourseSchedule(Base):
    """A scheduled session of a course; ``current_capacity`` is seats taken."""

    __tablename__ = "course_schedules"
    __table_args__ = (CheckConstraint(_in("status", SESSION_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    start_datetime: Mapped[datetime] = mapped_column(Timestamp)
    end_datetime: Mapped[datetime] = mapped_column(Timestamp)
    venue: Mapped[str] = mapped_column(String(255))
    price: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    max_capacity: Mapped[int] = mapped_column(Integer, server_default=text("12"))
    current_capacity: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(20), server_default=text("'published'"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("booking_reference", name="bookings_booking_reference_key"),
        CheckConstraint(_in("status", BOOKING_STATUSES), name="status"),
        CheckConstraint(_in("payment_status", PAYMENT_STATUSES), name="payment_status"),
        CheckConstraint("number_of_attendees BETWEEN 1 AND 12", name="number_of_attendees"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    booking_reference: Mapped[str] = mapped_column(String(50))
    course_schedule_id: Mapped[int] = mapped_column(ForeignKey("course_schedules.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20), server_default=text("'pending'"))
    payment_status: Mapped[str] = mapped_column(String(20), server_default=text("'pending'"))
    payment_amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    payment_method: Mapped[str | None] = mapped_column(String(50))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    number_of_attendees: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    contact_details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    status: Mapped[str] = mapped_column(String(20))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` and the response it got, stored with the booking.

    Rows are claimed before the work starts, inside the booking's transaction, so a
    concurrent retry with the same key waits and then replays the stored response.
    """

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), index=True)


Index("ix_bookings_user_id_created_at", Booking.user_id, Booking.created_at)


class UserAuditLog(Base):
    """Who changed which profile fields of a user, and from what to what.

    ``changes`` is ``{field: {"old": ..., "new": ...}}``. Audit rows may hold PII;
    logs never do.
    """

    __tablename__ = "user_audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(255))
    changed_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)


Index("ix_user_audit_log_user_id_changed_at", UserAuditLog.user_id, UserAuditLog.changed_at)


BACKFILL_BATCH_STATUSES = ("queued", "done")
UNLINKABLE_REASONS = ("missing_email", "malformed_email")


class BackfillBatch(Base):
    """One backfill message: a range of booking ids, and what processing it did.

    ``queued`` from enqueue until a worker commits the batch (``done``); the counters
    add up every committed run, so a redelivered batch adds zeros.
    """

    __tablename__ = "backfill_batches"
    __table_args__ = (
        CheckConstraint(_in("status", BACKFILL_BATCH_STATUSES), name="status"),
        CheckConstraint("first_booking_id <= last_booking_id", name="range"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_booking_id: Mapped[int] = mapped_column(Integer)
    last_booking_id: Mapped[int] = mapped_column(Integer)
    planned_bookings: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), server_default=text("'queued'"))
    enqueued_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(Timestamp, index=True)
    runs: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    bookings_linked: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    customers_created: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    unlinkable: Mapped[int] = mapped_column(Integer, server_default=text("0"))


Index(
    "ix_backfill_batches_status_first_booking_id",
    BackfillBatch.status,
    BackfillBatch.first_booking_id,
)


class BackfillUnlinkable(Base):
    """A booking the backfill cannot link, recorded once with the reason."""

    __tablename__ = "backfill_unlinkable"
    __table_args__ = (CheckConstraint(_in("reason", UNLINKABLE_REASONS), name="reason"),)

    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), primary_key=True
    )
    reason: Mapped[str] = mapped_column(String(20))
    batch_id: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


Index("ix_bookings_id_unlinked", Booking.id, postgresql_where=Booking.user_id.is_(None))


# --- admin users list: the expressions it filters and sorts by, and their indexes ----

USER_SEARCH_DOCUMENT = func.rft_user_search_document(
    User.name, User.email_normalized, User.phone, User.company_name
)
"""Name, normalised email, phone digits and company in one string (migration 0004)."""
USER_NAME_SORT_KEY = func.lower(func.coalesce(User.name, literal_column("''")))
USER_LAST_BOOKING_SORT_KEY = func.coalesce(
    User.last_booking_at, literal_column("'-infinity'::timestamptz")
)

Index(
    "ix_users_search_trgm",
    USER_SEARCH_DOCUMENT.label("search_document"),
    postgresql_using="gin",
    postgresql_ops={"search_document": "gin_trgm_ops"},
)
Index("ix_users_created_at_id", User.created_at, User.id)
Index("ix_users_name_sort", USER_NAME_SORT_KEY, User.id)
Index("ix_users_last_booking_sort", USER_LAST_BOOKING_SORT_KEY, User.id)
Index("ix_users_total_bookings_id", User.total_bookings, User.id)
Index("ix_users_total_spent_id", User.total_spent, User.id)
Index("ix_users_role_created_at_id", User.role, User.created_at, User.id)


class UserCount(Base):
    """How many users have this role, customer type (``''`` for none) and has-bookings:
    the sum of ``total`` over the key's shards.

    Kept exact by a statement-level trigger on ``users`` (migration 0004), so the
    admin list's total needs no count over the whole table. Shards keep concurrent
    writers from queueing on one counter row.
    """

    __tablename__ = "user_counts"

    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    customer_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    has_bookings: Mapped[bool] = mapped_column(primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger)
