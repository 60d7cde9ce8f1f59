"""Certificate renewals: whose certificate runs out soon, read from ``certificates``.

A row is an active certificate (``certificates.service``: one per attendee of a
completed session) such that:

- it expires within the window, today to today + ``within_days`` inclusive (UK dates);
- its holder has not been booked again **as an attendee** onto a later session of the
  same course type (a booking pending, confirmed or completed; a cancelled booking or
  a no-show is not a renewal), whoever made that booking;
- its holder, if linked to a user, is a customer (not staff) and not erased. An
  attendee recorded by name only (no email) is listed, unless erased: the booker is
  whom to ask.

``may_contact`` is the holder's ``marketing_consent``: a reminder to book again is
marketing, so only customers who agreed may be sent one (false for an attendee with no
account). Everyone is listed, so that the office sees the whole picture.

Speed: the certificates due are found with only the joins the rule needs, walking the
partial index ``ix_certificates_active_expires_on`` in ``(expires_on, certificate id)``
order (the page's keyset) and probing, per certificate, for a later attendance
(``ix_booking_attendees_user_id``); the rows shown are then joined for the page's rows
only. The joins run in the order written (``KEEP_JOIN_ORDER``). The total is counted up
to ``COUNT_LIMIT`` (``total_is_exact`` false beyond): bounded like the users list's, but
lower, because each certificate counted costs its renewal probe (about 40 µs; 10,000
of them would take 400 ms). The CSV export holds the whole window.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from rft_common.core.errors import InvalidRequest
from rft_common.core.vocabulary import BUSINESS_TIME_ZONE
from rft_common.db.paging import (
    READ_ONLY_SNAPSHOT,
    decode_cursor,
    encode_cursor,
    query_fingerprint,
)
from rft_common.db.postgres import Connection, run_transaction

DEFAULT_WITHIN_DAYS = 90
MAX_WITHIN_DAYS = 3 * 366
COUNT_LIMIT = 100

PARAMETERS = """
    WITH parameters AS (
        SELECT today, today + CAST(:within_days AS integer) AS last_day
        FROM (SELECT coalesce(CAST(:today AS date),
                              (now() AT TIME ZONE CAST(:time_zone AS text))::date) AS today
        ) AS given
    )
"""
DUE = """
    FROM parameters AS p
    JOIN certificates AS cert
      ON cert.status = 'active' AND cert.expires_on BETWEEN p.today AND p.last_day
    LEFT JOIN users AS u ON u.id = cert.user_id
    JOIN booking_attendees AS a ON a.id = cert.attendee_id
    JOIN bookings AS b ON b.id = cert.booking_id
    JOIN course_schedules AS s ON s.id = b.course_schedule_id
    WHERE (u.id IS NULL OR u.role = 'customer' AND u.erased_at IS NULL)
      AND a.erased_at IS NULL
      AND (CAST(:may_contact AS boolean) IS NULL
           OR coalesce(u.marketing_consent, false) = :may_contact)
      AND NOT EXISTS (
          SELECT 1
          FROM booking_attendees AS again
          JOIN bookings AS later ON later.id = again.booking_id
          JOIN course_schedules AS ls ON ls.id = later.course_schedule_id
          JOIN courses AS lc ON lc.id = ls.course_id
          WHERE again.user_id = cert.user_id
            AND ls.start_datetime > s.start_datetime
            AND later.status IN ('pending', 'confirmed', 'completed')
            AND lc.course_type = cert.course_type
      )
"""
"""The certificates due, with only the joins the rule needs, in the order to run them:
the expiry index, then per certificate its holder (staff, erased and, when asked, those
without consent are dropped first), attendee and session, then the probe for a later
attendance."""
DETAILS = """
    JOIN certificates AS cert ON cert.id = due.id
    JOIN bookings AS b ON b.id = cert.booking_id
    JOIN course_schedules AS s ON s.id = b.course_schedule_id
    JOIN courses AS c ON c.id = s.course_id
    JOIN booking_attendees AS a ON a.id = cert.attendee_id
    LEFT JOIN users AS u ON u.id = cert.user_id
    LEFT JOIN users AS booker ON booker.id = b.user_id
