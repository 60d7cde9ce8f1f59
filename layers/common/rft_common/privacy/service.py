"""UK GDPR: subject access (export), erasure that keeps the money, retention.

**Export.** Everything held about one person, as JSON, built by one statement from
the rows themselves (``to_jsonb``), so a column added to ``users`` or ``bookings``
later is exported without a change here: the profile (every column except the
password hash, which is reported only as ``has_password``), the consent flags, every
booking with its ``contact_details`` as stored and its course and session, the
payments of those bookings, the audit entries about them, their attendances (with the
health data given for them) and certificates, and, for a booker, whom they booked onto
their bookings (names and emails, not those people's health data). The export is
itself audited (``data_export``), in the same transaction.

**Erasure** (``erase_users``, one transaction, set-based, also used by retention):

- scrubbed: the person's name, phone, company, address, notes and password hash;
  their email becomes ``erased-<id>@erased.invalid`` (``.invalid`` is reserved, so it
  can never be anyone's address, and neither checkout nor backfill accepts it);
  consents are withdrawn: the consent history goes (wording versions, purchases, staff,
  dates) and one objection per purpose (source ``erasure``) stays, so what remains of
  the person (their certificates) is never written to; every booking of theirs
  (including unlinked legacy bookings with their email, which are linked to them
  first) gets ``REDACTED_CONTACT_DETAILS``;
  their older audit entries keep the field names and lose every value; the checkout
  records of their intents (``payment_checkouts``, keyed by a hash of their email) go;
  their attendances (``booking_attendees``) lose name, email and health data; renewal
  reminders that name them and are not sent yet are never sent and lose their content,
  and those sent to them forget their address (the decisions stay, without content, so
  nothing is sent again);
- kept: the user id, role, customer type, statistics and dates; each booking's id,
  reference, session, status, amounts, payment status, Stripe ids and dates; payments.
  Revenue and the statistics are therefore exactly what they were. Their certificates
  are kept (number, course type, issue and expiry dates, status), tied only to the
  scrubbed user: the company must be able to answer whether a certificate it issued is
  genuine (an employer relies on it under the Health and Safety (First-Aid)
  Regulations 1981; legitimate interests, UK GDPR Art. 6(1)(f)), and without a name
  the record identifies no one. They leave the renewals list (erased users are not
  listed);
- suppressed: ``rft_suppression_hash`` of the erased email (salted SHA-256, migration
  0010) goes on ``erasure_suppressions``. The backfill then never links, or creates a
  customer from, a booking made before the erasure with that email (it records it as
  unlinkable, reason ``erased``), and retention scrubs such a booking should one
  reappear (a restored backup, the legacy app). A *new* checkout by the same person
  is a new relationship they consented to: it creates a fresh customer, because the
  erased row no longer holds their email;
- audited: one ``erasure`` row (who, when, reason, counts, no values).

**Erasure of an attendee known by name only** (``erase_attendee``): the attendee row
loses name, email and health data, keeps its place and certificate; audited on the
booker. **Retention** also drops abandoned checkouts' participant details and old
attendee rows' health data (``run_retention``; docs/attendees.md).

Erasures take ``db.locks.LOCK_ERASURES`` and backfill batches its shared form, so
a batch never reads bookings of a person while they are being erased (it would
otherwise re-create them from its earlier snapshot). An erasure waits for running
batches (or for the person's row) a little less than its socket timeout, then is
refused with 409 to try again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pg8000.exceptions import DatabaseError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from rft_common.consent.service import forget_consents
from rft_common.core.emails import EMAIL_WHITESPACE, canonical_email, normalized_email_sql
from rft_common.core.errors import Conflict, InvalidRequest, NotFound
from rft_common.core.vocabulary import STAFF_ROLES
from rft_common.customers.audit import Actor, audit, audit_each
from rft_common.db.locks import LOCK_ERASURES
from rft_common.db.postgres import (
    LOCK_NOT_AVAILABLE,
    Connection,
    run_transaction,
    socket_timeout_seconds,
    sqlstate,
)
from rft_common.email.outbox import BOOKING_EMAIL_KINDS

ERASED_MARKER = "[erased]"
REDACTED_CONTACT_DETAILS = json.dumps(
    {
        "name": ERASED_MARKER,
        "email": ERASED_MARKER,
        "phone": ERASED_MARKER,
        "company": ERASED_MARKER,
        "specialRequirements": ERASED_MARKER,
        "emergencyContact": ERASED_MARKER,
        "erased": True,
    },
    separators=(",", ":"),
)
"""What an erased booking's ``contact_details`` hold: the legacy keys, no values."""
CREDENTIAL_COLUMNS = ("password_hash",)
"""Never exported (credentials, not information about the person)."""

# --- export ---------------------------------------------------------------------------

