"""One user for the admin: profile, statistics, upcoming sessions, booking history, edits.

Reads run in one read-only snapshot, so the statistics and the history agree. An
edit runs in one transaction with the user's row locked: the audit row is written
with the change or not at all, and records exactly what each edit replaced even
when admins edit the same user at once.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic.alias_generators import to_camel
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import IntegrityError

from rft_common.admin.cursors import decode_cursor, encode_cursor, query_fingerprint
from rft_common.admin.listing import (
    DEFAULT_PAGE_SIZE,
    READ_ONLY_SNAPSHOT,
    CustomerType,
    UserSummary,
    money,
    summary_from_row,
)
from rft_common.db import run_transaction, sqlstate
from rft_common.emails import normalize_email
from rft_common.errors import Conflict, InvalidRequest, NotFound

UNIQUE_VIOLATION = "23505"
UPCOMING_SESSIONS_SHOWN = 10


class UserProfile(UserSummary):
    """Everything the dashboard may show or edit about a user; never credentials."""

    address_line1: str | None
    address_line2: str | None
    marketing_consent: bool
    notes: str | None
    updated_at: datetime


class UserStatistics(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    total_bookings: int = Field(description="Bookings whose status is not cancelled")
    total_spent: str = Field(description="GBP paid and not refunded", examples=["150.00"])
    first_booking_date: datetime | None
    last_booking_date: datetime | None
    upcoming_sessions: int = Field(description="Active bookings on sessions yet to start")


class BookingSummary(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    booking_id: int
    booking_reference: str
    course_name: str
    session_start: datetime
    session_end: datetime
    venue: str
    status: str
    payment_status: str
    amount: str = Field(description="GBP, a decimal string", examples=["75.00"])
    attendees: int
    booked_at: datetime


class BookingPage(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    items: list[BookingSummary] = Field(description="Newest booking first")
    total: int = Field(description="Every booking of the user, cancelled ones included")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class UserDetail(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    profile: UserProfile
    statistics: UserStatistics
    upcoming_sessions: list[BookingSummary] = Field(
        description=f"The next {UPCOMING_SESSIONS_SHOWN} sessions booked, soonest first"
    )
    bookings: BookingPage = Field(description="The first page of the booking history")


PROFILE = text("""
    SELECT id, email, name, phone, role, customer_type, company_name, city, postcode,
           newsletter_subscribed, created_at, total_bookings, total_spent, last_booking_at,
           address_line1, address_line2, marketing_consent, notes, updated_at,
           first_booking_at
    FROM users WHERE id = :user_id
""")
BOOKING_COLUMNS = """
    b.id AS booking_id, b.booking_reference, c.name AS course_name,
    s.start_datetime AS session_start, s.end_datetime AS session_end, s.venue,
    b.status, b.payment_status, b.payment_amount, b.number_of_attendees, b.created_at
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
UPCOMING = text(f"""
    SELECT {BOOKING_COLUMNS}, count(*) OVER () AS upcoming
    {BOOKINGS_FROM}
    WHERE {UPCOMING_FILTER}
    ORDER BY s.start_datetime, b.id
    LIMIT {UPCOMING_SESSIONS_SHOWN}
""")
# Newest first; (created_at, id) is the keyset. ix_bookings_user_id_created_at serves it.
HISTORY_PAGE = text(f"""
    SELECT {BOOKING_COLUMNS}
    {BOOKINGS_FROM}
    WHERE b.user_id = :user_id
      AND (CAST(:after_created_at AS timestamptz) IS NULL
           OR (b.created_at, b.id) < (CAST(:after_created_at AS timestamptz), :after_id))
    ORDER BY b.created_at DESC, b.id DESC
    LIMIT :limit_plus_one
""")
HISTORY_TOTAL = text("SELECT count(*) FROM bookings WHERE user_id = :user_id")


def _booking(row: Any) -> BookingSummary:
    return BookingSummary(
        booking_id=row.booking_id,
        booking_reference=row.booking_reference,
        course_name=row.course_name,
        session_start=row.session_start,
        session_end=row.session_end,
        venue=row.venue,
        status=row.status,
        payment_status=row.payment_status,
        amount=money(row.payment_amount),
        attendees=row.number_of_attendees,
        booked_at=row.created_at,
    )


def _profile(row: Any) -> UserProfile:
    return UserProfile(
        **summary_from_row(row).model_dump(),
        address_line1=row.address_line1,
        address_line2=row.address_line2,
        marketing_consent=row.marketing_consent,
        notes=row.notes,
        updated_at=row.updated_at,
    )


def _history_fingerprint(user_id: int) -> str:
    return query_fingerprint(["bookings", user_id])