"""
"""What a row shows, joined for the rows chosen only."""
ROW_COLUMNS = """
    cert.id AS certificate_id, cert.certificate_number, cert.course_type,
    u.id AS customer_id,
    coalesce(u.name, nullif(btrim(concat_ws(' ', a.first_name, a.last_name)), ''))
        AS customer_name,
    coalesce(u.email, a.email) AS email, u.phone,
    c.id AS course_id, c.name AS course_name, s.id AS session_id, b.id AS booking_id,
    booker.id AS booked_by_id, booker.name AS booked_by_name, booker.email AS booked_by_email,
    cert.issued_on AS taken_on, cert.expires_on,
    coalesce(u.marketing_consent, false) AS may_contact,
    (SELECT to_jsonb(last_reminder) FROM (
        SELECT r.queued_at AS sent_at, r.stage FROM renewal_reminders AS r
        WHERE r.certificate_id = cert.id AND r.outbox_id IS NOT NULL
        ORDER BY r.queued_at DESC, r.id DESC
        LIMIT 1) AS last_reminder) AS last_reminder
"""
ORDER = "cert.expires_on, cert.id"
PAGE = f"""
    {PARAMETERS}, due AS MATERIALIZED (
        SELECT cert.id, cert.expires_on
        {DUE}
          AND (CAST(:after_expires_on AS date) IS NULL
               OR (cert.expires_on, cert.id)
                  > (CAST(:after_expires_on AS date), CAST(:after_id AS bigint)))
        ORDER BY {ORDER}
        LIMIT :limit_plus_one
    )
    SELECT {ROW_COLUMNS}
    FROM due {DETAILS}
    ORDER BY {ORDER}
"""
TOTAL = f"""
    {PARAMETERS}
    SELECT count(*) FROM (SELECT 1 {DUE} ORDER BY {ORDER} LIMIT {COUNT_LIMIT + 1}) AS bounded
"""
"""In the page's order, so that it walks the expiry index too (unordered, for a year's
window the planner read every certificate by another index: 360 ms)."""
KEEP_JOIN_ORDER = """
    SELECT set_config('join_collapse_limit', '1', true),
           set_config('enable_hashjoin', 'off', true),
           set_config('enable_mergejoin', 'off', true),
           set_config('max_parallel_workers_per_gather', '0', true)
"""
"""The statements run as written, for this transaction only: the expiry index first, then
index probes per certificate (nested loops), stopping at the page's end or the count's
bound. Left to itself the planner spent 18 ms weighing join orders for a page that runs
in 2 (the statements are sent unprepared), and for wide windows chose hash joins that
read every user and attendee."""
CSV_HEADER = (
    "Attendee",
    "Email",
    "Phone",
    "Course",
    "Customer Id",
    "Taken On",
    "Expires On",
    "May Contact",
    "Certificate Number",
    "Booked By",
)
CSV_ROWS = f"""
    {PARAMETERS}
    SELECT coalesce(u.name, nullif(btrim(concat_ws(' ', a.first_name, a.last_name)), '')),
           coalesce(u.email, a.email), u.phone, c.name, u.id::text,
           to_char(cert.issued_on, 'YYYY-MM-DD'), to_char(cert.expires_on, 'YYYY-MM-DD'),
           CASE WHEN u.marketing_consent THEN 'Yes' ELSE 'No' END,
           cert.certificate_number, booker.name
    FROM (SELECT cert.id {DUE}) AS due {DETAILS}
    ORDER BY {ORDER}