EXPORT = f"""
    SELECT jsonb_build_object(
        'user', to_jsonb(u) - ARRAY[{", ".join(f"'{c}'" for c in CREDENTIAL_COLUMNS)}]
                || jsonb_build_object('total_spent', u.total_spent::text,
                                      'has_password', u.password_hash IS NOT NULL),
        'consents', jsonb_build_object('marketing_consent', u.marketing_consent,
                                       'newsletter_subscribed', u.newsletter_subscribed),
        'consent_history', coalesce((
            SELECT jsonb_agg(
                to_jsonb(e) || jsonb_build_object('booking_reference', b.booking_reference)
                ORDER BY e.recorded_at, e.id)
            FROM consent_events AS e LEFT JOIN bookings AS b ON b.id = e.booking_id
            WHERE e.user_id = u.id
               OR e.user_id IN (SELECT m.id FROM users AS m WHERE m.merged_into = u.id)), '[]'),
        'bookings', coalesce((
            SELECT jsonb_agg(
                to_jsonb(b) || jsonb_build_object(
                    'payment_amount', b.payment_amount::text,
                    'contact_details', b.contact_details,
                    'course_name', c.name, 'session_start', s.start_datetime,
                    'session_end', s.end_datetime, 'venue', s.venue)
                ORDER BY b.created_at, b.id)
            FROM bookings AS b
            JOIN course_schedules AS s ON s.id = b.course_schedule_id
            JOIN courses AS c ON c.id = s.course_id
            WHERE b.user_id = u.id), '[]'),
        'payments', coalesce((
            SELECT jsonb_agg(to_jsonb(p) || jsonb_build_object('amount', p.amount::text)
                             ORDER BY p.created_at, p.id)
            FROM payments AS p JOIN bookings AS b ON b.id = p.booking_id
            WHERE b.user_id = u.id), '[]'),
        'audit_entries', coalesce((
            SELECT jsonb_agg(to_jsonb(a) ORDER BY a.changed_at, a.id)
            FROM user_audit_log AS a
            WHERE a.user_id = u.id
               OR a.user_id IN (SELECT m.id FROM users AS m WHERE m.merged_into = u.id)), '[]'),
        'email_aliases', coalesce((
            SELECT jsonb_agg(to_jsonb(e) ORDER BY e.created_at, e.email)
            FROM user_email_aliases AS e WHERE e.user_id = u.id), '[]'),
        'merged_records', coalesce((
            SELECT jsonb_agg(to_jsonb(m) - ARRAY[{", ".join(f"'{c}'" for c in CREDENTIAL_COLUMNS)}]
                             || jsonb_build_object('total_spent', m.total_spent::text)
                             ORDER BY m.id)
            FROM users AS m WHERE m.merged_into = u.id), '[]'),
        'attendances', coalesce((
            SELECT jsonb_agg(
                to_jsonb(a) || jsonb_build_object(
                    'booking_reference', b.booking_reference, 'booked_by', b.user_id,
                    'course_name', c.name, 'session_start', s.start_datetime,
                    'session_end', s.end_datetime, 'venue', s.venue)
                ORDER BY a.booking_id, a.position)
            FROM booking_attendees AS a
            JOIN bookings AS b ON b.id = a.booking_id
            JOIN course_schedules AS s ON s.id = b.course_schedule_id
            JOIN courses AS c ON c.id = s.course_id
            WHERE a.user_id = u.id), '[]'),
        'certificates', coalesce((
            SELECT jsonb_agg(to_jsonb(cert) ORDER BY cert.issued_on, cert.id)
            FROM certificates AS cert WHERE cert.user_id = u.id), '[]'),
        'booked_attendees', coalesce((
            SELECT jsonb_agg(
                jsonb_build_object('booking_id', a.booking_id, 'position', a.position,
                                   'first_name', a.first_name, 'last_name', a.last_name,
                                   'email', a.email)
                ORDER BY a.booking_id, a.position)
            FROM booking_attendees AS a JOIN bookings AS b ON b.id = a.booking_id
            WHERE b.user_id = u.id AND a.position > 1), '[]'),
        'merges', coalesce((
            SELECT jsonb_agg(to_jsonb(r) ORDER BY r.merged_at, r.id)
            FROM user_merges AS r WHERE u.id IN (r.survivor_id, r.duplicate_id)), '[]')
    )
    FROM users AS u WHERE u.id = :user_id
"""
USER_BY_EMAIL = "SELECT coalesce(merged_into, id) FROM users WHERE email_normalized = :email"
"""An alias (the email of a merged duplicate) finds the person it was merged into."""


class DataExport(BaseModel):
    """Everything held about one person (UK GDPR subject access)."""

    exported_at: datetime
    user: dict[str, Any] = Field(
        description="Every stored field of the user except credentials (`has_password`)"
    )
    consents: dict[str, bool] = Field(description="marketing_consent, newsletter_subscribed")
    consent_history: list[dict[str, Any]] = Field(
        description="Every consent event about them (and their merged records), oldest "
        "first: purpose, basis, source, the wording or notice version shown, the booking "
        "a soft opt-in rests on, the admin who recorded it, when"
    )
    bookings: list[dict[str, Any]] = Field(
        description="Every booking, oldest first: all its fields, `contact_details` as "
        "stored, and its course and session"
    )
    payments: list[dict[str, Any]] = Field(description="Payments of those bookings")
    audit_entries: list[dict[str, Any]] = Field(
        description="Every audit entry about the person (and their merged records), this "
        "export's included"
    )
    email_aliases: list[dict[str, Any]] = Field(
        description="Their other addresses: emails of duplicate records merged into them"
    )
    merged_records: list[dict[str, Any]] = Field(
        description="The duplicate records merged into them, every stored field as kept"
    )
    merges: list[dict[str, Any]] = Field(
        description="The merges they took part in: who, when, moved bookings, values kept"
    )
    attendances: list[dict[str, Any]] = Field(
        description="Every booking place they attended or will attend (whoever booked it), "
        "with the dietary requirements and medical conditions given for them",
    )
    certificates: list[dict[str, Any]] = Field(
        description="Their certificates: number, course type, dates, status"
    )
    booked_attendees: list[dict[str, Any]] = Field(
        description="The other people they booked onto their bookings: names and emails",
    )