def _read_profile(connection: Connection, user_id: int) -> Any:
    row = connection.execute(PROFILE, {"user_id": user_id}).first()
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
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
        encode_cursor(_history_fingerprint(user_id), [page[-1].created_at, page[-1].booking_id])
        if len(rows) > limit
        else None
    )
    return BookingPage(
        items=[_booking(row) for row in page],
        total=connection.execute(HISTORY_TOTAL, {"user_id": user_id}).scalar_one(),
        next_cursor=next_cursor,
    )


def get_user_detail(user_id: int, *, bookings_limit: int = DEFAULT_PAGE_SIZE) -> UserDetail:
    def read(connection: Connection) -> UserDetail:
        connection.execute(READ_ONLY_SNAPSHOT)
        user = _read_profile(connection, user_id)
        upcoming = connection.execute(UPCOMING, {"user_id": user_id}).all()
        return UserDetail(
            profile=_profile(user),
            statistics=UserStatistics(
                total_bookings=user.total_bookings,
                total_spent=money(user.total_spent),
                first_booking_date=user.first_booking_at,
                last_booking_date=user.last_booking_at,
                upcoming_sessions=upcoming[0].upcoming if upcoming else 0,
            ),
            upcoming_sessions=[_booking(row) for row in upcoming],
            bookings=_history_page(connection, user_id, bookings_limit, None),
        )

    return run_transaction(read)


def list_user_bookings(user_id: int, *, limit: int, cursor: str | None) -> BookingPage:
    def read(connection: Connection) -> BookingPage:
        connection.execute(READ_ONLY_SNAPSHOT)
        _read_profile(connection, user_id)
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
    "name", "email", "phone", "company_name", "address_line1", "address_line2", "city", "postcode",
)  # fmt: skip


class UserUpdate(BaseModel):
    """Contact and preference fields an admin may change; only those sent are changed.

    ``null`` clears an optional field. Anything else (role, statistics, ids, dates,
    unknown names) is refused with 422 naming the field.
    """

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")

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
    postcode: Annotated[Text50, AfterValidator(_postcode)] | None = Field(
        default=None, description="A UK postcode, stored as e.g. S1 2HE"
    )
    marketing_consent: bool | None = None
    newsletter_subscribed: bool | None = None
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

    @field_validator("name", "email", "marketing_consent", "newsletter_subscribed")
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


LOCK_FOR_EDIT = text("SELECT * FROM users WHERE id = :user_id FOR NO KEY UPDATE")
HOLDER_OF_EMAIL = text("SELECT id FROM users WHERE email_normalized = :email")
AUDIT = text("""
    INSERT INTO user_audit_log (user_id, actor, changes)
    VALUES (:user_id, :actor, CAST(:changes AS jsonb))
""")


def update_user(user_id: int, update: UserUpdate, *, actor: str) -> UserProfile:
    """Apply ``update`` and audit it, in one transaction; return the new profile.

    Unchanged values are not written or audited; an edit that changes nothing
    returns the profile as it is.
    """
    requested = update.changes_requested()

    def edit(connection: Connection) -> UserProfile:
        current = connection.execute(LOCK_FOR_EDIT, {"user_id": user_id}).first()
        if current is None:
            raise NotFound(f"user {user_id} does not exist")
        changes = {
            column: value
            for column, value in requested.items()
            if getattr(current, column) != value
        }
        if changes:
            _write(connection, user_id, changes)
            audit = {
                to_camel(column): {"old": getattr(current, column), "new": value}
                for column, value in sorted(changes.items())
            }
            connection.execute(
                AUDIT, {"user_id": user_id, "actor": actor, "changes": json.dumps(audit)}
            )
        return _profile(_read_profile(connection, user_id))

    return run_transaction(edit)


def _write(connection: Connection, user_id: int, changes: dict[str, Any]) -> None:
    assignments = ", ".join(f"{column} = :{column}" for column in changes)
    statement = text(f"UPDATE users SET {assignments}, updated_at = now() WHERE id = :user_id")
    statement = statement.bindparams(*(bindparam(column) for column in changes))
    try:
        # A savepoint, so that a taken email can be named before the transaction ends.
        with connection.begin_nested():
            connection.execute(statement, {"user_id": user_id, **changes})
    except IntegrityError as error:
        if sqlstate(error) != UNIQUE_VIOLATION or "email" not in changes:
            raise
        holder = connection.execute(HOLDER_OF_EMAIL, {"email": changes["email"]}).scalar()
        raise Conflict(
            f"{changes['email']} is already the email of user {holder}", field="email"
        ) from None
