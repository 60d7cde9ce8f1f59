"""GET /api/admin/renewals (and its CSV): certificates expiring soon, not yet renewed.

Bookings are written with their booker as the only attendee, then the certificates job
issues what the completed ones earned, as it does in the stack."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import boto3
import pytest
from sqlalchemy import text

from rft_common.certificates.service import issue_certificates
from rft_common.core import settings
from rft_common.renewals.service import COUNT_LIMIT, CSV_HEADER, list_renewals
from tests.admin_helpers import add_user, call, token_for
from tests.factories import add_staff_user

pytestmark = pytest.mark.usefixtures("signed_in_admin")

LONDON = ZoneInfo("Europe/London")
VALIDITY_YEARS = 3


def uk_today() -> date:
    return datetime.now(LONDON).date()


def plus_years(day: date, years: int) -> date:
    """PostgreSQL's date + interval 'N years': 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def taken_on_for_expiry(expires_on: date) -> date:
    return plus_years(expires_on, -VALIDITY_YEARS)


def add_course(connection, name: str, course_type: str = "EFAW") -> int:
    return connection.execute(
        text(
            "INSERT INTO courses (name, price, course_type) "
            "VALUES (:name, 75, :course_type) RETURNING id"
        ),
        {"name": name, "course_type": course_type},
    ).scalar_one()


def add_session_ending(connection, course_id: int, last_day: date) -> int:
    """A one-day session ending at 16:00 UTC on ``last_day`` (the same UK date)."""
    end = datetime.combine(last_day, time(16, 0), tzinfo=UTC)
    return connection.execute(
        text(
            "INSERT INTO course_schedules (course_id, start_datetime, end_datetime, venue) "
            "VALUES (:course_id, :start, :end, 'Sheffield') RETURNING id"
        ),
        {"course_id": course_id, "start": end - timedelta(hours=7), "end": end},
    ).scalar_one()


def add_booking(connection, session_id: int, user_id: int, status: str) -> int:
    """A booking of ``user_id`` for themselves: the booker is its one attendee."""
    return connection.execute(
        text(
            "WITH booking AS (INSERT INTO bookings (booking_reference, course_schedule_id, "
            "user_id, status, payment_status, payment_amount, contact_details) VALUES "
            "('RFT-' || md5(random()::text), :session_id, :user_id, :status, 'paid', 75, "
            "'{}') RETURNING id) "
            "INSERT INTO booking_attendees (booking_id, position, user_id) "
            "SELECT id, 1, :user_id FROM booking RETURNING booking_id"
        ),
        {"session_id": session_id, "user_id": user_id, "status": status},
    ).scalar_one()