def export_user_data(user_id: int, *, actor: Actor) -> DataExport:
    """The subject access export, audited in the same transaction."""

    def export(connection: Connection) -> DataExport:
        if (
            connection.execute("SELECT 1 FROM users WHERE id = :id", {"id": user_id}).first()
            is None
        ):
            raise NotFound(f"user {user_id} does not exist")
        audit(connection, user_id, actor=actor, action="data_export")
        document = connection.execute(EXPORT, {"user_id": user_id}).scalar_one()
        exported_at = connection.execute("SELECT now()").scalar_one()
        return DataExport(exported_at=exported_at, **document)

    return run_transaction(export)


def user_id_for_email(email: str) -> int:
    """The user whose normalised email this is (for operators: ``rft gdpr export``)."""
    user_id = run_transaction(
        lambda connection: connection.execute(
            USER_BY_EMAIL, {"email": canonical_email(email)}
        ).scalar()
    )
    if user_id is None:
        raise NotFound("no user has this email")
    return user_id


# --- erasure --------------------------------------------------------------------------


def _printable_reason(value: str) -> str:
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", value):
        raise ValueError("must not contain control characters")
    return value


ErasureReason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=500),
    AfterValidator(_printable_reason),
    Field(
        description="Why (for the audit log), e.g. a ticket number. It must not quote the "
        "person's email, name or phone: it is kept after their details are gone.",
        examples=["Erasure request by email, ticket 4711"],
    ),
]


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ErasureReason
    force: bool = Field(
        default=False,
        description="Erase even a staff account or a customer with a session yet to run",
    )


class ErasureResult(BaseModel):
    user_id: int
    erased_at: datetime
    bookings_redacted: int = Field(description="Bookings whose contact details were replaced")
    audit_entries_redacted: int = Field(description="Older audit entries that lost their values")
    forced: list[str] = Field(description="Refusals overridden by `force`")


@dataclass(frozen=True)
class ErasureCounts:
    users: int
    bookings: int
    audit_entries: int


def placeholder_email_sql(user_id: str) -> str:
    return f"'erased-' || {user_id} || '@erased.invalid'"


LIMIT_LOCK_WAITS = "SELECT set_config('lock_timeout', :wait, true)"


def limit_lock_waits(connection: Connection) -> None:
    """Let each lock wait of this transaction (for the person's row, for the erasure
    lock that running backfill batches hold shared) last a second less than the socket
    timeout, so that it ends in ``lock_not_available`` (409 for an erasure request)
    rather than a dropped connection (500)."""
    connection.execute(LIMIT_LOCK_WAITS, {"wait": f"{max(socket_timeout_seconds() - 1, 1)}s"})


