"""PATCH /api/admin/users/{id}: validated edits, unique emails, and an audit row for each.

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

from rft_common.admin.profiles import UserUpdate, update_user
from rft_common.errors import Conflict
from tests.admin_helpers import ADMIN_SUBJECT, add_user, call, token_for

pytestmark = pytest.mark.usefixtures("admin_secret")


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


def stored(db, user_id: int):
    with db.connect() as connection:
        return connection.execute(text("SELECT * FROM users WHERE id = :id"), {"id": user_id}).one()


def audit_rows(db) -> list:
    with db.connect() as connection:
        return connection.execute(text("SELECT * FROM user_audit_log ORDER BY id")).all()


def test_an_edit_changes_only_the_fields_sent_and_returns_the_profile(
    admin_users_function, db, user_id
):
    status, profile, _ = patch(
        admin_users_function,
        user_id,
        {"name": "  Samira Patel ", "postcode": "s1 2he", "newsletterSubscribed": True},
    )

    assert status == 200
    row = stored(db, user_id)
    assert (row.name, row.postcode, row.newsletter_subscribed) == ("Samira Patel", "S1 2HE", True)
    assert (row.phone, row.city, row.email) == ("07700 900123", "Sheffield", "sam@example.com")
    assert (profile["name"], profile["postcode"], profile["newsletterSubscribed"]) == (
        "Samira Patel",
        "S1 2HE",
        True,
    )
    assert profile["updatedAt"] > profile["customerSince"]


def test_every_change_is_audited_with_who_and_the_old_and_new_values(
    admin_users_function, db, user_id
):
    patch(admin_users_function, user_id, {"city": "Leeds", "phone": None, "name": "Sam Patel"})

    [audit] = audit_rows(db)
    assert (audit.user_id, audit.actor) == (user_id, ADMIN_SUBJECT)
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
    status, _, _ = patch(admin_users_function, user_id, {"customerType": None, "city": None})

    assert status == 200
    assert (stored(db, user_id).customer_type, stored(db, user_id).city) == (None, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "admin"}, "role"),
        ({"totalSpent": "0.00"}, "totalSpent"),
        ({"totalBookings": 0}, "totalBookings"),
        ({"lastBookingDate": None}, "lastBookingDate"),
        ({"id": 1}, "id"),
        ({"customerSince": "2020-01-01T00:00:00Z"}, "customerSince"),
        ({"passwordHash": "x"}, "passwordHash"),
        ({"favouriteColour": "blue"}, "favouriteColour"),
        ({"name": None}, "name"),
        ({"email": None}, "email"),
        ({"newsletterSubscribed": None}, "newsletterSubscribed"),
        ({"marketingConsent": None}, "marketingConsent"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "Sam\nPatel"}, "name"),
        ({"notes": "bell\x07"}, "notes"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"phone": "123"}, "phone"),
        ({"postcode": "90210"}, "postcode"),
        ({"customerType": "charity"}, "customerType"),
        ({"newsletterSubscribed": [True]}, "newsletterSubscribed"),
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
    patch(admin_users_function, user_id, {"city": "York"}, token=token_for(subject="admin-7"))
    patch(admin_users_function, user_id, {"city": "Hull"}, token=token_for(subject="admin-8"))

    assert [(row.actor, row.changes["city"]) for row in audit_rows(db)] == [
        ("admin-7", {"old": "Sheffield", "new": "York"}),
        ("admin-8", {"old": "York", "new": "Hull"}),
    ]


def test_concurrent_edits_of_one_user_are_each_audited_against_what_they_replaced(db, user_id):
    cities = [f"City {number}" for number in range(12)]
    start = threading.Barrier(len(cities))

    def edit(city: str) -> None:
        start.wait()
        update_user(user_id, UserUpdate(city=city), actor=f"admin-{city}")

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
    start = threading.Barrier(2)

    def take(user: int) -> str:
        start.wait()
        try:
            update_user(user, UserUpdate(email="wanted@example.com"), actor="admin-1")
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


def test_the_audit_row_is_valid_json_of_camel_case_fields(admin_users_function, db, user_id):
    patch(admin_users_function, user_id, {"addressLine1": "2 Low Road", "marketingConsent": True})

    [audit] = audit_rows(db)
    assert json.loads(json.dumps(audit.changes)) == {
        "addressLine1": {"old": None, "new": "2 Low Road"},
        "marketingConsent": {"old": False, "new": True},
    }
