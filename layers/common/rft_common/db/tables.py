"""Table definitions: the legacy schema plus what the customer system adds.

The migrations in ``migrations/versions`` create exactly this; ``alembic check``
in the test run proves the two agree. Triggers and SQL functions live only in the
migrations (alembic does not compare them).

SQLAlchemy Core ``Table`` objects, not ORM classes: the request path builds Core
statements only, and importing ``sqlalchemy.orm`` would cost every cold start.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB, TIMESTAMP
from sqlalchemy.engine import URL

from rft_common.core.vocabulary import (
    CONSENT_BASES,
    CONSENT_PURPOSES,
    CONSENT_SOURCES,
    REMINDER_SKIP_REASONS,
)
from rft_common.db import postgres

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

Timestamp = TIMESTAMP(timezone=True)
Money = Numeric(12, 2)

USER_ROLES = ("customer", "admin", "instructor")
CUSTOMER_TYPES = ("individual", "corporate")
DETAILS_SOURCES = ("unpaid_booking", "paid_booking", "admin")
BOOKING_STATUSES = ("pending", "confirmed", "cancelled", "completed", "no_show")
PAYMENT_STATUSES = ("pending", "paid", "refunded", "failed")
SESSION_STATUSES = ("published", "full", "cancelled")
UNPLACED_REASONS = ("session_full", "already_booked", "session_cancelled")
COURSE_TYPES = (
    "EFAW",
    "FAW",
    "PAEDIATRIC",
    "EMERGENCY_PAEDIATRIC",
    "ACTIVITY_FIRST_AID",
    "CPR_AED",
    "ANNUAL_SKILLS_REFRESHER",
    "OXYGEN_THERAPY",
)
"""The booking site's course codes (``src/config/courseTypes.config.ts``): any other
crashes its calendar."""


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _created_at(**options: object) -> Column:
    return Column("created_at", Timestamp, nullable=False, server_default=func.now(), **options)


def _updated_at() -> Column:
    return Column("updated_at", Timestamp, nullable=False, server_default=func.now())


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(255), nullable=False),
    Column(
        "email_normalized",
        Text,
        Computed("lower(btrim(email))", persisted=True),
        nullable=False,
        unique=True,
    ),
    Column("name", String(255)),
    Column("password_hash", String(255)),
    Column("role", String(20), nullable=False),
    Column("phone", String(50)),
    Column("company_name", String(255)),
    Column("customer_type", String(20)),
    Column("address_line1", String(255)),
    Column("address_line2", String(255)),
    Column("city", String(100)),
    Column("postcode", String(20)),
    Column("county", String(100)),
    Column("marketing_consent", Boolean, nullable=False, server_default=text("false")),
    Column("newsletter_subscribed", Boolean, nullable=False, server_default=text("false")),
    Column("notes", Text),
    Column("total_bookings", Integer, nullable=False, server_default=text("0")),
    Column("total_spent", Money, nullable=False, server_default=text("0")),
    Column("first_booking_at", Timestamp),
    Column("last_booking_at", Timestamp),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("token_version", Integer, nullable=False, server_default=text("0")),
    Column("last_login_at", Timestamp),
    _created_at(),
    _updated_at(),
    Column("erased_at", Timestamp),
    Column("merged_into", Integer, ForeignKey("users.id")),
    Column("details_source", String(20)),
    Column(
        "search_document",
        Text,
        Computed(
            "lower(rft_user_search_document(name, btrim(email), phone, company_name))",
            persisted=True,
        ),
    ),
    UniqueConstraint("email", name="users_email_key"),
    CheckConstraint("merged_into <> id", name="not_merged_into_self"),
    CheckConstraint(_in("role", USER_ROLES), name="role"),
    CheckConstraint(
        f"customer_type IS NULL OR {_in('customer_type', CUSTOMER_TYPES)}",
        name="customer_type",
    ),
    CheckConstraint(
        f"details_source IS NULL OR {_in('details_source', DETAILS_SOURCES)}",
        name="details_source",
    ),
)
"""Staff logins (legacy) and, since the customer system, customers too.