WITH_MERGED = """
    SELECT id FROM users WHERE id = ANY(:user_ids) OR merged_into = ANY(:user_ids) ORDER BY id
"""
"""The records of the same people: erasing a survivor erases the duplicates merged into it."""
SUPPRESS = """
    INSERT INTO erasure_suppressions (email_hash, erased_at)
    SELECT DISTINCT rft_suppression_hash(email_normalized), now()
    FROM users WHERE id = ANY(:user_ids) AND erased_at IS NULL
    ON CONFLICT (email_hash) DO UPDATE SET erased_at = excluded.erased_at
"""
LINK_UNLINKED = f"""
    UPDATE bookings AS b SET user_id = coalesce(u.merged_into, u.id)
    FROM users AS u
    WHERE u.id = ANY(:user_ids) AND u.erased_at IS NULL AND b.user_id IS NULL
      AND rft_backfill_email_key(b.contact_details ->> 'email')
          = rft_backfill_email_key(u.email_normalized)
      AND {normalized_email_sql("b.contact_details ->> 'email'")} = u.email_normalized
"""
"""The key condition finds their unlinked bookings through ``ix_bookings_unlinked_email_key``
(migration 0008) instead of reading every unlinked booking."""
REDACT_BOOKINGS = """
    UPDATE bookings SET contact_details = CAST(:redacted AS json)
    WHERE user_id = ANY(:user_ids) AND contact_details::text <> :redacted
"""
REDACT_AUDIT = """
    UPDATE user_audit_log
    SET changes = CASE jsonb_typeof(changes)
        WHEN 'object' THEN (
            SELECT coalesce(jsonb_object_agg(key, to_jsonb(CAST(:marker AS text))), '{}')
            FROM jsonb_each(changes))
        ELSE to_jsonb(CAST(:marker AS text)) END
    WHERE user_id = ANY(:user_ids) AND action <> 'erasure' AND changes <> '{}'::jsonb
"""
SCRUB_USERS = f"""
    UPDATE users
    SET email = {placeholder_email_sql("id")}, name = NULL, phone = NULL, company_name = NULL,
        address_line1 = NULL, address_line2 = NULL, city = NULL, county = NULL,
        postcode = NULL, notes = NULL, password_hash = NULL, marketing_consent = false,
        newsletter_subscribed = false, is_active = false, token_version = token_version + 1,
        erased_at = now(), updated_at = now()
    WHERE id = ANY(:user_ids) AND erased_at IS NULL
    RETURNING id, (SELECT count(*) FROM bookings AS b WHERE b.user_id = users.id) AS bookings
"""
SCRUB_AS_ACTOR = f"""
    UPDATE user_audit_log AS a SET actor = {placeholder_email_sql("u.id")}
    FROM users AS u
    WHERE u.id = ANY(:user_ids) AND u.erased_at IS NULL AND lower(a.actor) = u.email_normalized
"""
"""An erased staff member's email, recorded as the actor of their edits to others."""
FORGET_SIGN_INS = """
    DELETE FROM admin_login_failures
    WHERE email_normalized IN (
        SELECT email_normalized FROM users WHERE id = ANY(:user_ids) AND erased_at IS NULL)
"""
FORGET_CHECKOUTS = """
    DELETE FROM payment_checkouts
    WHERE payment_intent_id IN (
        SELECT stripe_payment_intent_id FROM bookings
        WHERE user_id = ANY(:user_ids) AND stripe_payment_intent_id IS NOT NULL)
"""
"""Checkout records of their paid bookings: keyed by a hash of their email, and only
there so that a repeated checkout gets its intent back."""
SCRUB_ATTENDANCES = """
    UPDATE booking_attendees
    SET first_name = NULL, last_name = NULL, email = NULL, dietary_requirements = NULL,
        medical_conditions = NULL, erased_at = now()
    WHERE user_id = ANY(:user_ids) AND erased_at IS NULL
"""
"""Their places on bookings keep the booking and the link to the scrubbed user."""
FORGET_REMINDERS = f"""
    WITH naming AS (
        SELECT outbox_id, recipient_id FROM renewal_reminders
        WHERE recipient_id = ANY(:user_ids) AND outbox_id IS NOT NULL
        UNION
        SELECT r.outbox_id, r.recipient_id
        FROM certificates AS cert
        JOIN renewal_reminders AS r ON r.certificate_id = cert.id
        WHERE cert.user_id = ANY(:user_ids) AND r.outbox_id IS NOT NULL
    )
    UPDATE email_outbox AS o
    SET status = CASE WHEN o.status = 'pending' THEN 'suppressed' ELSE o.status END,
        payload = NULL,
        recipient = CASE WHEN n.recipient_id = ANY(:user_ids)
                         THEN {placeholder_email_sql("n.recipient_id")} ELSE o.recipient END
    FROM naming AS n
    WHERE o.id = n.outbox_id
      AND (o.status = 'pending' OR n.recipient_id = ANY(:user_ids))
"""
"""Renewal reminders naming them (to them, or a booker's listing them) that are still
to be sent are cancelled with their content; those sent to them forget the address."""
FORGET_BOOKING_EMAILS = f"""
    UPDATE email_outbox AS o
    SET status = CASE WHEN o.status = 'pending' THEN 'suppressed' ELSE o.status END,
        payload = NULL,
        recipient = {placeholder_email_sql("b.user_id")}
    FROM bookings AS b
    WHERE b.user_id = ANY(:user_ids)
      AND o.kind = ANY(:booking_email_kinds)
      AND o.dedupe_key = CAST(b.id AS text)
"""
"""The emails about their bookings (``email.outbox``: kind and booking id) forget the
address, and one still to be sent is cancelled with its content."""
FORGET_ALIASES = """
    DELETE FROM user_email_aliases
    WHERE user_id = ANY(:user_ids) OR merged_user_id = ANY(:user_ids)
"""
FORGET_CANDIDATES = """
    DELETE FROM duplicate_candidates WHERE user_id = ANY(:user_ids) OR other_id = ANY(:user_ids)
"""
REDACT_MERGES = """
    UPDATE user_merges
    SET filled = (SELECT coalesce(jsonb_object_agg(key, to_jsonb(CAST(:marker AS text))), '{}')
                  FROM jsonb_each(filled)),
        conflicts = (SELECT coalesce(jsonb_object_agg(key, to_jsonb(CAST(:marker AS text))), '{}')
                     FROM jsonb_each(conflicts))
    WHERE (survivor_id = ANY(:user_ids) OR duplicate_id = ANY(:user_ids))
      AND (filled <> '{}'::jsonb OR conflicts <> '{}'::jsonb)
"""
"""Merge records keep who merged what and which bookings moved; the values go."""
SCRUB_MERGES_BY = f"""
    UPDATE user_merges AS m
    SET actor = CASE WHEN m.actor_id = u.id THEN {placeholder_email_sql("u.id")} ELSE m.actor END,
        unmerged_by = CASE WHEN m.unmerged_by_id = u.id THEN {placeholder_email_sql("u.id")}
                           ELSE m.unmerged_by END
    FROM users AS u
    WHERE u.id = ANY(:user_ids) AND u.erased_at IS NULL AND u.id IN (m.actor_id, m.unmerged_by_id)
"""
SCRUB_DISMISSALS_BY = f"""
    UPDATE not_duplicate_pairs AS d SET marked_by = {placeholder_email_sql("u.id")}
    FROM users AS u
    WHERE u.id = ANY(:user_ids) AND u.erased_at IS NULL AND d.marked_by_id = u.id
"""
"""An erased staff member's email, recorded on the merges and dismissals they made."""


