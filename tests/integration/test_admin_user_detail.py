"""GET /api/admin/users/{id} and /bookings: profile, statistics, upcoming, history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.admin_helpers import add_user, call
from tests.factories import add_session, legacy_insert_booking

pytestmark = pytest.mark.usefixtures("admin_secret")


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
    profile = detail["profile"]
    assert profile["id"] == customer["id"]
    assert (profile["name"], profile["email"], profile["phone"]) == (
        "Sam Patel",
        "sam@example.com",
        "07700 900123",
    )
    assert (profile["addressLine1"], profile["marketingConsent"], profile["notes"]) == (
        "1 High Street",
        True,
        "prefers mornings",
    )
    assert "never-shown" not in str(detail)
    assert not {key for key in profile if "password" in key.lower() or "token" in key.lower()}


def test_the_statistics_count_what_the_database_counts(admin_users_function, customer):
    _, detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{customer['id']}")

    assert detail["statistics"] == {
        "totalBookings": 24,  # the cancelled booking does not count
        "totalSpent": "445.00",  # paid only: 75 + 120 + 50 + 20 x 10
        "firstBookingDate": "2025-01-01T10:00:00Z",
        "lastBookingDate": "2025-03-01T10:00:00Z",
        "upcomingSessions": 2,  # confirmed and pending; not cancelled, not a cancelled session
    }
    assert [booking["bookingId"] for booking in detail["upcomingSessions"]] == customer[
        "booking_ids"
    ][1:3]
    assert detail["upcomingSessions"][0]["courseName"] == "Paediatric First Aid"


def test_the_detail_has_the_first_page_of_the_history_newest_first(admin_users_function, customer):
    _, detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{customer['id']}")

    history = detail["bookings"]
    assert history["total"] == 25
    assert [booking["bookingId"] for booking in history["items"]] == sorted(
        customer["booking_ids"][5:], reverse=True
    )
    first = history["items"][0]
    assert set(first) == {
        "bookingId",
        "bookingReference",
        "courseName",
        "sessionStart",
        "sessionEnd",
        "venue",
        "status",
        "paymentStatus",
        "amount",
        "attendees",
        "bookedAt",
    }
    assert (first["courseName"], first["venue"], first["amount"], first["attendees"]) == (
        "Emergency First Aid at Work",
        "Sheffield",
        "10.00",
        1,
    )
    assert history["nextCursor"] is not None


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
        seen += [booking["bookingId"] for booking in page["items"]]
        cursor = page["nextCursor"]
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
        query={"cursor": page["nextCursor"]},
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
    assert detail["statistics"] == {
        "totalBookings": 0,
        "totalSpent": "0.00",
        "firstBookingDate": None,
        "lastBookingDate": None,
        "upcomingSessions": 0,
    }
    assert detail["upcomingSessions"] == []
    assert detail["bookings"] == {"items": [], "total": 0, "nextCursor": None}
