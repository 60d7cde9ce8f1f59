"""Attendees in erasure and retention: a person known only as a name on someone else's
booking is erased by attendee id, with audit; retention drops abandoned checkouts'
participant details and old attendee rows' health data. Real PostgreSQL, a completed
five-place group booking made through the real checkout and webhook (localstripe)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from rft_common.privacy.service import ABANDONED_CHECKOUT_DAYS, run_retention
from rft_common.renewals.service import list_renewals
from tests.admin_helpers import ADMIN_EMAIL, ADMIN_ID, call
from tests.checkout.test_payments import rows
from tests.factories import add_session, legacy_insert_booking

pytestmark = pytest.mark.usefixtures("db", "stripe_keys", "customer_accounts_on", "admin_secret")


def attendee(db, position: int):
    (row,) = rows(db, "SELECT * FROM booking_attendees WHERE position = :p", p=position)
    return row


def erase(admin_users_function, attendee_id: int, reason: str = "ticket 4711"):
    return call(
        admin_users_function,
        "POST",
        f"/api/admin/attendees/{attendee_id}/erase",
        body={"reason": reason},
    )


def renewal_holders(db) -> list[int]:
    (expires_on,) = {c.expires_on for c in rows(db, "SELECT expires_on FROM certificates")}
    page = list_renewals(within_days=30, limit=20, today=expires_on - timedelta(days=10))
    return sorted(row.certificate_id for row in page.data)


# --- erasure of a name-only attendee ---------------------------------------------------


def test_a_name_only_attendee_is_erased_by_id_with_the_booker_audited(
    db, completed_group, admin_users_function
):
    sam = completed_group["sam.patel@example.com"]
    dan = attendee(db, 5)
    assert (dan.first_name, dan.user_id) == ("Dan", None)
    listed_before = renewal_holders(db)

    status, body, _ = erase(admin_users_function, dan.id)

    assert status == 200, body
    assert (body["attendee_id"], body["audited_on_user_id"]) == (dan.id, sam)
    after = attendee(db, 5)
    assert (after.first_name, after.last_name, after.email) == (None, None, None)
    assert (after.dietary_requirements, after.medical_conditions) == (None, None)
    assert after.erased_at is not None and after.booking_id == dan.booking_id
    (certificate,) = rows(db, "SELECT * FROM certificates WHERE attendee_id = :id", id=dan.id)
    assert certificate.status == "active"  # kept: see docs/attendees.md
    (entry,) = rows(db, "SELECT * FROM user_audit_log WHERE action = 'attendee_erasure'")
    assert (entry.user_id, entry.actor, entry.actor_id, entry.reason) == (
        sam,
        ADMIN_EMAIL,
        ADMIN_ID,
        "ticket 4711",
    )
    assert entry.changes == {
        "attendee_id": dan.id,
        "booking_id": dan.booking_id,
        "position": 5,
    }
    # The renewals list leaves the erased attendee out; the others stay.
    assert renewal_holders(db) == [c for c in listed_before if c != certificate.id]
    # The booker's detail shows the place as erased.
    _, detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{sam}")
    assert [(a["name"], a["erased"]) for a in detail["booked_attendees"]][-1] == (None, True)


def test_attendees_with_an_account_the_bookers_place_and_erased_ones_are_refused(
    db, completed_group, admin_users_function
):
    bob = completed_group["bob.khan@example.com"]
    status, body, _ = erase(admin_users_function, attendee(db, 3).id)
    assert status == 409 and f"erase user {bob}" in body["message"]

    status, body, _ = erase(admin_users_function, attendee(db, 1).id)
    assert status == 409 and "erase user" in body["message"]  # Sam, the booker
    with db.begin() as connection:  # a booker with no account (customer accounts off)
        connection.execute(text("UPDATE booking_attendees SET user_id = NULL WHERE position = 1"))
    status, body, _ = erase(admin_users_function, attendee(db, 1).id)
    assert status == 409 and "booker" in body["message"]

    dan = attendee(db, 5).id
    assert erase(admin_users_function, dan)[0] == 200
    status, body, _ = erase(admin_users_function, dan)
    assert status == 409 and "already erased" in body["message"]

    assert erase(admin_users_function, 10**9)[0] == 404
    assert rows(db, "SELECT count(*) FROM booking_attendees WHERE erased_at IS NOT NULL")[0][0] == 1


def test_a_reason_quoting_the_attendees_name_is_422_and_nothing_changes(
    db, completed_group, admin_users_function
):
    dan = attendee(db, 5)

    status, body, _ = erase(admin_users_function, dan.id, reason="Dan Roe asked by phone")

    assert status == 422 and body.get("field", "reason") == "reason"
    assert attendee(db, 5).first_name == "Dan"
    assert rows(db, "SELECT count(*) FROM user_audit_log")[0][0] == 0


# --- retention ------------------------------------------------------------------------


def add_checkout(connection, session_id: int, key: str, days_ago: int) -> None:
    connection.execute(
        text(
            "INSERT INTO payment_checkouts (checkout_key, generation, payment_intent_id, "
            "course_schedule_id, number_of_attendees, amount_pence, created_at, "
            "participant_details) VALUES (:key, 1, :key, :session, 2, 15000, "
            "now() - make_interval(days => :days), CAST(:details AS jsonb))"
        ),
        {
            "key": key,
            "session": session_id,
            "days": days_ago,
            "details": json.dumps(
                [{"firstName": "Eve", "lastName": "Moss", "medicalConditions": "epilepsy"}]
            ),
        },
    )


def test_retention_drops_participant_details_of_abandoned_checkouts_only(db):
    with db.begin() as connection:
        session_id = add_session(connection)
        add_checkout(connection, session_id, "abandoned", days_ago=ABANDONED_CHECKOUT_DAYS + 1)
        add_checkout(connection, session_id, "paying-now", days_ago=0)

    plan = run_retention(years=7, dry_run=True)
    applied = run_retention(years=7, dry_run=False)

    assert plan.abandoned_checkouts == applied.abandoned_checkouts == 1
    kept = {
        r.checkout_key: r.participant_details for r in rows(db, "SELECT * FROM payment_checkouts")
    }
    assert kept["abandoned"] is None and kept["paying-now"][0]["firstName"] == "Eve"
    assert run_retention(years=7, dry_run=True).abandoned_checkouts == 0


def test_retention_drops_old_attendees_health_data_and_name_only_participants(db, completed_group):
    sam = completed_group["sam.patel@example.com"]
    with db.begin() as connection:
        # The group's booking and session, eight years ago; Sam booked again lately.
        connection.execute(
            text(
                "UPDATE bookings SET created_at = created_at - interval '8 years';"
                "UPDATE course_schedules SET start_datetime = start_datetime - interval '8 years',"
                " end_datetime = end_datetime - interval '8 years'"
            )
        )
        legacy_insert_booking(
            connection,
            session_id=add_session(connection),
            email="sam.patel@example.com",
            user_id=sam,
            reference="R-RECENT",
        )

    plan = run_retention(years=7, dry_run=True)
    applied = run_retention(years=7, dry_run=False)

    # Ann's dietary and Bob's medical details, and Dan (by name only).
    assert plan.attendees == applied.attendees == 3
    assert (plan.customers, plan.bookings) == (applied.customers, applied.bookings)
    places = rows(db, "SELECT * FROM booking_attendees ORDER BY position")
    assert all(p.dietary_requirements is None and p.medical_conditions is None for p in places)
    dan = places[4]
    assert (dan.first_name, dan.last_name, dan.erased_at is not None) == (None, None, True)
    # Sam stays (a recent booking), and so does their own place's name.
    assert (places[0].user_id, places[0].first_name, places[0].erased_at) == (sam, "Sam", None)
    assert run_retention(years=7, dry_run=True).attendees == 0