def erase_users(
    connection: Connection, user_ids: list[int], *, actor: Actor, reason: str
) -> ErasureCounts:
    """Erase these users (not yet erased) inside the caller's transaction; the counts.

    Refusals are the caller's business: this erases whoever it is given, and the
    duplicates merged into them (the same people).
    """
    connection.execute(LOCK_ERASURES)
    parameters = {
        "user_ids": connection.execute(WITH_MERGED, {"user_ids": user_ids}).scalars(),
        "whitespace": EMAIL_WHITESPACE,
        "redacted": REDACTED_CONTACT_DETAILS,
        "marker": ERASED_MARKER,
        "booking_email_kinds": list(BOOKING_EMAIL_KINDS),
    }
    connection.execute(SUPPRESS, parameters)
    connection.execute(LINK_UNLINKED, parameters)
    bookings = connection.execute(REDACT_BOOKINGS, parameters).rowcount
    audit_entries = connection.execute(REDACT_AUDIT, parameters).rowcount
    connection.execute(SCRUB_AS_ACTOR, parameters)
    connection.execute(FORGET_SIGN_INS, parameters)
    connection.execute(FORGET_CHECKOUTS, parameters)
    connection.execute(SCRUB_ATTENDANCES, parameters)
    connection.execute(FORGET_REMINDERS, parameters)
    connection.execute(FORGET_BOOKING_EMAILS, parameters)
    connection.execute(FORGET_ALIASES, parameters)
    connection.execute(FORGET_CANDIDATES, parameters)
    connection.execute(REDACT_MERGES, parameters)
    connection.execute(SCRUB_MERGES_BY, parameters)
    connection.execute(SCRUB_DISMISSALS_BY, parameters)
    forget_consents(connection, parameters["user_ids"])
    erased = sorted(connection.execute(SCRUB_USERS, parameters))
    if erased:
        audit_each(
            connection,
            {user.id: {"bookings_redacted": user.bookings} for user in erased},
            actor=actor,
            action="erasure",
            reason=reason,
        )
    return ErasureCounts(users=len(erased), bookings=bookings, audit_entries=audit_entries)


LOCK_USER = """
    SELECT id, email_normalized, name, phone, role, erased_at, merged_into FROM users
    WHERE id = :user_id FOR UPDATE
"""
NEXT_SESSION = """
    SELECT b.booking_reference, s.start_datetime
    FROM bookings AS b JOIN course_schedules AS s ON s.id = b.course_schedule_id
    WHERE b.user_id = :user_id AND b.status IN ('pending', 'confirmed')
      AND s.status <> 'cancelled' AND s.start_datetime > now()
    ORDER BY s.start_datetime, b.id LIMIT 1
"""


def _refuse_personal_details_in_reason(
    reason: str, *, email: str | None, name: str | None, phone: str | None
) -> None:
    """The reason outlives the details: it must not quote them."""
    folded = reason.casefold()
    digits = re.sub(r"\D", "", reason)
    phone_digits = re.sub(r"\D", "", phone or "")
    name = (name or "").strip()
    quoted = (
        (email is not None and email.casefold() in folded)
        or (len(name) >= 4 and name.casefold() in folded)
        or (len(phone_digits) >= 7 and phone_digits[-7:] in digits)
    )
    if quoted:
        raise InvalidRequest(
            "the reason must not contain the person's email, name or phone; it is kept "
            "after they are erased",
            field="reason",
        )


def erase_user(user_id: int, request: ErasureRequest, *, actor: Actor) -> ErasureResult:
    """Erase one user, refusing staff and customers with a session to come unless forced."""

    def erase(connection: Connection) -> ErasureResult:
        limit_lock_waits(connection)
        user = connection.execute(LOCK_USER, {"user_id": user_id}).first()
        if user is None:
            raise NotFound(f"user {user_id} does not exist")
        if user.erased_at is not None:
            raise Conflict(f"user {user_id} was already erased on {user.erased_at:%Y-%m-%d}")
        if user.id == actor.user_id:
            # Erasing ends the account: no staff member ends their own (issue 23).
            raise Conflict("you cannot erase your own account; ask another admin")
        if user.merged_into is not None:
            raise Conflict(
                f"user {user_id} was merged into user {user.merged_into}: erase user "
                f"{user.merged_into}, which erases the records merged into it too"
            )
        _refuse_personal_details_in_reason(
            request.reason, email=user.email_normalized, name=user.name, phone=user.phone
        )
        overridden = []
        if user.role in STAFF_ROLES:
            if not request.force:
                raise Conflict(
                    f"user {user_id} is staff ({user.role}); remove their access first, "
                    "or send force: true to erase the account anyway",
                    field="force",
                )
            overridden.append("staff")
        upcoming = connection.execute(NEXT_SESSION, {"user_id": user_id}).first()
        if upcoming is not None:
            if not request.force:
                raise Conflict(
                    f"user {user_id} has a session yet to run (booking "
                    f"{upcoming.booking_reference} on {upcoming.start_datetime:%Y-%m-%d}); "
                    "cancel it first, or send force: true",
                    field="force",
                )
            overridden.append("upcoming_session")
        counts = erase_users(connection, [user_id], actor=actor, reason=request.reason)
        erased_at = connection.execute(
            "SELECT erased_at FROM users WHERE id = :user_id", {"user_id": user_id}
        ).scalar_one()
        return ErasureResult(
            user_id=user_id,
            erased_at=erased_at,
            bookings_redacted=counts.bookings,
            audit_entries_redacted=counts.audit_entries,
            forced=overridden,
        )

    try:
        return run_transaction(erase)
    except DatabaseError as error:
        if sqlstate(error) == LOCK_NOT_AVAILABLE:
            raise Conflict(
                "backfill batches or other changes are holding this person's records "
                "right now; try the erasure again in a minute"
            ) from None
        raise