def renewals(function, **query: str) -> list[dict]:
    """Every row of the list, walked by cursor three at a time; totals checked."""
    rows: list[dict] = []
    cursor = None
    while True:
        page_query = query | {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        status, page, _ = call(function, "GET", "/api/admin/renewals", query=page_query)
        assert status == 200, page
        rows += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            assert page["total"] == len(rows)
            return rows


def test_known_expiries_are_listed_and_a_customer_who_rebooked_is_not(admin_users_function, db):
    today = uk_today()
    with db.begin() as connection:
        efaw = add_course(connection, "Emergency First Aid at Work")
        paediatric = add_course(connection, "Paediatric First Aid", "PAEDIATRIC")

        def certificate(user_id, course_id, expires_in_days, status="completed"):
            last_day = taken_on_for_expiry(today + timedelta(days=expires_in_days))
            session_id = add_session_ending(connection, course_id, last_day)
            add_booking(connection, session_id, user_id, status)
            return session_id

        due = add_user(connection, "due@example.com", name="Due Soon", marketing_consent=True)
        certificate(due, efaw, 10)
        confirmed = add_user(connection, "confirmed@example.com", name="Confirmed Past")
        certificate(confirmed, efaw, 30, status="confirmed")
        rebooked = add_user(connection, "rebooked@example.com", name="Already Rebooked")
        certificate(rebooked, efaw, 20)
        upcoming = add_session_ending(connection, efaw, today + timedelta(days=14))
        add_booking(connection, upcoming, rebooked, "pending")
        later_outside = add_user(connection, "renewed@example.com", name="Renewed Earlier")
        certificate(later_outside, efaw, 40)
        certificate(later_outside, efaw, 400)  # their latest certificate: not due
        no_show = add_user(connection, "noshow@example.com", name="Missed The Renewal")
        certificate(no_show, efaw, 50)
        missed = add_session_ending(connection, efaw, today - timedelta(days=3))
        add_booking(connection, missed, no_show, "no_show")
        other_course = add_user(connection, "other@example.com", name="Other Course Booked")
        certificate(other_course, efaw, 60)
        certificate(other_course, paediatric, 500)
        outside = add_user(connection, "outside@example.com", name="Not Yet")
        certificate(outside, efaw, 91)
        expired = add_user(connection, "expired@example.com", name="Already Expired")
        certificate(expired, efaw, -1)
        cancelled = add_user(connection, "cancelled@example.com", name="Cancelled Booking")
        certificate(cancelled, efaw, 15, status="cancelled")
        staff = add_staff_user(connection, "trainer@reactfast.co.uk", role="instructor")
        certificate(staff, efaw, 15)
        pending = add_user(connection, "pending@example.com", name="Pending Past")
        certificate(pending, efaw, 25, status="pending")
    issue_certificates()

    rows = renewals(admin_users_function, withinDays="90")

    assert [(row["customer_id"], row["course_id"]) for row in rows] == [
        (due, efaw),
        (confirmed, efaw),
        (no_show, efaw),
        (other_course, efaw),
    ]
    first = rows[0]
    assert first == {
        "certificate_id": first["certificate_id"],
        "certificate_number": first["certificate_number"],
        "course_type": "EFAW",
        "customer_id": due,
        "customer_name": "Due Soon",
        "email": "due@example.com",
        "phone": None,
        "course_id": efaw,
        "course_name": "Emergency First Aid at Work",
        "session_id": first["session_id"],
        "booking_id": first["booking_id"],
        "booked_by_id": due,
        "booked_by_name": "Due Soon",
        "booked_by_email": "due@example.com",
        "taken_on": taken_on_for_expiry(today + timedelta(days=10)).isoformat(),
        "expires_on": (today + timedelta(days=10)).isoformat(),
        "may_contact": True,
        "last_reminder": None,
    }
    assert [row["may_contact"] for row in rows] == [True, False, False, False]
    contactable = renewals(admin_users_function, withinDays="90", mayContact="true")
    assert [row["customer_id"] for row in contactable] == [due]
    assert [row["customer_id"] for row in renewals(admin_users_function, withinDays="10")] == [due]


def reference_renewals(bookings: list[tuple], today: date, within_days: int) -> list[tuple]:
    """The rule written out in Python: (expires_on, customer, course) rows in order."""
    now = datetime.now(UTC)
    latest: dict[tuple[int, int], tuple[datetime, date]] = {}
    for user_id, course_id, start, end, status in bookings:
        if status == "completed" or (status == "confirmed" and end < now):
            key = (user_id, course_id)
            if key not in latest or start > latest[key][0]:
                latest[key] = (start, end.astimezone(LONDON).date())
    rows = []
    for (user_id, course_id), (start, taken_on) in latest.items():
        expires_on = plus_years(taken_on, VALIDITY_YEARS)
        rebooked = any(
            u == user_id and c == course_id and s > start
            for u, c, s, _, status in bookings
            if status in ("pending", "confirmed", "completed")
        )
        if today <= expires_on <= today + timedelta(days=within_days) and not rebooked:
            rows.append((expires_on.isoformat(), user_id, course_id))
    return sorted(rows, key=lambda row: (row[0], row[1], row[2]))


def test_generated_bookings_match_the_rule_written_in_python(admin_users_function, db):
    generator = random.Random(15)
    today = uk_today()
    statuses = ("completed", "confirmed", "cancelled", "no_show", "pending")
    bookings = []
    with db.begin() as connection:
        courses = [
            add_course(connection, f"Course {code}", code) for code in ("EFAW", "FAW", "PAEDIATRIC")
        ]
        sessions = []
        for course_id in courses:
            for _ in range(25):
                last_day = (
                    today - timedelta(days=3 * 365) + timedelta(days=generator.randint(-60, 200))
                )
                if generator.random() < 0.2:
                    last_day = today + timedelta(days=generator.randint(-20, 60))
                session_id = add_session_ending(connection, course_id, last_day)
                end = datetime.combine(last_day, time(16, 0), tzinfo=UTC)
                sessions.append((session_id, course_id, end - timedelta(hours=7), end))
        customers = [add_user(connection, f"c{n}@example.com", name=f"C {n}") for n in range(60)]
        for user_id in customers:
            for session_id, course_id, start, end in generator.sample(sessions, 3):
                status = generator.choice(statuses)
                add_booking(connection, session_id, user_id, status)
                bookings.append((user_id, course_id, start, end, status))
    issue_certificates()

    rows = renewals(admin_users_function, withinDays="120")

    expected = reference_renewals(bookings, today, 120)
    assert len(expected) > 10
    assert [row["expires_on"] for row in rows] == sorted(row["expires_on"] for row in rows)
    got = [(row["expires_on"], row["customer_id"], row["course_id"]) for row in rows]
    assert sorted(got) == expected


def test_a_cursor_only_pages_the_window_it_was_issued_for(admin_users_function, db):
    today = uk_today()
    with db.begin() as connection:
        course_id = add_course(connection, "EFAW")
        for n in range(3):
            user_id = add_user(connection, f"p{n}@example.com")
            session_id = add_session_ending(connection, course_id, taken_on_for_expiry(today))
            add_booking(connection, session_id, user_id, "completed")
    issue_certificates()
    status, page, _ = call(admin_users_function, "GET", "/api/admin/renewals", query={"limit": "1"})
    assert status == 200 and page["next_cursor"] and page["total"] == 3

    status, body, _ = call(
        admin_users_function,
        "GET",
        "/api/admin/renewals",
        query={"limit": "1", "withinDays": "30", "cursor": page["next_cursor"]},
    )

    assert status == 422
    assert body["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("within_days", ["-1", "5000", "soon"])
def test_a_window_out_of_range_is_refused_naming_it(admin_users_function, db, within_days):
    status, body, _ = call(
        admin_users_function, "GET", "/api/admin/renewals", query={"withinDays": within_days}
    )

    assert status == 422
    assert [error["field"] for error in body["errors"]] == ["withinDays"]


def test_the_csv_export_is_the_file_itself_like_the_users_export(admin_users_function, db):
    today = uk_today()
    with db.begin() as connection:
        course_id = add_course(connection, "Emergency First Aid at Work")
        for n, name in enumerate(["=Formula Person", "Ann Example"]):
            user_id = add_user(
                connection, f"e{n}@example.com", name=name, marketing_consent=bool(n)
            )
            last_day = taken_on_for_expiry(today + timedelta(days=n + 1))
            add_booking(
                connection,
                add_session_ending(connection, course_id, last_day),
                user_id,
                "completed",
            )
    issue_certificates()

    status, content, raw = call(
        admin_users_function, "GET", "/api/admin/renewals/export", query={"withinDays": "90"}
    )

    assert status == 200, content
    assert raw["multiValueHeaders"]["Content-Disposition"] == [
        f"attachment; filename=renewals-{today.isoformat()}.csv"
    ]
    records = list(csv.reader(io.StringIO(content.removeprefix("\ufeff"), newline="")))
    assert records[0] == list(CSV_HEADER)
    assert [record[0] for record in records[1:]] == ["'=Formula Person", "Ann Example"]
    assert records[2][5:8] == [
        taken_on_for_expiry(today + timedelta(days=2)).isoformat(),
        (today + timedelta(days=2)).isoformat(),
        "Yes",
    ]
    assert records[2][8].startswith("RFT-EFAW-") and records[2][9] == "Ann Example"


@pytest.mark.usefixtures("export_bucket")
def test_scripts_asking_for_json_get_a_link_to_the_file_in_s3(admin_users_function, db):
    status, body, _ = call(
        admin_users_function,
        "GET",
        "/api/admin/renewals/export",
        headers={"Authorization": f"Bearer {token_for()}", "Accept": "application/json"},
    )

    assert status == 200, body
    bucket = settings.get_settings().admin_export_bucket
    key = urlparse(body["downloadUrl"]).path.removeprefix(f"/{bucket}").lstrip("/")
    assert key.startswith("exports/renewals/")
    content = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert content == "\ufeff" + ",".join(CSV_HEADER) + "\r\n"
    assert body["rows"] == 0


def test_being_booked_again_as_an_attendee_by_someone_else_is_a_renewal(admin_users_function, db):
    today = uk_today()
    with db.begin() as connection:
        course_id = add_course(connection, "Emergency First Aid at Work")
        first_aider = add_user(connection, "aider@example.com", name="First Aider")
        manager = add_user(connection, "manager@example.com", name="Office Manager")
        last_day = taken_on_for_expiry(today + timedelta(days=20))
        add_booking(
            connection,
            add_session_ending(connection, course_id, last_day),
            first_aider,
            "completed",
        )
    issue_certificates()
    assert [r["customer_id"] for r in renewals(admin_users_function)] == [first_aider]

    with db.begin() as connection:
        upcoming = add_session_ending(connection, course_id, today + timedelta(days=10))
        booking = add_booking(connection, upcoming, manager, "confirmed")
        connection.execute(
            text(
                "INSERT INTO booking_attendees (booking_id, position, user_id) VALUES (:b, 2, :u)"
            ),
            {"b": booking, "u": first_aider},
        )

    assert renewals(admin_users_function) == []


def add_completed_sessions(connection, count: int) -> None:
    """``count`` customers, each with a completed booking on their own past session, one
    every 6 hours, and their attendee rows."""
    course_id = add_course(connection, "Emergency First Aid at Work")
    connection.execute(
        text(
            "INSERT INTO users (email, name, role) SELECT 'u' || n || '@example.com', "
            "'U ' || n, 'customer' FROM generate_series(1, :count) AS n"
        ),
        {"count": count},
    )
    connection.execute(
        text(
            "INSERT INTO course_schedules (course_id, start_datetime, end_datetime, venue) "
            "SELECT :course, now() - n * interval '6 hours' - interval '7 hours', "
            "now() - n * interval '6 hours', 'Sheffield' FROM generate_series(1, :count) AS n"
        ),
        {"course": course_id, "count": count},
    )
    connection.execute(
        text(
            "WITH b AS (INSERT INTO bookings (booking_reference, course_schedule_id, user_id, "
            "status, payment_status, payment_amount, contact_details) "
            "SELECT 'RFT-' || s.id, s.id, s.id, 'completed', 'paid', 75, '{}' "
            "FROM course_schedules AS s RETURNING id, user_id) "
            "INSERT INTO booking_attendees (booking_id, position, user_id) "
            "SELECT id, 1, user_id FROM b"
        )
    )


def test_the_total_is_exact_up_to_its_bound_then_says_so(db):
    with db.begin() as connection:
        add_completed_sessions(connection, COUNT_LIMIT + 20)
    issue_certificates()
    with db.connect() as connection:
        first = connection.execute(text("SELECT min(expires_on) FROM certificates")).scalar_one()

    everything = list_renewals(within_days=1098, limit=5, today=first)
    window = list_renewals(within_days=2, limit=5, today=first)

    assert (everything.total, everything.total_is_exact) == (COUNT_LIMIT, False)
    assert len(everything.data) == 5 and everything.next_cursor
    assert window.total_is_exact and 0 < window.total < COUNT_LIMIT


def test_a_page_reads_the_certificates_expiry_index(db):
    """On a realistic spread (4,000 certificates over three years), a page's plan starts
    from ``ix_certificates_active_expires_on`` and probes attendees by user."""
    with db.begin() as connection:
        course_id = add_course(connection, "Emergency First Aid at Work")
        connection.execute(
            text(
                "INSERT INTO users (email, name, role) SELECT 'u' || n || '@example.com', "
                "'U ' || n, 'customer' FROM generate_series(1, 4000) AS n"
            )
        )
        connection.execute(
            text(
                "INSERT INTO course_schedules (course_id, start_datetime, end_datetime, venue) "
                "SELECT :course, now() - n * interval '6 hours' - interval '7 hours', "
                "now() - n * interval '6 hours', 'Sheffield' FROM generate_series(1, 4000) AS n"
            ),
            {"course": course_id},
        )
        connection.execute(
            text(
                "WITH b AS (INSERT INTO bookings (booking_reference, course_schedule_id, user_id, "
                "status, payment_status, payment_amount, contact_details) "
                "SELECT 'RFT-' || s.id, s.id, s.id, 'completed', 'paid', 75, '{}' "
                "FROM course_schedules AS s RETURNING id, user_id) "
                "INSERT INTO booking_attendees (booking_id, position, user_id) "
                "SELECT id, 1, user_id FROM b"
            )
        )
    issue_certificates()
    with db.begin() as connection:
        connection.execute(text("ANALYZE"))
        from rft_common.renewals.service import PAGE

        sql = PAGE.replace("CAST(:today AS date)", "NULL::date")
        plan = "\n".join(
            row[0]
            for row in connection.execute(
                text("EXPLAIN " + sql.replace(":limit_plus_one", "51")),
                {
                    "within_days": 365,
                    "may_contact": None,
                    "time_zone": "Europe/London",
                    "after_expires_on": None,
                    "after_id": None,
                },
            )
        )
    assert "ix_certificates_active_expires_on" in plan, plan
    assert "ix_booking_attendees_user_id" in plan, plan