``merged_into``: set on a duplicate merged into another customer (migration 0009);
the row keeps its email, which find-or-create resolves to the survivor.
``details_source``: where name, phone and company came from (migration 0018):
``unpaid_booking`` is provisional (a paid booking replaces it), ``paid_booking`` and
``admin`` are not; null for older rows.
``search_document``: what the admin search matches, lowercased (migration 0011).
"""

courses = Table(
    "courses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("category", String(100)),
    Column("duration", String(50)),
    Column("price", Numeric(10, 2), nullable=False),
    _created_at(),
    _updated_at(),
    Column("course_type", String(40), nullable=False),
    CheckConstraint(_in("course_type", COURSE_TYPES), name="course_type"),
    Column("certificate_validity_months", Integer, nullable=False, server_default=text("36")),
    CheckConstraint("certificate_validity_months > 0", name="certificate_validity_months"),
)

course_schedules = Table(
    "course_schedules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("course_id", Integer, ForeignKey("courses.id"), nullable=False, index=True),
    Column("start_datetime", Timestamp, nullable=False),
    Column("end_datetime", Timestamp, nullable=False),
    Column("venue", String(255), nullable=False),
    Column("price", Numeric(10, 2)),
    Column("max_capacity", Integer, nullable=False, server_default=text("12")),
    Column("current_capacity", Integer, nullable=False, server_default=text("0")),
    Column("status", String(20), nullable=False, server_default=text("'published'")),
    _created_at(),
    _updated_at(),
    CheckConstraint(_in("status", SESSION_STATUSES), name="status"),
)
"""A scheduled session of a course; ``current_capacity`` is seats taken."""

bookings = Table(
    "bookings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("booking_reference", String(50), nullable=False),
    Column(
        "course_schedule_id",
        Integer,
        ForeignKey("course_schedules.id"),
        nullable=False,
        index=True,
    ),
    Column("user_id", Integer, ForeignKey("users.id")),
    Column("status", String(20), nullable=False, server_default=text("'pending'")),
    Column("payment_status", String(20), nullable=False, server_default=text("'pending'")),
    Column("payment_amount", Numeric(10, 2), nullable=False),
    Column("payment_method", String(50)),
    Column("stripe_payment_intent_id", String(255)),
    Column("number_of_attendees", Integer, nullable=False, server_default=text("1")),
    Column("contact_details", JSON, nullable=False),
    _created_at(),
    _updated_at(),
    Column("payment_verified_at", Timestamp),
    Column("unplaced_reason", String(30)),
    Column("hold_expires_at", Timestamp),
    UniqueConstraint("booking_reference", name="bookings_booking_reference_key"),
    CheckConstraint(_in("status", BOOKING_STATUSES), name="status"),
    CheckConstraint(_in("payment_status", PAYMENT_STATUSES), name="payment_status"),
    CheckConstraint("number_of_attendees BETWEEN 1 AND 12", name="number_of_attendees"),
    CheckConstraint(
        f"unplaced_reason IS NULL OR {_in('unplaced_reason', UNPLACED_REASONS)}",
        name="unplaced_reason",
    ),
)
"""``payment_verified_at``: when this system confirmed the payment with Stripe (migration
0007); null for legacy bookings and unpaid ones. ``unplaced_reason``: set on a paid
booking that got no seat (the session filled up or was cancelled, or the email already
held a booking on it): it is ``pending`` + ``paid``, takes no seat and waits for staff
(``GET /api/admin/payments/unplaced``)."""

Index(
    "ix_bookings_stripe_payment_intent_id",
    bookings.c.stripe_payment_intent_id,
)
Index(
    "uq_bookings_stripe_payment_intent_id_verified",
    bookings.c.stripe_payment_intent_id,
    unique=True,
    postgresql_where=bookings.c.payment_verified_at.is_not(None),
)
Index(
    "ix_bookings_unplaced_created_at",
    bookings.c.created_at,
    postgresql_where=bookings.c.unplaced_reason.is_not(None),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("booking_id", Integer, ForeignKey("bookings.id"), nullable=False, index=True),
    Column("amount", Numeric(10, 2), nullable=False),
    Column("status", String(20), nullable=False),
    Column("stripe_payment_intent_id", String(255)),
    Column("stripe_charge_id", String(255)),
    _created_at(),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("booking_id", Integer, ForeignKey("bookings.id")),
    Column("response_status", Integer),
    Column("response_body", JSONB),
    _created_at(index=True),
)
"""A client's ``Idempotency-Key`` and the response it got, stored with the booking.