# --- erasure of an attendee known by name only -------------------------------------

LOCK_ATTENDEE = """
    SELECT a.id, a.booking_id, a.position, a.user_id, a.email, a.erased_at,
           nullif(btrim(concat_ws(' ', a.first_name, a.last_name)), '') AS name,
           b.user_id AS booker_id
    FROM booking_attendees AS a JOIN bookings AS b ON b.id = a.booking_id
    WHERE a.id = :attendee_id
    FOR UPDATE OF a
"""
ERASE_ATTENDEE = """
    UPDATE booking_attendees
    SET first_name = NULL, last_name = NULL, email = NULL, dietary_requirements = NULL,
        medical_conditions = NULL, erased_at = now()
    WHERE id = :attendee_id
    RETURNING erased_at
"""


class AttendeeErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ErasureReason


class AttendeeErasureResult(BaseModel):
    attendee_id: int
    booking_id: int
    erased_at: datetime
    audited_on_user_id: int | None = Field(
        description="The booker, in whose audit log the erasure is recorded (null when the "
        "booking is linked to no customer: the attendee row's erased_at records it)"
    )


def erase_attendee(
    attendee_id: int, request: AttendeeErasureRequest, *, actor: Actor
) -> AttendeeErasureResult:
    """Erase a person known only as a name on someone else's booking: the attendee row
    (``booking_attendees.id``, listed in the booker's detail as ``booked_attendees``)
    loses name, email and health data and records ``erased_at``; its place on the
    booking and its certificate (number, type, dates) stay, as for an erased user. The
    booker's audit log records who, when and why, without the values.

    Refused (409): an attendee with an account of their own (erase that user, which
    erases all their places), the booker's own place (position 1: erase the booker), an
    attendee already erased.
    """

    def erase(connection: Connection) -> AttendeeErasureResult:
        limit_lock_waits(connection)
        attendee = connection.execute(LOCK_ATTENDEE, {"attendee_id": attendee_id}).first()
        if attendee is None:
            raise NotFound(f"attendee {attendee_id} does not exist")
        if attendee.erased_at is not None:
            raise Conflict(
                f"attendee {attendee_id} was already erased on {attendee.erased_at:%Y-%m-%d}"
            )
        if attendee.user_id is not None:
            raise Conflict(
                f"attendee {attendee_id} is user {attendee.user_id}: erase user "
                f"{attendee.user_id} (POST /api/admin/users/{attendee.user_id}/erase), which "
                "erases every place they hold"
            )
        if attendee.position == 1:
            raise Conflict(
                f"attendee {attendee_id} is the booker of booking {attendee.booking_id}: the "
                "booking's contact details hold them too; erase the booker's user"
            )
        _refuse_personal_details_in_reason(
            request.reason, email=attendee.email, name=attendee.name, phone=None
        )
        erased_at = connection.execute(ERASE_ATTENDEE, {"attendee_id": attendee_id}).scalar_one()
        if attendee.booker_id is not None:
            audit(
                connection,
                attendee.booker_id,
                actor=actor,
                action="attendee_erasure",
                reason=request.reason,
                changes={
                    "attendee_id": attendee_id,
                    "booking_id": attendee.booking_id,
                    "position": attendee.position,
                },
            )
        return AttendeeErasureResult(
            attendee_id=attendee_id,
            booking_id=attendee.booking_id,
            erased_at=erased_at,
            audited_on_user_id=attendee.booker_id,
        )

    try:
        return run_transaction(erase)
    except DatabaseError as error:
        if sqlstate(error) == LOCK_NOT_AVAILABLE:
            raise Conflict(
                "this booking is being changed right now; try the erasure again in a minute"
            ) from None
        raise


# --- retention ------------------------------------------------------------------------

