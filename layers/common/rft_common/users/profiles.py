"""One user for the admin: the detail page's object, booking history, edits.

The detail is ONE flat snake_case object, because that is what the admin dashboard's
user page reads (``user.created_at``, ``user.bookings[i].start_datetime``...); the list
keeps camelCase rows, as the list page reads those. The history and edits use the
detail's snake_case names.

Reads run in one read-only snapshot, so the statistics and the history agree. An
edit runs in one transaction with the user's row locked: the audit row is written
with the change or not at all, and records exactly what each edit replaced even
when admins edit the same user at once.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from rft_common.consent.service import ADMIN, ConsentState, consent_states, record_consent
from rft_common.core.emails import normalize_email
from rft_common.core.errors import Conflict, InvalidRequest, MergedAway, NotFound, Unauthorized
from rft_common.core.formatting import money
from rft_common.core.vocabulary import (
    CONSENT_PURPOSES,
    EXPLICIT_CONSENT,
    OBJECTION,
    STAFF_ROLES,
)
from rft_common.customers.audit import Actor, audit
from rft_common.customers.identity import FILLABLE_FIELDS
from rft_common.db.paging import (
    DEFAULT_PAGE_SIZE,
    READ_ONLY_SNAPSHOT,
    decode_cursor,
    encode_cursor,
    query_fingerprint,
)
from rft_common.db.postgres import UNIQUE_VIOLATION, Connection, run_transaction, sqlstate
from rft_common.staff.tokens import Staff
from rft_common.users.duplicates import (
    POSSIBLE_DUPLICATES_SHOWN,
    PossibleDuplicate,
    possible_duplicates,
)
from rft_common.users.listing import CustomerType, Role
from rft_common.users.reminder_history import REMINDERS_SHOWN, ReminderEntry, reminder_history

UPCOMING_SESSIONS_SHOWN = 10
ATTENDANCES_SHOWN = 20
BOOKED_ATTENDEES_SHOWN = 50


class UserBooking(BaseModel):
    """A booking as the detail page's history table reads it."""

    id: int
    booking_reference: str
    course_name: str
    start_datetime: datetime = Field(description="When the session starts")
    end_datetime: datetime
    venue_name: str
    payment_amount: str = Field(description="GBP, a decimal string", examples=["75.00"])
    payment_status: str
    status: str
    number_of_attendees: int
    created_at: datetime = Field(description="When the booking was made")


class BookingPage(BaseModel):
    data: list[UserBooking] = Field(description="Newest booking first")
    total: int = Field(description="Every booking of the user, cancelled ones included")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class Attendance(BaseModel):
    """A place the person took, or will take, on a booking: whoever booked and paid."""

    attendee_id: int
    booking_id: int
    booking_reference: str
    course_name: str
    course_type: str = Field(description="The booking site's code, e.g. EFAW")
    start_datetime: datetime
    end_datetime: datetime
    booking_status: str
    booked_by_id: int | None = Field(description="Who made (and paid for) the booking")
    booked_by_name: str | None
    certificate_number: str | None = Field(description="Null until the session completes")
    certificate_status: str | None = Field(description="active, expired or revoked")
    certificate_expires_on: date | None


class BookedAttendee(BaseModel):
    """Someone else on one of the user's bookings (positions 2..; the booker is 1)."""

    attendee_id: int = Field(
        description="For `POST /api/admin/attendees/{attendee_id}/erase` when the person "
        "has no account of their own"
    )
    booking_id: int
    booking_reference: str
    course_name: str
    start_datetime: datetime
    position: int
    name: str | None = Field(description="As the booker gave it; null once erased")
    email: str | None
    customer_id: int | None = Field(description="Their own user; null if known by name only")
    erased: bool
    certificate_number: str | None


