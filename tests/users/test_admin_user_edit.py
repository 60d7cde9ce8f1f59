"""PATCH /api/admin/users/{id}: validated edits, unique emails, and an audit row for each.

The body and the answer use the detail's snake_case names.

Concurrency is tested at the domain level with real parallel connections (handlers
of one process must not run concurrently: Powertools keeps the event on the class).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
from sqlalchemy import text

from rft_common.core.errors import Conflict
from rft_common.staff.tokens import Staff
from rft_common.users.profiles import UserUpdate, update_user
from tests.admin_helpers import ADMIN_EMAIL, ADMIN_ID, add_user, call, token_for

pytestmark = pytest.mark.usefixtures("signed_in_admin")


def add_admins(db, count: int) -> list[Staff]:
    """Stored admins (the edit checks its admin is still one), as their tokens name them."""
    emails = [f"admin{number}@reactfasttraining.co.uk" for number in range(1, count + 1)]
    with db.begin() as connection:
        return [
            Staff(
                id=add_user(connection, email, name=email, role="admin"), email=email, role="admin"
            )
            for email in emails
        ]


@pytest.fixture
def user_id(db) -> int:
    with db.begin() as connection:
        return add_user(
            connection,
            "sam@example.com",
            name="Sam Patel",
            phone="07700 900123",
            city="Sheffield",
            customer_type="individual",
        )


def patch(function, user_id: int, body, token: str | None = None):
    return call(function, "PATCH", f"/api/admin/users/{user_id}", body=body, token=token)


def detail_of(function, user_id: int) -> dict:
    return call(function, "GET", f"/api/admin/users/{user_id}")[1]


def stored(db, user_id: int):
    with db.connect() as connection:
        return connection.execute(text("SELECT * FROM users WHERE id = :id"), {"id": user_id}).one()


def audit_rows(db) -> list:
    with db.connect() as connection:
        return connection.execute(text("SELECT * FROM user_audit_log ORDER BY id")).all()


def test_an_edit_changes_only_the_fields_sent_and_returns_the_detail(
    admin_users_function, db, user_id
):
    status, profile, _ = patch(
        admin_users_function,
        user_id,
        {"name": "  Samira Patel ", "postcode": "s1 2he", "newsletter_subscribed": True},
    )

    assert status == 200
    row = stored(db, user_id)
    assert (row.name, row.postcode, row.newsletter_subscribed) == ("Samira Patel", "S1 2HE", True)
    assert (row.phone, row.city, row.email) == ("07700 900123", "Sheffield", "sam@example.com")
    assert (profile["name"], profile["postcode"], profile["newsletter_subscribed"]) == (
        "Samira Patel",
        "S1 2HE",
        True,
    )
    assert profile["updated_at"] > profile["created_at"]
    assert set(profile) == set(detail_of(admin_users_function, user_id))
    assert row.details_source == "admin"  # no booking replaces an admin's details


def test_an_edit_of_other_fields_leaves_the_details_source(admin_users_function, db, user_id):
    patch(admin_users_function, user_id, {"city": "Leeds"})

    assert stored(db, user_id).details_source is None


def test_every_change_is_audited_with_who_and_the_old_and_new_values(
    admin_users_function, db, user_id
):
    patch(admin_users_function, user_id, {"city": "Leeds", "phone": None, "name": "Sam Patel"})

    [audit] = audit_rows(db)
    assert (audit.user_id, audit.actor_id, audit.actor) == (user_id, ADMIN_ID, ADMIN_EMAIL)
    assert audit.changes == {  # the unchanged name is not recorded
        "city": {"old": "Sheffield", "new": "Leeds"},
        "phone": {"old": "07700 900123", "new": None},
    }
    assert audit.changed_at is not None


def test_an_edit_that_changes_nothing_writes_nothing(admin_users_function, db, user_id):
    before = stored(db, user_id)

    status, _, _ = patch(admin_users_function, user_id, {"city": "Sheffield"})

    assert status == 200
    assert stored(db, user_id).updated_at == before.updated_at
    assert audit_rows(db) == []


def test_a_new_email_is_stored_normalised(admin_users_function, db, user_id):
    status, profile, _ = patch(admin_users_function, user_id, {"email": " Samira.P@Example.COM "})

    assert status == 200
    assert profile["email"] == "samira.p@example.com"
    assert stored(db, user_id).email_normalized == "samira.p@example.com"


@pytest.mark.parametrize("email", ["taken@example.com", " TAKEN@Example.com"])
def test_an_email_of_another_user_is_409_naming_them_and_nothing_changes(
    admin_users_function, db, user_id, email
):
    with db.begin() as connection:
        holder = add_user(connection, "taken@example.com", name="Holder")

    status, body, _ = patch(admin_users_function, user_id, {"email": email, "city": "Leeds"})

    assert status == 409
    assert body["errors"] == [
        {"field": "email", "message": f"taken@example.com is already the email of user {holder}"}
    ]
    assert (stored(db, user_id).email, stored(db, user_id).city) == ("sam@example.com", "Sheffield")
    assert audit_rows(db) == []


def test_null_clears_an_optional_field(admin_users_function, db, user_id):
    status, _, _ = patch(
        admin_users_function, user_id, {"customer_type": None, "city": None, "county": None}
    )

    assert status == 200
    assert (stored(db, user_id).customer_type, stored(db, user_id).city) == (None, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "admin"}, "role"),
        ({"total_spent": "0.00"}, "total_spent"),
        ({"total_bookings": 0}, "total_bookings"),
        ({"last_booking_date": None}, "last_booking_date"),
        ({"id": 1}, "id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"password_hash": "x"}, "password_hash"),
        ({"favouriteColour": "blue"}, "favouriteColour"),
        ({"companyName": "Acme"}, "companyName"),
        ({"token_version": 0}, "token_version"),
        ({"last_login": None}, "last_login"),
        ({"is_active": None}, "is_active"),
        ({"is_active": False}, "is_active"),
        ({"county": "x" * 101}, "county"),
        ({"name": None}, "name"),
        ({"email": None}, "email"),
        ({"newsletter_subscribed": None}, "newsletter_subscribed"),
        ({"marketing_consent": None}, "marketing_consent"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "Sam\nPatel"}, "name"),
        ({"notes": "bell\x07"}, "notes"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"phone": "123"}, "phone"),
        ({"postcode": "90210"}, "postcode"),
        ({"customer_type": "charity"}, "customer_type"),
        ({"newsletter_subscribed": [True]}, "newsletter_subscribed"),
        ({}, "body"),
        ([], "body"),
    ],
)
def test_invalid_or_forbidden_fields_are_422_naming_them_and_nothing_changes(
    admin_users_function, db, user_id, body, field
):
    before = stored(db, user_id)

    status, response, _ = patch(admin_users_function, user_id, body)

    assert status == 422
    assert field in [error["field"] for error in response["errors"]]
    assert stored(db, user_id) == before
    assert audit_rows(db) == []


def test_role_is_refused_with_a_clear_message(admin_users_function, db, user_id):
    _, response, _ = patch(admin_users_function, user_id, {"role": "admin"})

    assert response["errors"] == [{"field": "role", "message": "not a field that can be set here"}]


def test_an_unknown_user_is_404(admin_users_function, db):
    status, _, _ = patch(admin_users_function, 424242, {"city": "Leeds"})

    assert status == 404


def test_the_audit_names_the_admin_whose_token_made_the_edit(admin_users_function, db, user_id):
    ash, bo = add_admins(db, 2)
    york = token_for(user_id=ash.id, email=ash.email)
    hull = token_for(user_id=bo.id, email=bo.email)
    patch(admin_users_function, user_id, {"city": "York"}, token=york)
    patch(admin_users_function, user_id, {"city": "Hull"}, token=hull)

    assert [(row.actor_id, row.actor, row.changes["city"]) for row in audit_rows(db)] == [
        (ash.id, ash.email, {"old": "Sheffield", "new": "York"}),
        (bo.id, bo.email, {"old": "York", "new": "Hull"}),
    ]


def test_concurrent_edits_of_one_user_are_each_audited_against_what_they_replaced(db, user_id):
    cities = [f"City {number}" for number in range(12)]
    admins = add_admins(db, len(cities))
    start = threading.Barrier(len(cities))

    def edit(city: str) -> None:
        start.wait()
        update_user(user_id, UserUpdate(city=city), actor=admins[cities.index(city)])

    with ThreadPoolExecutor(len(cities)) as pool:
        list(pool.map(edit, cities))

    chain = [row.changes["city"] for row in audit_rows(db)]
    assert len(chain) == len(cities)
    assert chain[0]["old"] == "Sheffield"
    assert all(later["old"] == earlier["new"] for earlier, later in pairwise(chain))
    assert stored(db, user_id).city == chain[-1]["new"]


def test_two_users_taking_one_email_at_once_one_wins_one_gets_409(db):
    with db.begin() as connection:
        first = add_user(connection, "first@example.com")
        second = add_user(connection, "second@example.com")
    [editor] = add_admins(db, 1)
    start = threading.Barrier(2)

    def take(user: int) -> str:
        start.wait()
        try:
            update_user(user, UserUpdate(email="wanted@example.com"), actor=editor)
        except Conflict as conflict:
            return conflict.message
        return "ok"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(take, [first, second]))

    [refusal] = [outcome for outcome in outcomes if outcome != "ok"]
    winner = first if outcomes[0] == "ok" else second
    assert refusal == f"wanted@example.com is already the email of user {winner}"
    with db.connect() as connection:
        holders = connection.execute(
            text("SELECT count(*) FROM users WHERE email_normalized = 'wanted@example.com'")
        ).scalar_one()
    assert holders == 1
    assert len(audit_rows(db)) == 1


def test_the_audit_row_is_valid_json_of_the_details_field_names(admin_users_function, db, user_id):
    patch(admin_users_function, user_id, {"address_line1": "2 Low Road", "marketing_consent": True})

    [audit] = audit_rows(db)
    assert json.loads(json.dumps(audit.changes)) == {
        "address_line1": {"old": None, "new": "2 Low Road"},
        "marketing_consent": {"old": False, "new": True},
    }


# --- deactivating staff ------------------------------------------------------------------


@pytest.fixture
def instructor_id(db) -> int:
    with db.begin() as connection:
        return add_user(connection, "ivy@reactfasttraining.co.uk", name="Ivy", role="instructor")


def test_a_staff_account_is_deactivated_audited_and_its_tokens_revoked(
    admin_users_function, db, instructor_id
):
    version_before = stored(db, instructor_id).token_version

    status, detail, _ = patch(admin_users_function, instructor_id, {"is_active": False})

    assert (status, detail["is_active"]) == (200, False)
    row = stored(db, instructor_id)
    assert (row.is_active, row.token_version) == (False, version_before + 1)
    [audit] = audit_rows(db)
    assert audit.changes == {"is_active": {"old": True, "new": False}}


def test_a_customer_cannot_be_deactivated(admin_users_function, db, user_id):
    status, body, _ = patch(admin_users_function, user_id, {"is_active": False})

    assert status == 422
    assert body["errors"][0]["field"] == "is_active"
    assert stored(db, user_id).is_active is True


def test_an_admin_cannot_deactivate_themselves(admin_users_function, db):
    with db.begin() as connection:
        own_id = add_user(connection, "me@reactfasttraining.co.uk", name="Me", role="admin")

    status, body, _ = patch(
        admin_users_function,
        own_id,
        {"is_active": False},
        token=token_for(user_id=own_id, email="me@reactfasttraining.co.uk"),
    )

    assert (status, body["errors"][0]["field"]) == (422, "is_active")
    assert stored(db, own_id).is_active is True


def test_an_erased_customer_cannot_be_refilled_by_an_edit(admin_users_function, db):
    with db.begin() as connection:
        erased = add_user(connection, "erased-0@erased.invalid", name="[erased]")
        connection.execute(
            text("UPDATE users SET erased_at = now() WHERE id = :id"), {"id": erased}
        )
    before = stored(db, erased)

    status, body, _ = patch(
        admin_users_function, erased, {"name": "Sam Patel", "email": "sam@example.com"}
    )

    assert status == 409
    assert "erased" in body["message"]
    assert stored(db, erased) == before
    assert audit_rows(db) == []