RETENTION_BATCH_USERS = 500
RETENTION_SOCKET_TIMEOUT_SECONDS = "300"
"""``DB_SOCKET_TIMEOUT_SECONDS`` for a retention run, the function's and the CLI's: at a
million bookings a dry run's count can take seconds on a cold cache."""
RETENTION_ACTOR = Actor("retention")
NORMALIZED_CONTACT_EMAIL = normalized_email_sql("b.contact_details ->> 'email'")
RETENTION_CANDIDATES = f"""
    SELECT u.id FROM users AS u
    WHERE u.role = 'customer' AND u.erased_at IS NULL AND u.merged_into IS NULL
      AND (u.created_at < :cutoff OR EXISTS (SELECT 1 FROM bookings AS b WHERE b.user_id = u.id))
      AND NOT EXISTS (
          SELECT 1 FROM bookings AS b
          JOIN course_schedules AS s ON s.id = b.course_schedule_id
          WHERE b.user_id = u.id AND (b.created_at >= :cutoff OR s.end_datetime >= :cutoff))
      AND NOT EXISTS (
          SELECT 1 FROM users AS m
          WHERE (m.id = u.id OR m.merged_into = u.id)
            AND m.email_normalized IN (
                SELECT {NORMALIZED_CONTACT_EMAIL} FROM bookings AS b
                WHERE b.user_id IS NULL AND b.created_at >= :cutoff))
"""
"""Customers with no booking (made, or on a session) since the cutoff, linked or not
yet linked (under their email or that of a record merged into them); one without any
booking only if created before the cutoff. A customer's record can be younger than
their bookings (one found by a checkout, then linked to old legacy bookings by the
backfill), so its age alone never keeps them. Staff are never erased by retention. A
merged duplicate goes with the customer it was merged into (``erase_users`` adds it;
the dry run's ``PLAN`` counts it)."""
CUTOFF = """
    SELECT now() - make_interval(years => :years) AS cutoff,
           now() - make_interval(days => :checkout_days) AS checkout_cutoff
"""
ABANDONED_CHECKOUT_DAYS = 7
"""Participant details kept with a checkout whose intent never became a booking are
dropped this long after the checkout: a booking is made from them within minutes (the
browser) or, at the latest, when Stripe's last webhook retry arrives (3 days); a
checkout is reused for 24 hours only."""
ABANDONED_CHECKOUTS = """
    FROM payment_checkouts
    WHERE participant_details IS NOT NULL AND created_at < :checkout_cutoff
"""
"""``ix_payment_checkouts_participants_created_at`` (migration 0023) serves it."""
COUNT_ABANDONED_CHECKOUTS = f"SELECT count(*) {ABANDONED_CHECKOUTS}"
DROP_ABANDONED_CHECKOUTS = f"""
    UPDATE payment_checkouts SET participant_details = NULL
    WHERE checkout_key IN (SELECT checkout_key {ABANDONED_CHECKOUTS})
      AND participant_details IS NOT NULL
"""
EXPIRED_ATTENDEES = """
    SELECT a.id, a.user_id IS NULL AND a.position > 1 AND a.erased_at IS NULL AS named_only
    FROM booking_attendees AS a
    JOIN bookings AS b ON b.id = a.booking_id
    JOIN course_schedules AS s ON s.id = b.course_schedule_id
    WHERE b.created_at < :cutoff AND s.end_datetime < :cutoff
      AND (num_nonnulls(a.dietary_requirements, a.medical_conditions) > 0
           OR (a.user_id IS NULL AND a.position > 1 AND a.erased_at IS NULL))
"""
"""Attendee rows of bookings made, and sessions run, before the cutoff that still hold
health data, or that name someone with no account (a participant known by name only,
whose one known booking this is: the customers' rule, no booking for the retention
period, applied to them)."""
COUNT_EXPIRED_ATTENDEES = f"SELECT count(*) FROM ({EXPIRED_ATTENDEES}) AS expired"
DROP_EXPIRED_ATTENDEES = f"""
    WITH expired AS ({EXPIRED_ATTENDEES})
    UPDATE booking_attendees AS a
    SET dietary_requirements = NULL, medical_conditions = NULL,
        first_name = CASE WHEN e.named_only THEN NULL ELSE a.first_name END,
        last_name = CASE WHEN e.named_only THEN NULL ELSE a.last_name END,
        email = CASE WHEN e.named_only THEN NULL ELSE a.email END,
        erased_at = CASE WHEN e.named_only THEN now() ELSE a.erased_at END
    FROM expired AS e
    WHERE a.id = e.id
"""
PLAN = f"""
    WITH survivors AS MATERIALIZED ({RETENTION_CANDIDATES}),
    candidates AS MATERIALIZED (
        SELECT id FROM survivors
        UNION
        SELECT id FROM users
        WHERE merged_into IN (SELECT id FROM survivors) AND erased_at IS NULL)
    SELECT
        (SELECT count(*) FROM candidates) AS customers,
        (SELECT count(*) FROM bookings AS b
         WHERE (b.user_id IN (SELECT id FROM candidates)
                OR (b.user_id IS NULL AND {NORMALIZED_CONTACT_EMAIL} IN (
                    SELECT u.email_normalized FROM users AS u
                    WHERE u.id IN (SELECT id FROM candidates))))
           AND b.contact_details::text <> :redacted) AS bookings,
        (SELECT count(*) FROM user_audit_log AS a
         WHERE a.user_id IN (SELECT id FROM candidates)
           AND a.action <> 'erasure' AND a.changes <> '{{}}'::jsonb) AS audit_entries
"""
NEXT_RETENTION_BATCH = f"""
    SELECT id FROM users WHERE id IN ({RETENTION_CANDIDATES})
    ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
"""
RESURFACED = f"""
    FROM bookings AS b
    JOIN erasure_suppressions AS x
      ON x.email_hash = rft_suppression_hash({NORMALIZED_CONTACT_EMAIL})
     AND b.created_at <= x.erased_at
    WHERE b.user_id IS NULL AND b.contact_details::text <> :redacted
"""
"""Unlinked bookings of erased people that reappeared after their erasure."""
COUNT_RESURFACED = f"SELECT count(*) {RESURFACED}"
CHECKOUT_RECORD_DAYS = 30
"""How long retention keeps a checkout record (``payment_checkouts``: the participants'
names, emails and health data, keyed by a hash no erasure can find for a checkout that
was never paid). It serves a repeated checkout for 24 hours and the booking made from
it (Stripe retries a webhook for 3 days); after that it only holds personal data."""
OLD_CHECKOUTS = (
    "FROM payment_checkouts WHERE created_at < now() - make_interval(days => :checkout_record_days)"
)
COUNT_OLD_CHECKOUTS = f"SELECT count(*) {OLD_CHECKOUTS}"
FORGET_OLD_CHECKOUTS = f"DELETE {OLD_CHECKOUTS}"
SCRUB_RESURFACED = f"""
    WITH resurfaced AS (SELECT b.id {RESURFACED}),
    redacted AS (
        UPDATE bookings SET contact_details = CAST(:redacted AS json)
        WHERE id IN (SELECT id FROM resurfaced) RETURNING id)
    INSERT INTO backfill_unlinkable (booking_id, reason, batch_id)
    SELECT id, 'erased', 'gdpr-retention' FROM redacted
    ON CONFLICT (booking_id) DO UPDATE SET reason = 'erased'
"""