class UserDetail(BaseModel):
    """Everything the admin may see about a user, flat; never credentials."""

    id: int
    email: str
    name: str | None
    role: Role
    phone: str | None
    company_name: str | None
    customer_type: CustomerType | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    county: str | None
    postcode: str | None
    newsletter_subscribed: bool
    marketing_consent: bool = Field(
        description="May be sent marketing email: explicit consent or a soft opt-in "
        "(``may_write`` of the marketing_email consent)"
    )
    consents: list[ConsentState] = Field(
        description="The current consent for each purpose (marketing_email, "
        "renewal_reminders), from the consent history (docs/reminders.md)"
    )
    notes: str | None
    is_active: bool = Field(description="Staff can be deactivated; customers are active")
    last_login: datetime | None = Field(description="Latest admin sign-in (staff only)")
    created_at: datetime
    updated_at: datetime
    total_bookings: int = Field(description="Bookings whose status is not cancelled")
    total_spent: str = Field(description="GBP paid and not refunded", examples=["150.00"])
    first_booking_date: datetime | None
    last_booking_date: datetime | None
    upcoming_sessions: list[UserBooking] = Field(
        description=f"The next {UPCOMING_SESSIONS_SHOWN} sessions booked, soonest first"
    )
    upcoming_sessions_total: int = Field(description="Active bookings on sessions yet to start")
    bookings: list[UserBooking] = Field(
        description="The first page of the booking history, newest first"
    )
    bookings_total: int = Field(description="Every booking of the user, cancelled ones included")
    bookings_next_cursor: str | None = Field(
        description="Pass as `cursor` to /bookings for the next page; null when that was all"
    )
    possible_duplicates: list[PossibleDuplicate] = Field(
        description="Customers who may be the same person, best first (at most "
        f"{POSSIBLE_DUPLICATES_SHOWN}; see /api/admin/users/duplicates)"
    )
    attended_courses: list[Attendance] = Field(
        description=f"Who learned: the latest {ATTENDANCES_SHOWN} courses the person attends "
        "or attended, on anyone's booking (theirs included), latest session first, with "
        "the certificate each earned"
    )
    attended_courses_total: int
    booked_attendees: list[BookedAttendee] = Field(
        description=f"Who they paid for: the other people on their bookings (the latest "
        f"{BOOKED_ATTENDEES_SHOWN}, newest booking first); their spend counts here, the "
        "courses count for those people"
    )
    booked_attendees_total: int
    renewal_reminders: list[ReminderEntry] = Field(
        default_factory=list,
        description=f"The latest {REMINDERS_SHOWN} renewal reminders to or about them, "
        "newest first",
    )


PROFILE = """
    SELECT id, email, name, role, phone, company_name, customer_type, address_line1,
           address_line2, city, county, postcode, newsletter_subscribed, marketing_consent,
           notes, is_active, last_login_at, created_at, updated_at, total_bookings,
           total_spent, first_booking_at, last_booking_at, merged_into
    FROM users WHERE id = :user_id
"""
BOOKING_COLUMNS = """
    b.id, b.booking_reference, c.name AS course_name, s.start_datetime, s.end_datetime,
    s.venue AS venue_name, b.status, b.payment_status, b.payment_amount,
    b.number_of_attendees, b.created_at
"""
BOOKINGS_FROM = """
    FROM bookings AS b
    JOIN course_schedules AS s ON s.id = b.course_schedule_id
    JOIN courses AS c ON c.id = s.course_id
"""
UPCOMING_FILTER = """
    b.user_id = :user_id AND b.status IN ('pending', 'confirmed')
    AND s.status <> 'cancelled' AND s.start_datetime > now()
"""
UPCOMING = f"""
    SELECT {BOOKING_COLUMNS}, count(*) OVER () AS upcoming
    {BOOKINGS_FROM}
    WHERE {UPCOMING_FILTER}
    ORDER BY s.start_datetime, b.id
    LIMIT {UPCOMING_SESSIONS_SHOWN}
"""
# Newest first; (created_at, id) is the keyset. ix_bookings_user_id_created_at serves it.
HISTORY_PAGE = f"""
    SELECT {BOOKING_COLUMNS}
    {BOOKINGS_FROM}
    WHERE b.user_id = :user_id
      AND (CAST(:after_created_at AS timestamptz) IS NULL
           OR (b.created_at, b.id) < (CAST(:after_created_at AS timestamptz), :after_id))
    ORDER BY b.created_at DESC, b.id DESC
    LIMIT :limit_plus_one
"""
HISTORY_TOTAL = "SELECT count(*) FROM bookings WHERE user_id = :user_id"
# ix_booking_attendees_user_id finds their places; a person has few.
ATTENDANCES = f"""
    SELECT a.id AS attendee_id, b.id AS booking_id, b.booking_reference,
           c.name AS course_name, c.course_type, s.start_datetime, s.end_datetime,
           b.status AS booking_status, b.user_id AS booked_by_id,
           booker.name AS booked_by_name, cert.certificate_number,
           cert.status AS certificate_status, cert.expires_on AS certificate_expires_on,
           count(*) OVER () AS attendances
    FROM booking_attendees AS a
    JOIN bookings AS b ON b.id = a.booking_id
    JOIN course_schedules AS s ON s.id = b.course_schedule_id
    JOIN courses AS c ON c.id = s.course_id
    LEFT JOIN users AS booker ON booker.id = b.user_id
    LEFT JOIN certificates AS cert ON cert.attendee_id = a.id
    WHERE a.user_id = :user_id
    ORDER BY s.start_datetime DESC, a.id DESC
    LIMIT {ATTENDANCES_SHOWN}
"""
# Their bookings newest first (ix_bookings_user_id_created_at), then each booking's places.
BOOKED_ATTENDEES = f"""
    SELECT a.id AS attendee_id, b.id AS booking_id, b.booking_reference,
           c.name AS course_name, s.start_datetime, a.position,
           nullif(btrim(concat_ws(' ', a.first_name, a.last_name)), '') AS name, a.email,
           a.user_id AS customer_id, a.erased_at IS NOT NULL AS erased,
           cert.certificate_number, count(*) OVER () AS booked
    FROM booking_attendees AS a
    JOIN bookings AS b ON b.id = a.booking_id
    JOIN course_schedules AS s ON s.id = b.course_schedule_id
    JOIN courses AS c ON c.id = s.course_id
    LEFT JOIN certificates AS cert ON cert.attendee_id = a.id
    WHERE b.user_id = :user_id AND a.position > 1
    ORDER BY b.created_at DESC, b.id DESC, a.position
    LIMIT {BOOKED_ATTENDEES_SHOWN}
"""