Rows are claimed before the work starts, inside the booking's transaction, so a
concurrent retry with the same key waits and then replays the stored response.
"""

Index("ix_bookings_user_id_created_at", bookings.c.user_id, bookings.c.created_at)
Index(
    "ix_idempotency_keys_booking_id",
    idempotency_keys.c.booking_id,
    postgresql_where=idempotency_keys.c.booking_id.is_not(None),
)

user_audit_log = Table(
    "user_audit_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("actor_id", Integer),
    Column("changed_at", Timestamp, nullable=False, server_default=func.now()),
    Column("changes", JSONB, nullable=False),
    Column("action", String(30), nullable=False, server_default=text("'edit'")),
    Column("reason", Text),
)
"""What was done to or with a user's data, by whom and when.

``action`` is ``edit`` (``changes`` is ``{field: {"old": ..., "new": ...}}``),
``merge`` or ``unmerge`` (the same shape), ``data_export`` or ``erasure``
(``reason`` says why; ``changes`` holds counts, never values), ``attendee_erasure`` (on
the booker: a participant they named was erased; ``changes`` is ``{attendee_id,
booking_id, position}``). ``actor`` is the
signed-in admin's email and ``actor_id`` their user id.
Audit rows may hold PII until the person is erased; logs never do.
"""

Index(
    "ix_user_audit_log_user_id_changed_at",
    user_audit_log.c.user_id,
    user_audit_log.c.changed_at,
)


BACKFILL_BATCH_STATUSES = ("queued", "done")
UNLINKABLE_REASONS = ("missing_email", "malformed_email", "erased")

backfill_batches = Table(
    "backfill_batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("first_booking_id", Integer),
    Column("last_booking_id", Integer),
    Column("first_email_key", Integer),
    Column("last_email_key", Integer),
    Column("planned_bookings", Integer),
    Column("status", String(10), nullable=False, server_default=text("'queued'")),
    Column("enqueued_at", Timestamp, nullable=False, server_default=func.now()),
    Column("completed_at", Timestamp, index=True),
    Column("runs", Integer, nullable=False, server_default=text("0")),
    Column("bookings_linked", Integer, nullable=False, server_default=text("0")),
    Column("customers_created", Integer, nullable=False, server_default=text("0")),
    Column("unlinkable", Integer, nullable=False, server_default=text("0")),
    CheckConstraint(_in("status", BACKFILL_BATCH_STATUSES), name="status"),
    CheckConstraint("first_booking_id <= last_booking_id", name="range"),
    CheckConstraint(
        "(first_booking_id IS NOT NULL AND last_booking_id IS NOT NULL"
        " AND first_email_key IS NULL AND last_email_key IS NULL)"
        " OR (first_booking_id IS NULL AND last_booking_id IS NULL"
        " AND first_email_key IS NOT NULL AND last_email_key IS NOT NULL"
        " AND first_email_key <= last_email_key)",
        name="one_range",
    ),
)
"""One backfill message: a range of email keys (version 2) or of booking ids
(version 1), and what processing it did.

