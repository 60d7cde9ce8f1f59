"""Certificate renewals: whose first-aid certificate runs out soon, per course.

A certificate is taken when a customer's booking on a session is ``completed``, or
``confirmed`` and the session has ended. It is valid for
``Settings.certificate_validity_years`` (3) from the session's last day, in the
company's calendar (Europe/London); 29 February plus 3 years is 28 February.

A row is a customer and a course (the course is the "course type": the certificate
is for it) such that:

- their latest certificate of that course expires within the window, today to
  today + ``within_days`` inclusive;
- they have not booked that course again since: no later session of the same course
  with a booking of theirs that is pending, confirmed or completed (a cancelled
  booking or a no-show is not a renewal);
- they are a customer (not staff) and not erased.

``may_contact`` is ``marketing_consent``: a reminder to book again is marketing, so
only customers who agreed may be sent one. Everyone is listed, so that the office
can see the whole picture; the flag says whom to contact.

Bookings not linked to a customer are not listed: they have no customer to remind.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from rft_common.core.errors import InvalidRequest
from rft_common.core.settings import get_settings
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

RENEWALS_FROM = """
    FROM (
        SELECT DISTINCT ON (b.user_id, s.course_id)
               b.user_id, s.course_id, b.id AS booking_id, s.id AS session_id,
               s.start_datetime,
               (s.end_datetime AT TIME ZONE p.time_zone)::date AS taken_on
        FROM course_schedules AS s
        JOIN bookings AS b ON b.course_schedule_id = s.id
        CROSS JOIN parameters AS p
        -- A day either side, for time zones; the exact window is applied below.
        WHERE s.end_datetime >= p.first_taken - interval '1 day'
          AND s.end_datetime < p.last_taken + interval '2 days'
          AND b.user_id IS NOT NULL
          AND (b.status = 'completed' OR (b.status = 'confirmed' AND s.end_datetime < now()))
        ORDER BY b.user_id, s.course_id, s.end_datetime DESC, b.id DESC
    ) AS t
    CROSS JOIN parameters AS p
    CROSS JOIN LATERAL (
        SELECT (t.taken_on + make_interval(years => p.validity_years))::date AS expires_on
    ) AS e
    JOIN users AS u ON u.id = t.user_id
    JOIN courses AS c ON c.id = t.course_id
    WHERE e.expires_on BETWEEN p.today AND p.today + p.within_days
      AND u.role = 'customer' AND u.erased_at IS NULL
      AND (CAST(:may_contact AS boolean) IS NULL OR u.marketing_consent = :may_contact)
      AND NOT EXISTS (
          SELECT 1
          FROM bookings AS later
          JOIN course_schedules AS ls ON ls.id = later.course_schedule_id
          WHERE later.user_id = t.user_id AND ls.course_id = t.course_id
            AND ls.start_datetime > t.start_datetime
            AND later.status IN ('pending', 'confirmed', 'completed')
      )
"""
PARAMETERS = """
    WITH parameters AS (
        SELECT today, within_days, validity_years, time_zone,
               (today - make_interval(years => validity_years))::date AS first_taken,
               (today + within_days - make_interval(years => validity_years))::date
                   AS last_taken
        FROM (
            SELECT coalesce(CAST(:today AS date),
                            (now() AT TIME ZONE CAST(:time_zone AS text))::date) AS today,
                   CAST(:within_days AS integer) AS within_days,
                   CAST(:validity_years AS integer) AS validity_years,
                   CAST(:time_zone AS text) AS time_zone
        ) AS given
    )
"""
ROW_COLUMNS = """
    u.id AS customer_id, u.name AS customer_name, u.email, u.phone,
    c.id AS course_id, c.name AS course_name, t.session_id, t.booking_id,
    t.taken_on, e.expires_on, u.marketing_consent AS may_contact
"""
ORDER = "e.expires_on, u.id, c.id"
PAGE = f"""
    {PARAMETERS}
    SELECT {ROW_COLUMNS}
    {RENEWALS_FROM}
      AND (CAST(:after_expires_on AS date) IS NULL
           OR (e.expires_on, u.id, c.id)
              > (CAST(:after_expires_on AS date), :after_customer_id, :after_course_id))
    ORDER BY {ORDER}
    LIMIT :limit_plus_one
"""
TOTAL = f"{PARAMETERS} SELECT count(*) {RENEWALS_FROM}"
CSV_HEADER = (
    "Customer",
    "Email",
    "Phone",
    "Course",
    "Customer Id",
    "Taken On",
    "Expires On",
    "May Contact",
)
CSV_ROWS = f"""
    {PARAMETERS}
    SELECT u.name, u.email, u.phone, c.name, u.id::text,
           to_char(t.taken_on, 'YYYY-MM-DD'), to_char(e.expires_on, 'YYYY-MM-DD'),
           CASE WHEN u.marketing_consent THEN 'Yes' ELSE 'No' END
    {RENEWALS_FROM}
    ORDER BY {ORDER}
"""
CSV_TEXT_CELLS = 4


class Renewal(BaseModel):
    """A customer whose certificate of a course expires within the window."""

    customer_id: int
    customer_name: str | None
    email: str
    phone: str | None
    course_id: int
    course_name: str
    session_id: int = Field(description="The session the certificate was taken on")
    booking_id: int
    taken_on: date = Field(description="Last day of that session (UK date)")
    expires_on: date = Field(description="taken_on plus the validity (3 years)")
    may_contact: bool = Field(
        description="The customer gave marketing consent: a renewal reminder may be sent"
    )


class RenewalPage(BaseModel):
    data: list[Renewal] = Field(description="Soonest expiry first; ties by customer, course")
    total: int = Field(description="Rows in the whole window")
    limit: int
    within_days: int
    validity_years: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


def _parameters(within_days: int, may_contact: bool | None, today: date | None) -> dict[str, Any]:
    return {
        "within_days": within_days,
        "validity_years": get_settings().certificate_validity_years,
        "may_contact": may_contact,
        "today": today,
    }


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
    after: list[Any] = [None, None, None]
    if cursor is not None:
        after = decode_cursor(cursor, _fingerprint(parameters))
        try:
            after_day, customer_id, course_id = after
            after = [date.fromisoformat(after_day), int(customer_id), int(course_id)]
        except (ValueError, TypeError):
            raise InvalidRequest("not a cursor issued by this API", field="cursor") from None

    def read(connection: Connection) -> RenewalPage:
        connection.execute(READ_ONLY_SNAPSHOT)
        rows = connection.execute(
            PAGE,
            _bound(parameters)
            | {
                "after_expires_on": after[0],
                "after_customer_id": after[1],
                "after_course_id": after[2],
                "limit_plus_one": limit + 1,
            },
        ).all()
        page = rows[:limit]
        next_cursor = (
            encode_cursor(
                _fingerprint(parameters),
                [page[-1].expires_on.isoformat(), page[-1].customer_id, page[-1].course_id],
            )
            if len(rows) > limit
            else None
        )
        return RenewalPage(
            data=[Renewal(**row._asdict()) for row in page],
            total=connection.execute(TOTAL, _bound(parameters)).scalar_one(),
            limit=limit,
            within_days=within_days,
            validity_years=parameters["validity_years"],
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