def _booking(row: Any) -> UserBooking:
    return UserBooking(
        id=row.id,
        booking_reference=row.booking_reference,
        course_name=row.course_name,
        start_datetime=row.start_datetime,
        end_datetime=row.end_datetime,
        venue_name=row.venue_name,
        payment_amount=money(row.payment_amount),
        payment_status=row.payment_status,
        status=row.status,
        number_of_attendees=row.number_of_attendees,
        created_at=row.created_at,
    )


def _history_fingerprint(user_id: int) -> str:
    return query_fingerprint(["bookings", user_id])


def _read_profile(connection: Connection, user_id: int, resource: str = "") -> Any:
    """The user's row; a merged duplicate answers with its survivor's ``resource``."""
    row = connection.execute(PROFILE, {"user_id": user_id}).first()
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    if row.merged_into is not None:
        location = f"/api/admin/users/{row.merged_into}{resource}"
        raise MergedAway(user_id, row.merged_into, location)
    return row


def _history_page(
    connection: Connection, user_id: int, limit: int, cursor: str | None
) -> BookingPage:
    after_created_at, after_id = None, None
    if cursor is not None:
        position = decode_cursor(cursor, _history_fingerprint(user_id))
        try:
            after_created_at, after_id = position
            after_created_at = datetime.fromisoformat(after_created_at)
            if not isinstance(after_id, int) or after_created_at.tzinfo is None:
                raise ValueError
        except (ValueError, TypeError):
            raise InvalidRequest("not a cursor issued by this API", field="cursor") from None
    rows = connection.execute(
        HISTORY_PAGE,
        {
            "user_id": user_id,
            "after_created_at": after_created_at,
            "after_id": after_id,
            "limit_plus_one": limit + 1,
        },
    ).all()
    page = rows[:limit]
    next_cursor = (
        encode_cursor(_history_fingerprint(user_id), [page[-1].created_at, page[-1].id])
        if len(rows) > limit
        else None
    )
    return BookingPage(
        data=[_booking(row) for row in page],
        total=connection.execute(HISTORY_TOTAL, {"user_id": user_id}).scalar_one(),
        next_cursor=next_cursor,
    )


def _read_detail(connection: Connection, user_id: int, bookings_limit: int) -> UserDetail:
    user = _read_profile(connection, user_id)
    upcoming = connection.execute(UPCOMING, {"user_id": user_id}).all()
    history = _history_page(connection, user_id, bookings_limit, None)
    attended = connection.execute(ATTENDANCES, {"user_id": user_id}).all()
    booked = connection.execute(BOOKED_ATTENDEES, {"user_id": user_id}).all()
    return UserDetail(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        phone=user.phone,
        company_name=user.company_name,
        customer_type=user.customer_type,
        address_line1=user.address_line1,
        address_line2=user.address_line2,
        city=user.city,
        county=user.county,
        postcode=user.postcode,
        newsletter_subscribed=user.newsletter_subscribed,
        marketing_consent=user.marketing_consent,
        consents=consent_states(connection, user_id),
        notes=user.notes,
        is_active=user.is_active,
        last_login=user.last_login_at,
        created_at=user.created_at,
        updated_at=user.updated_at,
        total_bookings=user.total_bookings,
        total_spent=money(user.total_spent),
        first_booking_date=user.first_booking_at,
        last_booking_date=user.last_booking_at,
        upcoming_sessions=[_booking(row) for row in upcoming],
        upcoming_sessions_total=upcoming[0].upcoming if upcoming else 0,
        bookings=history.data,
        bookings_total=history.total,
        bookings_next_cursor=history.next_cursor,
        possible_duplicates=possible_duplicates(connection, user_id),
        attended_courses=[Attendance(**_without(row, "attendances")) for row in attended],
        attended_courses_total=attended[0].attendances if attended else 0,
        booked_attendees=[BookedAttendee(**_without(row, "booked")) for row in booked],
        booked_attendees_total=booked[0].booked if booked else 0,
        renewal_reminders=reminder_history(connection, user_id),
    )