``queued`` from enqueue until a worker commits the batch (``done``); the counters
add up every committed run, so a redelivered batch adds zeros.
"""

Index(
    "ix_backfill_batches_status_first_booking_id",
    backfill_batches.c.status,
    backfill_batches.c.first_booking_id,
)

backfill_unlinkable = Table(
    "backfill_unlinkable",
    metadata,
    Column(
        "booking_id",
        Integer,
        ForeignKey("bookings.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("reason", String(20), nullable=False),
    Column("batch_id", String(64), nullable=False),
    Column("recorded_at", Timestamp, nullable=False, server_default=func.now()),
    CheckConstraint(_in("reason", UNLINKABLE_REASONS), name="reason"),
)
"""A booking the backfill cannot link, recorded once with the reason."""

Index("ix_bookings_id_unlinked", bookings.c.id, postgresql_where=bookings.c.user_id.is_(None))
BOOKING_EMAIL_KEY = func.rft_backfill_email_key(bookings.c.contact_details["email"].as_string())
"""The stable hash of a booking's normalised email that backfill batches are ranges of
(migration 0008)."""
Index(
    "ix_bookings_unlinked_email_key",
    BOOKING_EMAIL_KEY,
    postgresql_where=bookings.c.user_id.is_(None),
)


# --- admin users list: the expressions it filters and sorts by, and their indexes ----

USER_NAME_SORT_KEY = func.lower(func.coalesce(users.c.name, literal_column("''")))
USER_LAST_BOOKING_SORT_KEY = func.coalesce(
    users.c.last_booking_at, literal_column("'-infinity'::timestamptz")
)

Index(
    "ix_users_search_trgm",
    users.c.search_document,
    postgresql_using="gin",
    postgresql_ops={"search_document": "gin_trgm_ops"},
)
Index("ix_users_created_at_id", users.c.created_at, users.c.id)
Index("ix_users_name_sort", USER_NAME_SORT_KEY, users.c.id)
Index("ix_users_last_booking_sort", USER_LAST_BOOKING_SORT_KEY, users.c.id)
Index("ix_users_total_bookings_id", users.c.total_bookings, users.c.id)
Index("ix_users_total_spent_id", users.c.total_spent, users.c.id)
Index("ix_users_role_created_at_id", users.c.role, users.c.created_at, users.c.id)

user_counts = Table(
    "user_counts",
    metadata,
    Column("role", String(20), primary_key=True),
    Column("customer_type", String(20), primary_key=True),
    Column("has_bookings", Boolean, primary_key=True),
    Column("shard", SmallInteger, primary_key=True),
    Column("total", BigInteger, nullable=False),
)
"""How many users have this role, customer type (``''`` for none) and has-bookings:
the sum of ``total`` over the key's shards.

Kept exact by a statement-level trigger on ``users`` (migration 0004), so the
admin list's total needs no count over the whole table. Shards keep concurrent
writers from queueing on one counter row.
"""


# --- staff sign-in (migration 0006) ----------------------------------------------------

admin_login_failures = Table(
    "admin_login_failures",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("email_normalized", Text, nullable=False),
    Column("attempted_at", Timestamp, nullable=False, server_default=func.now(), index=True),
    Column("client_key", Text, nullable=False, server_default=""),
)
"""A failed, or still running, staff sign-in attempt for a normalised email, from the
client ``client_key`` names (a keyed fingerprint of its address, migration 0021)."""

Index(
    "ix_admin_login_failures_email_normalized_attempted_at",
    admin_login_failures.c.email_normalized,
    admin_login_failures.c.attempted_at,
)

admin_revoked_refresh_tokens = Table(
    "admin_revoked_refresh_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("expires_at", Timestamp, nullable=False, index=True),
)
"""Refresh tokens signed out before their expiry (kept until then)."""

payment_checkouts = Table(
    "payment_checkouts",
    metadata,
    Column("checkout_key", String(64), primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("payment_intent_id", String(255), nullable=False, unique=True),
    Column(
        "course_schedule_id",
        Integer,
        ForeignKey("course_schedules.id"),
        nullable=False,
        index=True,
    ),
    Column("number_of_attendees", Integer, nullable=False),
    Column("amount_pence", Integer, nullable=False),
    _created_at(),
    Column("participant_details", JSONB),
    Index(
        "ix_payment_checkouts_participants_created_at",
        "created_at",
        postgresql_where=text("participant_details IS NOT NULL"),
    ),
)
"""The PaymentIntent made for a checkout, so that a repeated checkout gets it back.

``checkout_key`` is a SHA-256 over the caller's Idempotency-Key, or over the caller
(source IP, User-Agent) and their request (session, normalised email, participants,
amount, details typed): no contact detail can be read back from it, and a replay is
bound to its caller (``checkout.intents``). ``participant_details`` (migration 0016) holds the
site's ``participantDetails`` (the places other than the booker's: names, normalised
email, health data) until a booking is made from the checkout. A checkout repeated
within 24 hours reuses the newest generation's intent; later, or if that intent was
cancelled, a new generation (and intent) is made. The generation is part of the Stripe
Idempotency-Key.

