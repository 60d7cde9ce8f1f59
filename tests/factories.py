"""Rows and request bodies for tests, written with plain SQL like the legacy app."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text


def add_session(
    connection: Connection,
    *,
    price: Decimal = Decimal("75.00"),
    max_capacity: int = 12,
    status: str = "published",
    course_name: str = "Emergency First Aid at Work",
) -> int:
    course_id = connection.execute(
        text(
            "INSERT INTO courses (name, category, duration, price) "
            "VALUES (:name, 'workplace', '1 day', :price) RETURNING id"
        ),
        {"name": course_name, "price": price},
    ).scalar_one()
    return connection.execute(
        text(
            "INSERT INTO course_schedules "
            "(course_id, start_datetime, end_datetime, venue, price, max_capacity, status) "
            "VALUES (:course_id, now() + interval '14 days', "
            "now() + interval '14 days 6 hours', 'Sheffield', :price, :max_capacity, :status) "
            "RETURNING id"
        ),
        {"course_id": course_id, "price": price, "max_capacity": max_capacity, "status": status},
    ).scalar_one()


def add_staff_user(
    connection: Connection, email: str, role: str = "admin", name: str = "Staff"
) -> int:
    return connection.execute(
        text(
            "INSERT INTO users (email, name, password_hash, role) "
            "VALUES (:email, :name, 'bcrypt$hash', :role) RETURNING id"
        ),
        {"email": email, "name": name, "role": role},
    ).scalar_one()


def legacy_insert_booking(
    connection: Connection,
    *,
    session_id: int,
    email: str,
    user_id: int | None = None,
    status: str = "confirmed",
    payment_status: str = "paid",
    amount: Decimal = Decimal("75.00"),
    reference: str,
    created_at: str | None = None,
) -> int:
    """A booking written the way the legacy app writes it: plain SQL, JSON contact details."""
    return connection.execute(
        text(
            "INSERT INTO bookings (booking_reference, course_schedule_id, user_id, status, "
            "payment_status, payment_amount, number_of_attendees, contact_details, created_at) "
            "VALUES (:reference, :session_id, :user_id, :status, :payment_status, :amount, 1, "
            "CAST(:contact AS json), coalesce(CAST(:created_at AS timestamptz), now())) "
            "RETURNING id"
        ),
        {
            "reference": reference,
            "session_id": session_id,
            "user_id": user_id,
            "status": status,
            "payment_status": payment_status,
            "amount": amount,
            "contact": json.dumps({"name": "Legacy Person", "email": email}),
            "created_at": created_at,
        },
    ).scalar_one()


def booking_body(session_id: int, **overrides: Any) -> dict[str, Any]:
    """The booking site's checkout body (legacy-system.md), one participant at 75.00."""
    body: dict[str, Any] = {
        "courseSessionId": session_id,
        "paymentIntentId": "pi_3Nabc",
        "firstName": "Sam",
        "lastName": "Patel",
        "email": "Sam.Patel@Example.com ",
        "phone": "07700 900123",
        "company": "Acme Ltd",
        "numberOfParticipants": 1,
        "specialRequirements": "wheelchair access",
        "emergencyContact": "Alex Patel 07700 900456",
        "totalAmount": 75.00,
    }
    return body | overrides


STATS_RECOMPUTATION = """
    SELECT u.id,
           u.total_bookings, u.total_spent, u.first_booking_at, u.last_booking_at,
           count(b.id) FILTER (WHERE b.status <> 'cancelled') AS expected_bookings,
           coalesce(sum(b.payment_amount) FILTER (WHERE b.payment_status = 'paid'), 0)
               AS expected_spent,
           min(b.created_at) FILTER (WHERE b.status <> 'cancelled') AS expected_first,
           max(b.created_at) FILTER (WHERE b.status <> 'cancelled') AS expected_last
    FROM users AS u LEFT JOIN bookings AS b ON b.user_id = u.id
    GROUP BY u.id
"""


def stats_mismatches(connection: Connection) -> list[Any]:
    """Users whose stored statistics differ from a recomputation from bookings."""
    return [
        row
        for row in connection.execute(text(STATS_RECOMPUTATION))
        if (row.total_bookings, row.total_spent, row.first_booking_at, row.last_booking_at)
        != (row.expected_bookings, row.expected_spent, row.expected_first, row.expected_last)
    ]