"""
CSV_TEXT_CELLS = 4


class LastReminder(BaseModel):
    sent_at: datetime = Field(description="When it was queued (the sender sends within minutes)")
    stage: int = Field(description="Days before the expiry it was for; negative after it")


class Renewal(BaseModel):
    """An attendee whose certificate of a course type expires within the window."""

    certificate_id: int
    certificate_number: str
    course_type: str = Field(description="The booking site's code, e.g. EFAW")
    customer_id: int | None = Field(description="The attendee's user; null if named only")
    customer_name: str | None = Field(description="The attendee")
    email: str | None
    phone: str | None
    course_id: int
    course_name: str
    session_id: int = Field(description="The session the certificate was taken on")
    booking_id: int
    booked_by_id: int | None = Field(description="Who made the booking (paid for it)")
    booked_by_name: str | None
    booked_by_email: str | None
    taken_on: date = Field(description="The certificate's issue date (session's last day)")
    expires_on: date = Field(description="taken_on plus the course's validity (3 years)")
    may_contact: bool = Field(
        description="The customer gave marketing consent: a renewal reminder may be sent"
    )
    last_reminder: LastReminder | None = Field(
        default=None,
        description="The latest renewal reminder queued about this certificate (to the "
        "holder or their booker); null if none",
    )


class RenewalPage(BaseModel):
    data: list[Renewal] = Field(description="Soonest expiry first; ties by certificate")
    total: int = Field(description=f"Rows in the whole window, counted up to {COUNT_LIMIT:,}")
    total_is_exact: bool = Field(description=f"false when more than {COUNT_LIMIT:,} rows")
    limit: int
    within_days: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


def _parameters(within_days: int, may_contact: bool | None, today: date | None) -> dict[str, Any]:
    return {"within_days": within_days, "may_contact": may_contact, "today": today}


def _bound(parameters: dict[str, Any]) -> dict[str, Any]:
    """The values of the statements' placeholders: the query's and the company's time zone
    (not part of the fingerprint, which cursors already issued carry)."""
    return parameters | {"time_zone": BUSINESS_TIME_ZONE}


def _fingerprint(parameters: dict[str, Any]) -> str:
    return query_fingerprint(["renewals", parameters])


def list_renewals(
    *,
    within_days: int = DEFAULT_WITHIN_DAYS,
    may_contact: bool | None = None,
    limit: int,
    cursor: str | None = None,
    today: date | None = None,
) -> RenewalPage:
    """A page of the renewals list and its total, in one read-only snapshot."""
    parameters = _parameters(within_days, may_contact, today)
    after: list[Any] = [None, None]
    if cursor is not None:
        after = decode_cursor(cursor, _fingerprint(parameters))
        try:
            after_day, certificate_id = after
            after = [date.fromisoformat(after_day), int(certificate_id)]
        except (ValueError, TypeError):
            raise InvalidRequest("not a cursor issued by this API", field="cursor") from None

    def read(connection: Connection) -> RenewalPage:
        connection.execute(READ_ONLY_SNAPSHOT)
        connection.execute(KEEP_JOIN_ORDER)
        rows = connection.execute(
            PAGE,
            _bound(parameters)
            | {
                "after_expires_on": after[0],
                "after_id": after[1],
                "limit_plus_one": limit + 1,
            },
        ).all()
        page = rows[:limit]
        next_cursor = (
            encode_cursor(
                _fingerprint(parameters),
                [page[-1].expires_on.isoformat(), page[-1].certificate_id],
            )
            if len(rows) > limit
            else None
        )
        total = connection.execute(TOTAL, _bound(parameters)).scalar_one()
        return RenewalPage(
            data=[Renewal(**row._asdict()) for row in page],
            total=min(total, COUNT_LIMIT),
            total_is_exact=total <= COUNT_LIMIT,
            limit=limit,
            within_days=within_days,
            next_cursor=next_cursor,
        )

    return run_transaction(read)


def export_renewals(*, within_days: int, may_contact: bool | None = None, inline: bool) -> Any:
    """The whole window as CSV, exactly as the users export answers (``export_csv``)."""
    from rft_common.kit.csv_export import export_csv

    parameters = _parameters(within_days, may_contact, None)
    return export_csv(
        "renewals", CSV_ROWS, _bound(parameters), CSV_HEADER, CSV_TEXT_CELLS, inline=inline
    )
