"""Rows and request bodies for tests, written with plain SQL like the legacy app."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, text

from rft_tools.checks.integrity import stats_mismatches as stats_mismatches


def add_session(
    connection: Connection,
    *,
    price: Decimal = Decimal("75.00"),
    max_capacity: int = 12,
    status: str = "published",
    course_name: str = "Emergency First Aid at Work",
    course_type: str = "EFAW",
) -> int:
    course_id = connection.execute(
        text(
            "INSERT INTO courses (name, category, duration, price, course_type) "
            "VALUES (:name, 'workplace', '1 day', :price, :course_type) RETURNING id"
        ),
        {"name": course_name, "price": price, "course_type": course_type},
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


GENERATED_FIRST_NAMES = (
    "Sam", "Alex", "Priya", "Mohammed", "Olivia", "Jack", "Amelia", "Harry", "Zoë", "Siân",
    "Noah", "Isla", "Oliver", "Ava", "George", "Mia", "Leo", "Grace", "Aoife", "Chloé",
)  # fmt: skip
GENERATED_LAST_NAMES = (
    "Patel", "Smith", "Jones", "O'Brien", "Williams", "Taylor", "Brown", "Davies", "Evans",
    "Wilson", "Thomas", "Khan", "Nowak", "Müller", "Roberts", "Walker", "Wright", "Hughes",
    "Green", "Hall", "Wood", "Clarke", "Ó Ceallaigh", "Lewis",
)  # fmt: skip

GENERATE_CUSTOMERS = text("""
    INSERT INTO users (email, name, role, phone, company_name, customer_type, city, postcode,
                       newsletter_subscribed, created_at)
    SELECT lower(translate(n.first || '.' || n.last, ' ''', '')) || i || '@'
               || (ARRAY['gmail.com', 'outlook.com', 'btinternet.com', 'example.org'])
                  [1 + mod(i, 4)],
           n.first || ' ' || n.last,
           'customer',
           '07' || lpad(mod(i::bigint * 7919, 1000000000)::text, 9, '0'),
           CASE WHEN mod(i, 3) = 0
                THEN n.last || ' ' || (ARRAY['Ltd', 'Care', 'Group'])[1 + mod(i / 3, 3)] END,
           CASE WHEN mod(i, 3) = 0 THEN 'corporate' ELSE 'individual' END,
           (ARRAY['Sheffield', 'Rotherham', 'Doncaster', 'Barnsley', 'Leeds'])[1 + mod(i, 5)],
           'S' || 1 + mod(i, 40) || ' ' || mod(i, 10) || chr(65 + mod(i, 26))
               || chr(65 + mod(i / 26, 26)),
           mod(i, 4) = 0,
           timestamptz '2026-01-01 09:00+00' - mod(i, 1800) * interval '1 day'
    FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i,
         LATERAL (SELECT (CAST(:first_names AS text[]))[1 + mod(i * 7, :first_count)] AS first,
                         (CAST(:last_names AS text[]))[1 + mod(i * 13, :last_count)] AS last) AS n
""")


def generate_customers(connection: Connection, count: int, *, first: int = 1) -> None:
    """``count`` customers numbered ``first``.. in one statement.

    Names come from small pools (many exact ties, some with accents or apostrophes),
    a third are corporate, and creation days repeat every 1,800 customers (more ties).
    """
    connection.execute(
        GENERATE_CUSTOMERS,
        {
            "first": first,
            "last": first + count - 1,
            "first_names": list(GENERATED_FIRST_NAMES),
            "last_names": list(GENERATED_LAST_NAMES),
            "first_count": len(GENERATED_FIRST_NAMES),
            "last_count": len(GENERATED_LAST_NAMES),
        },
    )


GENERATE_BOOKINGS = text("""
    INSERT INTO bookings (booking_reference, course_schedule_id, user_id, status, payment_status,
                          payment_amount, number_of_attendees, contact_details, created_at)
    SELECT 'GEN-' || i, (CAST(:session_ids AS integer[]))[1 + mod(i, :session_count)], u.id,
           (ARRAY['confirmed', 'confirmed', 'completed', 'cancelled', 'pending'])[1 + mod(i, 5)],
           (ARRAY['paid', 'paid', 'paid', 'refunded', 'pending'])[1 + mod(i / 5, 5)],
           (ARRAY[75, 120, 200, 150])[1 + mod(i, 4)], 1 + mod(i, 3),
           json_build_object('name', u.name, 'email', u.email),
           timestamptz '2026-01-01 09:00+00' - mod(i, 700) * interval '1 day'
    FROM generate_series(1, CAST(:count AS integer)) AS i
    JOIN users AS u ON u.id = (SELECT min(id) FROM users WHERE role = 'customer')
                              + mod(i::bigint * 7919, CAST(:customers AS integer))
""")


def generate_bookings(connection: Connection, count: int, *, customers: int) -> None:
    """``count`` bookings spread over the first ``customers`` customers (by id), on a
    handful of sessions (half in the past, half upcoming), in one statement."""
    session_ids = [
        add_session(connection, course_name=f"Generated course {n}") for n in range(1, 9)
    ]
    connection.execute(
        text(
            "UPDATE course_schedules SET start_datetime = start_datetime - interval '60 days', "
            "end_datetime = end_datetime - interval '60 days' WHERE id = ANY(:past)"
        ),
        {"past": session_ids[::2]},
    )
    connection.execute(
        GENERATE_BOOKINGS,
        {
            "session_ids": session_ids,
            "session_count": len(session_ids),
            "count": count,
            "customers": customers,
        },
    )


def customer_of(engine: Engine, answer: dict[str, Any]) -> int | None:
    """The customer a ``POST /api/bookings`` answer's booking is linked to, as stored;
    the answer's ``customerId`` must name the same one."""
    with engine.connect() as connection:
        linked = connection.execute(
            text("SELECT user_id FROM bookings WHERE id = :id"), {"id": answer["bookingId"]}
        ).scalar_one()
    assert answer["customerId"] == linked
    return linked
