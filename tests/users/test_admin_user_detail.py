"""GET /api/admin/users/{id} and /bookings: one flat snake_case object, and the history.

The field names and types the dashboard's user page reads are pinned in
``test_admin_dashboard_contract``; here, what the values mean.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.admin_helpers import add_user, call
from tests.factories import add_session, legacy_insert_booking

pytestmark = pytest.mark.usefixtures("signed_in_admin")

STATISTICS = (
    "total_bookings",
    "total_spent",
    "first_booking_date",
    "last_booking_date",
    "upcoming_sessions_total",
)


@pytest.fixture
def customer(db) -> dict:
    """A customer with 25 bookings: past and upcoming sessions, cancelled and refunded ones."""
    with db.begin() as connection:
        user_id = add_user(
            connection,
            "sam@example.com",
            name="Sam Patel",
            phone="07700 900123",
            password_hash="bcrypt$never-shown",
            address_line1="1 High Street",
            marketing_consent=True,
            notes="prefers mornings",
        )
        upcoming = add_session(connection, course_name="Paediatric First Aid")
        past = add_session(connection, course_name="Emergency First Aid at Work")
        cancelled_session = add_session(connection, course_name="Cancelled Course")
        connection.execute(
            text(
                "UPDATE course_schedules SET start_datetime = now() - interval '30 days', "
                "end_datetime = now() - interval '30 days' + interval '6 hours' WHERE id = :id"
            ),
            {"id": past},
        )
        connection.execute(
            text("UPDATE course_schedules SET status = 'cancelled' WHERE id = :id"),
            {"id": cancelled_session},
        )
        bookings = [
            # (session, status, payment status, amount, created at)
            (past, "completed", "paid", "75.00", "2025-01-01 10:00+00"),
            (upcoming, "confirmed", "paid", "120.00", "2025-02-01 10:00+00"),
            (upcoming, "pending", "pending", "120.00", "2025-02-02 10:00+00"),
            (upcoming, "cancelled", "refunded", "120.00", "2025-02-03 10:00+00"),
            (cancelled_session, "confirmed", "paid", "50.00", "2025-02-04 10:00+00"),
        ] + [(past, "completed", "paid", "10.00", "2025-03-01 10:00+00")] * 20
        ids = [
            legacy_insert_booking(
                connection,
                session_id=session,
                email="sam@example.com",
                user_id=user_id,
                status=status,
                payment_status=payment,
                amount=Decimal(amount),
                reference=f"R{number}",
                created_at=created_at,
            )
            for number, (session, status, payment, amount, created_at) in enumerate(bookings)
        ]
    return {"id": user_id, "booking_ids": ids, "upcoming_session": upcoming}


def test_the_detail_has_the_profile_without_credentials(admin_users_function, customer):
    status, detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{customer['id']}")

    assert status == 200
    assert detail["id"] == customer["id"]
    assert (detail["name"], detail["email"], detail["phone"]) == (
        "Sam Patel",
        "sam@example.com",
        "07700 900123",
    )
    assert (detail["address_line1"], detail["marketing_consent"], detail["notes"]) == (
        "1 High Street",
        True,
        "prefers mornings",
    )
    assert (detail["is_active"], detail["last_login"]) == (True, None)
    assert "never-shown" not in str(detail)
    assert not {key for key in detail if "password" in key.lower() or "token" in key.lower()}


def test_the_statistics_count_what_the_database_counts(admin_users_function, customer):
    _, detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{customer['id']}")

    assert {key: detail[key] for key in STATISTICS} == {
        "total_bookings": 24,  # the cancelled booking does not count
        "total_spent": "445.00",  # paid only: 75 + 120 + 50 + 20 x 10
        "first_booking_date": "2025-01-01T10:00:00Z",
        "last_booking_date": "2025-03-01T10:00:00Z",
        "upcoming_sessions_total": 2,  # confirmed and pending; not cancelled sessions
    }
    assert [booking["id"] for booking in detail["upcoming_sessions"]] == customer["booking_ids"][
        1:3
    ]
    assert detail["upcoming_sessions"][0]["course_name"] == "Paediatric First Aid"


def test_the_detail_has_the_first_page_of_the_history_newest_first(admin_users_function, customer):
    _, detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{customer['id']}")

    assert detail["bookings_total"] == 25
    assert [booking["id"] for booking in detail["bookings"]] == sorted(
        customer["booking_ids"][5:], reverse=True
    )
    first = detail["bookings"][0]
    assert (
        first["course_name"],
        first["venue_name"],
        first["payment_amount"],
        first["number_of_attendees"],
        first["payment_status"],
        first["status"],
        first["created_at"],
    ) == ("Emergency First Aid at Work", "Sheffield", "10.00", 1, "paid", "completed",
          "2025-03-01T10:00:00Z")  # fmt: skip
    assert detail["bookings_next_cursor"] is not None


def test_the_detail_cursor_continues_at_the_bookings_route(admin_users_function, customer):
    _, detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{customer['id']}")

    status, page, _ = call(
        admin_users_function,
        "GET",
        f"/api/admin/users/{customer['id']}/bookings",
        query={"cursor": detail["bookings_next_cursor"]},
    )

    assert status == 200
    newest_first = sorted(customer["booking_ids"][5:], reverse=True)
    assert [booking["id"] for booking in detail["bookings"] + page["data"]] == [
        *newest_first,
        *[5, 4, 3, 2, 1],
    ]
    assert page["next_cursor"] is None


def test_the_bookings_route_pages_through_the_whole_history_once(admin_users_function, customer):
    seen = []
    cursor = None
    while True:
        query = {"limit": "4"} | ({"cursor": cursor} if cursor else {})
        status, page, _ = call(
            admin_users_function,
            "GET",
            f"/api/admin/users/{customer['id']}/bookings",
            query=query,
        )
        assert (status, page["total"]) == (200, 25)
        seen += [booking["id"] for booking in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    by_date = sorted(
        zip(customer["booking_ids"], [1, 2, 3, 4, 5] + [6] * 20, strict=True),
        key=lambda pair: (pair[1], pair[0]),
        reverse=True,
    )
    assert seen == [booking_id for booking_id, _ in by_date]


def test_a_history_cursor_is_only_good_for_its_user(admin_users_function, customer, db):
    with db.begin() as connection:
        other = add_user(connection, "other@example.com", name="Other")
    _, page, _ = call(
        admin_users_function,
        "GET",
        f"/api/admin/users/{customer['id']}/bookings",
        query={"limit": "2"},
    )

    status, body, _ = call(
        admin_users_function,
        "GET",
        f"/api/admin/users/{other}/bookings",
        query={"cursor": page["next_cursor"]},
    )

    assert status == 422
    assert body["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("suffix", ["", "/bookings"])
def test_an_unknown_user_is_404(admin_users_function, db, suffix):
    status, body, _ = call(admin_users_function, "GET", f"/api/admin/users/999999{suffix}")

    assert status == 404
    assert body["message"] == "user 999999 does not exist"


@pytest.mark.parametrize("user_id", ["abc", "0", "-1", "99999999999"])
def test_an_id_that_is_not_a_user_id_is_422(admin_users_function, db, user_id):
    status, body, _ = call(admin_users_function, "GET", f"/api/admin/users/{user_id}")

    assert status == 422
    assert body["errors"][0]["field"] == "user_id"


def test_a_user_without_bookings_has_empty_statistics(admin_users_function, db):
    with db.begin() as connection:
        user_id = add_user(connection, "new@example.com", name="New")

    status, detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{user_id}")

    assert status == 200
    assert {key: detail[key] for key in STATISTICS} == {
        "total_bookings": 0,
        "total_spent": "0.00",
        "first_booking_date": None,
        "last_booking_date": None,
        "upcoming_sessions_total": 0,
    }
    assert detail["upcoming_sessions"] == []
    assert (detail["bookings"], detail["bookings_total"], detail["bookings_next_cursor"]) == (
        [],
        0,
        None,
    )
