"""Who paid and who learned, in the admin detail: the booker keeps the spend and sees whom
they paid for; each attendee sees the courses they attended and the certificates earned.
Additive fields only (the dashboard's fields are pinned in test_admin_dashboard_contract).
A completed five-place group booking made through the real checkout and webhook."""

from __future__ import annotations

import json

import pytest

from rft_common.users.profiles import get_user_detail
from tests.admin_helpers import call

pytestmark = pytest.mark.usefixtures("db", "stripe_keys", "customer_accounts_on")


HEALTH_DATA = ("vegan", "asthma")


def test_the_booker_keeps_the_spend_and_sees_whom_they_paid_for(completed_group):
    sam = get_user_detail(completed_group["sam.patel@example.com"])

    assert (sam.total_bookings, sam.total_spent) == (1, "337.50")
    assert [
        (a.position, a.name, a.email, a.customer_id, a.erased) for a in sam.booked_attendees
    ] == [
        (2, "Ann Lee", "ann.lee@example.com", completed_group["ann.lee@example.com"], False),
        (3, "Bob Khan", "bob.khan@example.com", completed_group["bob.khan@example.com"], False),
        (4, "Cat Ng", "cat.ng@example.com", completed_group["cat.ng@example.com"], False),
        (5, "Dan Roe", None, None, False),
    ]
    assert sam.booked_attendees_total == 4
    assert all(a.certificate_number for a in sam.booked_attendees)
    # Their own place: they attended what they booked.
    assert [(a.course_type, a.booked_by_id) for a in sam.attended_courses] == [("EFAW", sam.id)]
    assert not any(word in sam.model_dump_json() for word in HEALTH_DATA)


def test_an_attendee_gets_the_course_and_certificate_but_not_the_spend(completed_group):
    sam_id = completed_group["sam.patel@example.com"]
    bob = get_user_detail(completed_group["bob.khan@example.com"])

    assert (bob.total_bookings, bob.total_spent, bob.bookings) == (0, "0.00", [])
    (attended,) = bob.attended_courses
    assert (attended.booked_by_id, attended.booked_by_name) == (sam_id, "Sam Patel")
    assert (attended.booking_status, attended.course_type) == ("completed", "EFAW")
    assert attended.certificate_status == "active"
    assert attended.certificate_number.startswith("RFT-EFAW-")
    assert attended.certificate_expires_on.year == attended.start_datetime.year + 3
    assert bob.attended_courses_total == 1
    assert (bob.booked_attendees, bob.booked_attendees_total) == ([], 0)
    assert "asthma" not in bob.model_dump_json()


def test_the_route_answers_the_dashboards_fields_and_the_new_ones(
    completed_group, admin_secret, admin_users_function
):
    sam_id = completed_group["sam.patel@example.com"]

    status, body, _ = call(admin_users_function, "GET", f"/api/admin/users/{sam_id}")

    assert status == 200
    assert body["total_spent"] == "337.50" and body["bookings"][0]["number_of_attendees"] == 5
    assert [a["name"] for a in body["booked_attendees"]] == [
        "Ann Lee",
        "Bob Khan",
        "Cat Ng",
        "Dan Roe",
    ]
    assert body["attended_courses"][0]["booked_by_id"] == sam_id
    assert not any(word in json.dumps(body) for word in HEALTH_DATA)