Personal data: ``participant_details`` (with health data); the key is derived from the
email, so erasing a customer may delete their rows (found by recomputing keys, or simply
every row older than 24 hours, which no checkout reuses). The intent's metadata at Stripe holds the
contact details the webhook books from.
"""

stripe_events = Table(
    "stripe_events",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("payment_intent_id", String(255), index=True),
    Column("booking_id", Integer, ForeignKey("bookings.id")),
    Column("outcome", String(30), nullable=False),
    Column("received_at", Timestamp, nullable=False, server_default=func.now()),
)
"""Each Stripe webhook event processed, recorded in the transaction that acted on it,
so a redelivered event finds its id here and changes nothing."""


# --- duplicate customers: candidates, dismissals, merges, aliases (migration 0009) -------

Index(
    "ix_users_merged_into", users.c.merged_into, postgresql_where=users.c.merged_into.is_not(None)
)
user_match_keys = Table(
    "user_match_keys",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("phone_e164", Text),
    Column("email_local_variants", ARRAY(Text), nullable=False),
    Column("name_key", Text),
    Column("company_key", Text),
)
"""What the duplicate scan looks people up by, per user (migration 0025): written by the
``users`` trigger when a user is inserted or their name, email, phone or company
changes, so that updates of anything else (a booking's statistics) write no index entry
for them."""
Index(
    "ix_user_match_keys_phone_e164",
    user_match_keys.c.phone_e164,
    postgresql_where=user_match_keys.c.phone_e164.is_not(None),
)
Index(
    "ix_user_match_keys_email_local_variants",
    user_match_keys.c.email_local_variants,
    postgresql_using="gin",
    postgresql_with={"fastupdate": "off"},
)
Index(
    "ix_user_match_keys_name_company",
    user_match_keys.c.name_key,
    user_match_keys.c.company_key,
    postgresql_where=user_match_keys.c.company_key.is_not(None),
)


def _user_reference(name: str) -> Column:
    return Column(name, Integer, ForeignKey("users.id"), nullable=False)


user_email_aliases = Table(
    "user_email_aliases",
    metadata,
    Column("email", Text, primary_key=True),
    _user_reference("user_id"),
    _user_reference("merged_user_id"),
    _created_at(),
    UniqueConstraint("merged_user_id"),
    Index("ix_user_email_aliases_user_id", "user_id"),
)
"""A merged duplicate's normalised email, now an alias of the survivor (``user_id``).

Always the email of the merged row (``merged_user_id``), which keeps it: the unique
normalised email on ``users`` makes an address one person's email or alias, never two.
"""

user_merges = Table(
    "user_merges",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    _user_reference("survivor_id"),
    _user_reference("duplicate_id"),
    Column("actor", String(255), nullable=False),
    Column("actor_id", Integer),
    Column("merged_at", Timestamp, nullable=False, server_default=func.now()),
    Column("moved_booking_ids", ARRAY(Integer), nullable=False),
    Column("filled", JSONB, nullable=False),
    Column("conflicts", JSONB, nullable=False),
    Column("unmerged_at", Timestamp),
    Column("unmerged_by", String(255)),
    Column("unmerged_by_id", Integer),
    Index("ix_user_merges_survivor_id", "survivor_id"),
    Index("ix_user_merges_duplicate_id", "duplicate_id"),
)
"""One merge: who (the admin's email and id, as in ``user_audit_log``) merged which
duplicate into which survivor, the bookings it moved,
the survivor's blank fields it filled (``{field: value}``) and the conflicting values
it kept (``{field: {"kept": ..., "discarded": ...}}``). Unmerge reads and closes it."""

not_duplicate_pairs = Table(
    "not_duplicate_pairs",
    metadata,
    _user_reference("user_id"),
    _user_reference("other_id"),
    Column("marked_by", String(255), nullable=False),
    Column("marked_by_id", Integer),
    Column("marked_at", Timestamp, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "other_id"),
    CheckConstraint("user_id < other_id", name="ordered"),
)
"""Pairs an admin said are two people; never proposed again."""

duplicate_candidates = Table(
    "duplicate_candidates",
    metadata,
    _user_reference("user_id"),
    _user_reference("other_id"),
    Column("score", Numeric(4, 3), nullable=False),
    Column("reasons", ARRAY(Text), nullable=False),
    Column("found_at", Timestamp, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "other_id"),
    CheckConstraint("user_id < other_id", name="ordered"),
    Index("ix_duplicate_candidates_other_id", "other_id"),
)
"""Customer pairs (lower id first) that look like one person: score in (0, 1] and the
reasons. The duplicate scan keeps it (migration 0009: ``rft_scan_queued_duplicates``)."""

duplicate_scan_queue = Table(
    "duplicate_scan_queue",
    metadata,
    Column("user_id", Integer, primary_key=True),
    Column("queued_at", Timestamp, nullable=False, server_default=func.now()),
)
"""Customers written since the last duplicate scan (a trigger on ``users`` queues them).

No foreign key: the legacy app may delete a user; the scan skips missing ones."""

Index(
    "ix_duplicate_candidates_score",
    duplicate_candidates.c.score.desc(),
    duplicate_candidates.c.user_id,
    duplicate_candidates.c.other_id,
)


# --- data protection (migration 0010, README "Data protection") -----------------------

erasure_suppressions = Table(
    "erasure_suppressions",
    metadata,
    Column("email_hash", BYTEA, primary_key=True),
    Column("erased_at", Timestamp, nullable=False, server_default=func.now()),
)
"""``rft_suppression_hash(normalised email)`` of every erased person's email(s).

The backfill never links or creates a customer from a booking made before
``erased_at`` whose email hashes to one of these.
"""

erasure_suppression_salt = Table(
    "erasure_suppression_salt",
    metadata,
    Column("id", Boolean, primary_key=True, server_default=text("true")),
    Column("salt", BYTEA, nullable=False),
    CheckConstraint("id", name="one_row"),
)
"""The random salt of the suppression hashes, made by the migration (one row)."""

Index("ix_course_schedules_end_datetime", course_schedules.c.end_datetime)


# --- email (migration 0014, README "Email") --------------------------------------------

EMAIL_STATUSES = ("pending", "sent", "dead", "suppressed")

email_outbox = Table(
    "email_outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("dedupe_key", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("payload", JSONB),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("attempts", SmallInteger, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Timestamp, nullable=False, server_default=func.now()),
    Column("last_error", Text),
    Column("ses_message_id", Text),
    Column("created_at", Timestamp, nullable=False, server_default=func.now()),
    Column("sent_at", Timestamp),
    UniqueConstraint("kind", "dedupe_key"),
    CheckConstraint(_in("status", EMAIL_STATUSES), name="status"),
)
"""Messages written in the transaction of the event that causes them; the email sender
drains the pending ones (``rft_common.email.outbox``). One message per (kind, dedupe key):
a second enqueue of the same event changes nothing. ``payload`` (the facts the template
needs, a reset link among them) is cleared once the message is sent or given up."""

Index(
    "ix_email_outbox_next_attempt_at",
    email_outbox.c.next_attempt_at,
    email_outbox.c.id,
    postgresql_where=text("status = 'pending'"),
)

email_suppressions = Table(
    "email_suppressions",
    metadata,
    Column("email_normalized", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("suppressed_at", Timestamp, nullable=False, server_default=func.now()),
    CheckConstraint("reason IN ('bounce', 'complaint')", name="reason"),
)
"""Addresses SES reported as a permanent bounce or a complaint: never sent to again."""

staff_password_resets = Table(
    "staff_password_resets",
    metadata,
    Column("token_hash", BYTEA, primary_key=True),
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("expires_at", Timestamp, nullable=False, index=True),
    Column("used_at", Timestamp),
)
"""A forgot-password token, by its SHA-256 only: single use, valid until ``expires_at``."""

staff_password_reset_requests = Table(
    "staff_password_reset_requests",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("limit_key", Text, nullable=False),
    Column("requested_at", Timestamp, nullable=False, server_default=func.now(), index=True),
)
"""One row per forgot-password request and limit (``email:<hash>``, ``client:<address>``),
counted over the last hour for the rate limits."""

Index(
    "ix_staff_password_reset_requests_limit_key_requested_at",
    staff_password_reset_requests.c.limit_key,
    staff_password_reset_requests.c.requested_at,
)


def alembic_url() -> URL:
    """The database as a SQLAlchemy URL, for alembic and the tests: from the same
    settings as every connection of the application (``postgres.connection_arguments``)."""
    arguments = dict(postgres.connection_arguments())
    query = {
        name: str(value)
        for name, value in arguments.items()
        if name not in ("user", "password", "host", "port", "database", "ssl_context", "timeout")
    }
    return URL.create(
        "postgresql+pg8000",
        username=arguments["user"],
        password=arguments["password"],
        host=arguments["host"],
        port=arguments["port"],
        database=arguments["database"],
        query=query,
    )


# --- attendees and certificates (migration 0016, README "Attendees and certificates") --

booking_attendees = Table(
    "booking_attendees",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("booking_id", Integer, ForeignKey("bookings.id"), nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("email", String(254)),
    Column("user_id", Integer, ForeignKey("users.id"), index=True),
    Column("dietary_requirements", Text),
    Column("medical_conditions", Text),
    _created_at(),
    Column("erased_at", Timestamp),
    UniqueConstraint("booking_id", "position"),
    CheckConstraint("position BETWEEN 1 AND 12", name="position"),
)
"""Who attends a booking: position 1 is the booker, 2.. the named participants.
``email`` is normalised; ``user_id`` the customer it found or created (null without an
email, or with ``customer_accounts`` off). ``dietary_requirements`` and
``medical_conditions`` are health data. ``erased_at`` (migration 0023): when the
attendee's details were erased (by staff, or by retention)."""

certificates = Table(
    "certificates",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("attendee_id", BigInteger, ForeignKey("booking_attendees.id"), nullable=False),
    Column("booking_id", Integer, ForeignKey("bookings.id"), nullable=False, index=True),
    Column("user_id", Integer, ForeignKey("users.id"), index=True),
    Column("course_type", String(40), nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("certificate_number", String(64), nullable=False, unique=True),
    Column("status", String(10), nullable=False, server_default=text("'active'")),
    Column("revoked_at", Timestamp),
    _created_at(),
    UniqueConstraint("attendee_id"),
    CheckConstraint(_in("status", ("active", "expired", "revoked")), name="status"),
)
"""One certificate per attendee of a completed session (``certificates.service``).
Number: ``RFT-<course type>-<issue year>-<attendee id, 8 digits>``."""

Index(
    "ix_certificates_active_expires_on",
    certificates.c.expires_on,
    certificates.c.id,
    postgresql_where=certificates.c.status == "active",
)
Index(
    "ix_certificates_unrevoked_expires_on",
    certificates.c.expires_on,
    postgresql_where=certificates.c.status != "revoked",
)

consent_events = Table(
    "consent_events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("basis", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("notice_version", Text),
    Column("booking_id", Integer, ForeignKey("bookings.id")),
    Column("actor_id", Integer),
    Column("recorded_at", Timestamp, nullable=False, server_default=func.clock_timestamp()),
    CheckConstraint(_in("purpose", CONSENT_PURPOSES), name="purpose"),
    CheckConstraint(_in("basis", CONSENT_BASES), name="basis"),
    CheckConstraint(_in("source", CONSENT_SOURCES), name="source"),
)
"""Append-only consent history per person and purpose (``consent.service``); the view
``current_consents`` (migration 0019) is the latest event of each."""

Index(
    "ix_consent_events_latest",
    consent_events.c.user_id,
    consent_events.c.purpose,
    consent_events.c.recorded_at.desc(),
    consent_events.c.id.desc(),
)
Index(
    "ix_consent_events_booking_id",
    consent_events.c.booking_id,
    postgresql_where=consent_events.c.booking_id.isnot(None),
)


# --- renewal reminders (migration 0020, docs/reminders.md) -----------------------------

renewal_reminders = Table(
    "renewal_reminders",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("certificate_id", BigInteger, ForeignKey("certificates.id"), nullable=False),
    Column("stage", Integer, nullable=False),
    Column("recipient_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("outbox_id", BigInteger, ForeignKey("email_outbox.id")),
    Column("skipped_reason", Text),
    Column("queued_at", Timestamp, nullable=False, server_default=func.now()),
    Column("booking_id_after", Integer, ForeignKey("bookings.id")),
    UniqueConstraint("certificate_id", "stage", "recipient_id"),
    CheckConstraint(_in("skipped_reason", REMINDER_SKIP_REASONS), name="skipped_reason"),
    CheckConstraint("(outbox_id IS NULL) <> (skipped_reason IS NULL)", name="queued_or_skipped"),
)
"""One row per certificate, stage (days before expiry; negative after) and recipient,
ever (``renewals.reminders``): queued in the outbox message ``outbox_id`` or skipped."""

Index(
    "ix_renewal_reminders_outbox_id",
    renewal_reminders.c.outbox_id,
    postgresql_where=renewal_reminders.c.outbox_id.isnot(None),
)