@dataclass(frozen=True)
class RetentionReport:
    dry_run: bool
    cutoff: datetime
    customers: int
    """Customers erased (or, in a dry run, to erase)."""
    bookings: int
    """Their bookings whose contact details are (to be) redacted."""
    audit_entries: int
    resurfaced_bookings: int
    """Unlinked bookings of people erased earlier that reappeared, (to be) redacted."""
    abandoned_checkouts: int
    """Checkouts older than ``ABANDONED_CHECKOUT_DAYS`` whose participant details (never
    turned into attendees) are (to be) dropped."""
    attendees: int
    """Attendee rows of bookings older than the cutoff whose health data, or (for a
    participant known by name only) every detail, is (to be) dropped."""
    old_checkouts: int
    """Checkout records older than ``CHECKOUT_RECORD_DAYS``, (to be) deleted."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "cutoff": self.cutoff.isoformat(),
            "customers": self.customers,
            "bookings": self.bookings,
            "audit_entries": self.audit_entries,
            "resurfaced_bookings": self.resurfaced_bookings,
            "abandoned_checkouts": self.abandoned_checkouts,
            "attendees": self.attendees,
            "old_checkouts": self.old_checkouts,
        }


def run_retention(
    *, years: int, dry_run: bool, batch_users: int = RETENTION_BATCH_USERS
) -> RetentionReport:
    """Erase every customer without a booking in ``years`` years; drop the participant
    details of abandoned checkouts (``ABANDONED_CHECKOUT_DAYS``) and the health data on
    attendee rows of bookings older than ``years`` (with every detail of a participant
    known by name only); delete checkout records older than ``CHECKOUT_RECORD_DAYS``; or
    count them.

    Applied in transactions of ``batch_users`` customers (``SKIP LOCKED``, so a
    concurrent run or an admin's erasure is never waited on twice): an interrupted
    run keeps what it committed, and the next run carries on. Safe to run nightly.
    """
    parameters = {
        "years": years,
        "checkout_days": ABANDONED_CHECKOUT_DAYS,
        "whitespace": EMAIL_WHITESPACE,
        "redacted": REDACTED_CONTACT_DETAILS,
        "checkout_record_days": CHECKOUT_RECORD_DAYS,
    }
    cutoffs = run_transaction(lambda c: c.execute(CUTOFF, parameters).one())
    cutoff = cutoffs.cutoff
    parameters |= {"cutoff": cutoff, "checkout_cutoff": cutoffs.checkout_cutoff}
    if dry_run:

        def plan(connection: Connection) -> RetentionReport:
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            counts = connection.execute(PLAN, parameters).one()
            resurfaced = connection.execute(COUNT_RESURFACED, parameters).scalar_one()
            checkouts = connection.execute(COUNT_ABANDONED_CHECKOUTS, parameters).scalar_one()
            attendees = connection.execute(COUNT_EXPIRED_ATTENDEES, parameters).scalar_one()
            old_checkouts = connection.execute(COUNT_OLD_CHECKOUTS, parameters).scalar_one()
            return RetentionReport(
                True,
                cutoff,
                counts.customers,
                counts.bookings,
                counts.audit_entries,
                resurfaced,
                checkouts,
                attendees,
                old_checkouts,
            )

        return run_transaction(plan)

    # Before the customers: an erasure scrubs its person's attendances too, and these
    # counts must be the dry run's.
    checkouts = run_transaction(
        lambda connection: connection.execute(DROP_ABANDONED_CHECKOUTS, parameters).rowcount
    )
    attendees = run_transaction(
        lambda connection: connection.execute(DROP_EXPIRED_ATTENDEES, parameters).rowcount
    )
    reason = f"retention: no booking for {years} years"
    customers = bookings = audit_entries = 0
    while True:

        def erase_batch(connection: Connection) -> ErasureCounts:
            limit_lock_waits(connection)
            ids = connection.execute(
                NEXT_RETENTION_BATCH, parameters | {"batch": batch_users}
            ).scalars()
            if not ids:
                return ErasureCounts(0, 0, 0)
            return erase_users(connection, ids, actor=RETENTION_ACTOR, reason=reason)

        counts = run_transaction(erase_batch)
        if not counts.users:
            break
        customers += counts.users
        bookings += counts.bookings
        audit_entries += counts.audit_entries

    def scrub_resurfaced(connection: Connection) -> int:
        connection.execute(LOCK_ERASURES)
        return connection.execute(SCRUB_RESURFACED, parameters).rowcount

    resurfaced = run_transaction(scrub_resurfaced)
    old_checkouts = run_transaction(
        lambda connection: connection.execute(FORGET_OLD_CHECKOUTS, parameters).rowcount
    )
    return RetentionReport(
        False,
        cutoff,
        customers,
        bookings,
        audit_entries,
        resurfaced,
        checkouts,
        attendees,
        old_checkouts,
    )