def _without(row: Any, column: str) -> dict[str, Any]:
    return {name: value for name, value in row._asdict().items() if name != column}


def get_user_detail(user_id: int, *, bookings_limit: int = DEFAULT_PAGE_SIZE) -> UserDetail:
    def read(connection: Connection) -> UserDetail:
        connection.execute(READ_ONLY_SNAPSHOT)
        return _read_detail(connection, user_id, bookings_limit)

    return run_transaction(read)


def list_user_bookings(user_id: int, *, limit: int, cursor: str | None) -> BookingPage:
    def read(connection: Connection) -> BookingPage:
        connection.execute(READ_ONLY_SNAPSHOT)
        _read_profile(connection, user_id, "/bookings")
        return _history_page(connection, user_id, limit, cursor)

    return run_transaction(read)


# --- edits -----------------------------------------------------------------------------

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
UK_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})")
PHONE = re.compile(r"\+?[0-9 ()\-.]{7,25}")


def _one_printable_line(value: str) -> str:
    if CONTROL_CHARACTERS.search(value) or "\n" in value or "\r" in value or "\t" in value:
        raise ValueError("must be one line of text, without control characters")
    return value


def _printable(value: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    return value


def _phone(value: str) -> str:
    digits = sum(character.isdigit() for character in value)
    if not PHONE.fullmatch(value) or not 7 <= digits <= 15:
        raise ValueError("must be a phone number: 7 to 15 digits, spaces, +, -, ( and )")
    return value


def _postcode(value: str) -> str:
    match = UK_POSTCODE.fullmatch(value.upper().replace(" ", "").replace("\u00a0", ""))
    if match is None:
        raise ValueError("must be a UK postcode, for example S1 2HE")
    return f"{match[1]} {match[2]}"


def _email(value: str) -> str:
    return normalize_email(value)


# Trimmed and not blank; every one of them must also be one printable line (below).
Text50 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text254 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
Text255 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
ONE_LINE_FIELDS = (
    "name", "email", "phone", "company_name", "address_line1", "address_line2", "city", "county",
    "postcode",
)  # fmt: skip


class UserUpdate(BaseModel):
    """Contact and preference fields an admin may change, named as in the detail;
    only those sent are changed.

    ``null`` clears an optional field. ``is_active`` deactivates (or reactivates) a
    staff account. Anything else (role, statistics, ids, dates, unknown names) is
    refused with 422 naming the field.
    """

    model_config = ConfigDict(extra="forbid")

    name: Text255 | None = None
    email: Annotated[Text254, AfterValidator(_email)] | None = Field(
        default=None, description="Stored normalised; must stay unique"
    )
    phone: Annotated[Text50, AfterValidator(_phone)] | None = None
    company_name: Text255 | None = None
    customer_type: CustomerType | None = None
    address_line1: Text255 | None = None
    address_line2: Text255 | None = None
    city: Text100 | None = None
    county: Text100 | None = None
    postcode: Annotated[Text50, AfterValidator(_postcode)] | None = Field(
        default=None, description="A UK postcode, stored as e.g. S1 2HE"
    )
    marketing_consent: bool | None = None
    newsletter_subscribed: bool | None = None
    is_active: bool | None = Field(
        default=None,
        description="Staff only; deactivating signs the staff member out everywhere",
    )
    notes: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, max_length=5000),
            AfterValidator(_printable),
        ]
        | None
    ) = None

    @field_validator(*ONE_LINE_FIELDS)
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        return _one_printable_line(value) if isinstance(value, str) else value

    @field_validator("name", "email", "marketing_consent", "newsletter_subscribed", "is_active")
    @classmethod
    def _required_fields_cannot_be_cleared(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value

    def changes_requested(self) -> dict[str, Any]:
        """Column -> new value, for the fields present in the request."""
        if not self.model_fields_set:
            raise InvalidRequest("send at least one field to change", field="body")
        return {field: getattr(self, field) for field in self.model_fields_set}


LOCK_FOR_EDIT = "SELECT * FROM users WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE"
"""The user edited and the admin editing, locked in id order (two admins editing each
other cannot deadlock): a deactivation, demotion or sign-out of the admin waits for the
edit, or the edit sees it and is refused."""
HOLDER_OF_EMAIL = (
    "SELECT coalesce(merged_into, id) AS id, merged_into IS NOT NULL AS alias "
    "FROM users WHERE email_normalized = :email"
)


def update_user(user_id: int, update: UserUpdate, *, actor: Staff) -> UserDetail:
    """Apply ``update`` and audit it (``actor``'s email and id), in one transaction;
    return the detail after it.

    Unchanged values are not written or audited; an edit that changes nothing
    returns the detail as it is.
    """
    requested = update.changes_requested()

    def edit(connection: Connection) -> UserDetail:
        locked = connection.execute(LOCK_FOR_EDIT, {"ids": [user_id, actor.id]}).all()
        rows = {row.id: row for row in locked}
        if not actor.still_admin(rows.get(actor.id)):
            raise Unauthorized("this session has ended; sign in again")
        current = rows.get(user_id)
        if current is None:
            raise NotFound(f"user {user_id} does not exist")
        if current.merged_into is not None:
            raise Conflict(
                f"user {user_id} was merged into user {current.merged_into}; edit that user"
            )
        if current.erased_at is not None:
            # Erasure is for good: an edit must not put a person back into the record.
            raise Conflict(f"user {user_id} was erased (data protection) and cannot be edited")
        changes = {
            column: value
            for column, value in requested.items()
            if getattr(current, column) != value
        }
        if "is_active" in changes:
            _check_deactivation(current, actor, active=changes["is_active"])
        if changes:
            columns = {name: value for name, value in changes.items() if name not in CONSENTS}
            if columns:
                _write(connection, user_id, columns)
            if "marketing_consent" in changes:
                _record_consent_edit(connection, user_id, changes["marketing_consent"], actor)
            audit(
                connection,
                user_id,
                actor=Actor(actor.email, actor.id),
                action="edit",
                changes={
                    column: {"old": getattr(current, column), "new": value}
                    for column, value in sorted(changes.items())
                },
            )
        return _read_detail(connection, user_id, DEFAULT_PAGE_SIZE)

    return run_transaction(edit)


def _check_deactivation(current: Any, actor: Staff, *, active: bool) -> None:
    if current.role not in STAFF_ROLES:
        raise InvalidRequest(
            "only staff accounts can be deactivated; customers are always active",
            field="is_active",
        )
    if current.id == actor.id:
        raise InvalidRequest("you cannot change your own account's active state", field="is_active")


CONSENTS = {"marketing_consent"}
"""Fields the consent history writes (``users.marketing_consent`` is its cache)."""


def _record_consent_edit(connection: Connection, user_id: int, given: bool, actor: Staff) -> None:
    """An admin's ``marketing_consent`` is an event for both purposes (the column stood
    for both before the history): explicit consent, or an objection (withdrawn through
    staff, remembered until new consent), with the admin as actor."""
    basis = EXPLICIT_CONSENT if given else OBJECTION
    record_consent(connection, [user_id], CONSENT_PURPOSES, basis, ADMIN, actor_id=actor.id)


def _write(connection: Connection, user_id: int, changes: dict[str, Any]) -> None:
    from pg8000.exceptions import DatabaseError

    # The columns are UserUpdate's field names (it refuses any other): never request text.
    assignments = ", ".join(f"{column} = :{column}" for column in changes)
    if changes.keys() & set(FILLABLE_FIELDS):  # an admin's details: no booking replaces them
        assignments += ", details_source = 'admin'"
    statement = f"UPDATE users SET {assignments}, updated_at = now() WHERE id = :user_id"
    # A savepoint, so that a taken email can be named before the transaction ends.
    connection.execute("SAVEPOINT user_edit")
    try:
        connection.execute(statement, {"user_id": user_id, **changes})
    except DatabaseError as error:
        if sqlstate(error) != UNIQUE_VIOLATION or "email" not in changes:
            raise
        connection.execute("ROLLBACK TO SAVEPOINT user_edit")
        holder = connection.execute(HOLDER_OF_EMAIL, {"email": changes["email"]}).one()
        kind = "an alias (merged email)" if holder.alias else "the email"
        raise Conflict(
            f"{changes['email']} is already {kind} of user {holder.id}", field="email"
        ) from None
    connection.execute("RELEASE SAVEPOINT user_edit")
