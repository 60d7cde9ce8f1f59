"""Certificates: issued once per attendee when a session completes, revoked by a refund
or cancellation after the fact. Real handlers, PostgreSQL and localstripe."""

from __future__ import annotations

import re
import threading
from datetime import date

import pytest
from sqlalchemy import text

from rft_common.certificates.service import issue_certificates
from rft_tools.cli.main import build_parser
from tests.checkout.test_payments import call, rows, succeeded_event
from tests.customers.test_attendees import group_intent
from tests.payment_helpers import refund_event, webhook_event

pytestmark = pytest.mark.usefixtures("db", "stripe_keys", "customer_accounts_on")

NUMBER = re.compile(r"RFT-EFAW-\d{4}-\d{8}")


@pytest.fixture(scope="module")
def checkout_function():
    from tests.conftest import load_function

    return load_function("create_booking", "certificates")


@pytest.fixture(scope="module")
def webhook_function():
    from tests.conftest import load_function

    return load_function("stripe_webhook", "certificates")


def group_booking(db, checkout_function, webhook_function, lambda_context, stripe_keys):
    session_id, paid = group_intent(db, checkout_function, lambda_context, stripe_keys)
    payload = succeeded_event(stripe_keys, paid)
    assert call(webhook_function, lambda_context, webhook_event(payload))[1]["outcome"] == "booked"
    return session_id, paid


def execute(db, sql: str, **params) -> None:
    with db.begin() as connection:
        connection.execute(text(sql), params)


def test_staff_completing_the_booking_issues_five_certificates_once_under_concurrent_runs(
    db, checkout_function, webhook_function, lambda_context, stripe_keys
):
    group_booking(db, checkout_function, webhook_function, lambda_context, stripe_keys)
    assert issue_certificates().issued == 0  # confirmed, the session still to come
    execute(db, "UPDATE bookings SET status = 'completed'")

    reports, barrier = [], threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        reports.append(issue_certificates())

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(report.issued for report in reports) == 5
    certificates = rows(
        db,
        "SELECT c.*, a.position FROM certificates AS c "
        "JOIN booking_attendees AS a ON a.id = c.attendee_id ORDER BY a.position",
    )
    assert [c.position for c in certificates] == [1, 2, 3, 4, 5]
    assert {c.course_type for c in certificates} == {"EFAW"}
    assert all(NUMBER.fullmatch(c.certificate_number) for c in certificates)
    issued = date.today()
    assert {(c.issued_on, c.status) for c in certificates} == {(issued, "active")}
    assert {c.expires_on for c in certificates} == {issued.replace(year=issued.year + 3)}
    assert certificates[4].user_id is None  # Dan, recorded by name
    assert issue_certificates().issued == 0


def test_the_session_ending_issues_them_and_validity_is_a_setting_per_course(
    db, checkout_function, webhook_function, lambda_context, stripe_keys
):
    session_id, _ = group_booking(
        db, checkout_function, webhook_function, lambda_context, stripe_keys
    )
    execute(db, "UPDATE courses SET certificate_validity_months = 12")
    execute(
        db,
        "UPDATE course_schedules SET start_datetime = timestamptz '2026-03-02 09:00+00', "
        "end_datetime = timestamptz '2026-03-02 16:00+00' WHERE id = :id",
        id=session_id,
    )

    assert issue_certificates().issued == 5
    (dates,) = rows(db, "SELECT DISTINCT issued_on, expires_on FROM certificates")
    assert (dates.issued_on, dates.expires_on) == (date(2026, 3, 2), date(2027, 3, 2))


def test_the_longest_course_code_gets_its_certificates_too(
    db, checkout_function, webhook_function, lambda_context, stripe_keys
):
    """``RFT-ANNUAL_SKILLS_REFRESHER-<year>-<10-digit id>`` is 43 characters."""
    execute(db, "SELECT setval('booking_attendees_id_seq', 2000000000)")
    group_booking(db, checkout_function, webhook_function, lambda_context, stripe_keys)
    execute(db, "UPDATE courses SET course_type = 'ANNUAL_SKILLS_REFRESHER'")
    execute(db, "UPDATE bookings SET status = 'completed'")

    assert issue_certificates().issued == 5
    numbers = [c.certificate_number for c in rows(db, "SELECT * FROM certificates")]
    longest = re.compile(r"RFT-ANNUAL_SKILLS_REFRESHER-\d{4}-20000000\d\d")
    assert all(longest.fullmatch(number) for number in numbers), numbers


def test_a_refund_after_completion_revokes_the_certificates(
    db, checkout_function, webhook_function, lambda_context, stripe_keys
):
    _, paid = group_booking(db, checkout_function, webhook_function, lambda_context, stripe_keys)
    execute(db, "UPDATE bookings SET status = 'completed'")
    assert issue_certificates().issued == 5

    refund = webhook_event(refund_event(paid, 33750, 33750))
    assert call(webhook_function, lambda_context, refund)[1]["outcome"] == "refunded"

    statuses = rows(db, "SELECT status, revoked_at FROM certificates")
    assert {s.status for s in statuses} == {"revoked"}
    assert all(s.revoked_at is not None for s in statuses)
    assert issue_certificates().issued == 0


def test_a_cancellation_after_the_fact_revokes_them_too(
    db, checkout_function, webhook_function, lambda_context, stripe_keys
):
    group_booking(db, checkout_function, webhook_function, lambda_context, stripe_keys)
    execute(db, "UPDATE bookings SET status = 'completed'")
    issue_certificates()
    execute(db, "UPDATE bookings SET status = 'cancelled'")
    assert {r.status for r in rows(db, "SELECT status FROM certificates")} == {"revoked"}


def test_rft_certificates_issue_is_a_command():
    arguments = build_parser().parse_args(["certificates", "issue"])
    assert arguments.handler.__module__ == "rft_tools.cli.commands.certificates"
