"""Attendees and certificates in subject access, erasure and merges, on real PostgreSQL
(the group booking made through the real checkout and Stripe's webhook, localstripe)."""

from __future__ import annotations

import json

import pytest

from rft_common.customers.audit import Actor
from rft_common.db.postgres import run_transaction
from rft_common.privacy.service import erase_users, export_user_data
from rft_common.staff.tokens import Staff
from rft_common.users.merges import merge_users, unmerge_users
from tests.admin_helpers import ADMIN_EMAIL, ADMIN_ID
from tests.checkout.test_payments import rows

pytestmark = pytest.mark.usefixtures("db", "stripe_keys", "customer_accounts_on")

ADMIN = Staff(id=ADMIN_ID, email=ADMIN_EMAIL, role="admin")
ACTOR = Actor("test")


def test_the_export_holds_attendances_with_health_data_certificates_and_whom_a_booker_booked(
    completed_group,
):
    bob = export_user_data(completed_group["bob.khan@example.com"], actor=ACTOR)
    assert [(a["first_name"], a["medical_conditions"]) for a in bob.attendances] == [
        ("Bob", "asthma")
    ]
    assert bob.attendances[0]["booked_by"] == completed_group["sam.patel@example.com"]
    assert [c["course_type"] for c in bob.certificates] == ["EFAW"]
    assert bob.bookings == [] and bob.booked_attendees == []

    sam = export_user_data(completed_group["sam.patel@example.com"], actor=ACTOR)
    assert [a["first_name"] for a in sam.booked_attendees] == ["Ann", "Bob", "Cat", "Dan"]
    assert "asthma" not in json.dumps(sam.booked_attendees)
    assert len(sam.attendances) == 1 and len(sam.certificates) == 1


def test_erasing_an_attendee_scrubs_name_and_health_data_and_keeps_the_certificate(
    db, completed_group
):
    bob = completed_group["bob.khan@example.com"]

    run_transaction(lambda connection: erase_users(connection, [bob], actor=ACTOR, reason="ask"))

    (place,) = rows(db, "SELECT * FROM booking_attendees WHERE user_id = :id", id=bob)
    assert (place.first_name, place.last_name, place.email) == (None, None, None)
    assert (place.dietary_requirements, place.medical_conditions) == (None, None)
    (certificate,) = rows(db, "SELECT * FROM certificates WHERE user_id = :id", id=bob)
    assert certificate.status == "active" and certificate.certificate_number.startswith("RFT-")
    everything = json.dumps(
        [r._asdict() for r in rows(db, "SELECT * FROM booking_attendees")], default=str
    )
    assert "asthma" not in everything and "Khan" not in everything
    assert "vegan" in everything  # Ann's, untouched


def test_a_merge_moves_attendances_and_certificates_and_an_unmerge_brings_them_back(
    db, completed_group
):
    survivor = completed_group["ann.lee@example.com"]
    duplicate = completed_group["bob.khan@example.com"]

    merge_users(survivor, duplicate, actor=ADMIN)

    held = "SELECT count(*) FROM {} WHERE user_id = :id"
    for table in ("booking_attendees", "certificates"):
        assert rows(db, held.format(table), id=survivor)[0][0] == 2
        assert rows(db, held.format(table), id=duplicate)[0][0] == 0

    unmerge_users(survivor, duplicate, actor=ADMIN)

    for table in ("booking_attendees", "certificates"):
        assert rows(db, held.format(table), id=survivor)[0][0] == 1
        assert rows(db, held.format(table), id=duplicate)[0][0] == 1


def test_the_checkout_keeps_no_copy_of_the_details_once_the_attendees_are_recorded(
    db, completed_group
):
    assert [r.participant_details for r in rows(db, "SELECT * FROM payment_checkouts")] == [None]
