"""The admin dashboard's Users pages read exactly what this API answers.

The dashboard (the company's admin UI, deployed, the admin API's only client) is
described in ``shared/context/clients.md``. Its contract, stated here in our words:

- every request, GET included, carries ``Content-Type: application/json`` and no body;
- the list page sends ``search`` (spaces as ``+``), ``role``, ``customerType``,
  ``hasBookings`` (``"true"``/``"false"``), ``limit=50`` and ``offset``; it reads
  ``data`` (a missing one crashes it), ``total``, and per row: numbers for
  ``totalBookings``, a never-null ``totalSpent``, ISO 8601 or null dates;
- the user page reads ONE flat snake_case object: ``created_at`` always parseable,
  ``is_active`` present, ``bookings`` an array whose rows have parseable
  ``start_datetime``/``end_datetime`` and a money string ``payment_amount``;
- the export button saves whatever body arrives as the CSV file, without looking
  at the status or the headers.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

import pytest

from tests.admin_helpers import ADMIN_ID, add_user, call, token_for
from tests.factories import add_session, add_staff_user, legacy_insert_booking

pytestmark = pytest.mark.usefixtures("signed_in_admin", "export_bucket")

MONEY = re.compile(r"\d+\.\d{2}")
LIST_ROW_TYPES: dict[str, tuple[type, ...]] = {
    "id": (int,),
    "name": (str,),
    "email": (str,),
    "companyName": (str, type(None)),
    "phone": (str, type(None)),
    "city": (str, type(None)),
    "postcode": (str, type(None)),
    "role": (str,),
    "customerType": (str, type(None)),
    "newsletterSubscribed": (bool,),
    "totalBookings": (int,),
    "totalSpent": (str,),
    "lastBookingDate": (str, type(None)),
    "customerSince": (str, type(None)),
}
DETAIL_FIELDS = {
    "name", "role", "email", "created_at", "phone", "address_line1", "address_line2", "city",
    "county", "postcode", "company_name", "customer_type", "newsletter_subscribed", "is_active",
    "last_login", "total_bookings", "total_spent", "last_booking_date", "bookings",
}  # fmt: skip
BOOKING_FIELDS = {
    "id", "booking_reference", "course_name", "start_datetime", "end_datetime", "venue_name",
    "payment_amount", "payment_status", "status", "number_of_attendees", "created_at",
}  # fmt: skip


def dashboard_get(function, path: str, query: dict[str, str] | None = None):
    """A GET exactly as the dashboard's adminFetch sends it."""
    headers = {"Authorization": f"Bearer {token_for()}", "Content-Type": "application/json"}
    return call(function, "GET", path, query=query, headers=headers)


def is_iso_8601(value: str) -> bool:
    return isinstance(datetime.fromisoformat(value), datetime)


@pytest.fixture
def people(db) -> dict[str, int]:
    with db.begin() as connection:
        session_id = add_session(connection, course_name="Paediatric First Aid")
        sam = add_user(
            connection,
            "sam@example.com",
            name="Sam Patel",
            phone="07700 900123",
            company_name="Acme Ltd",
            customer_type="corporate",
            city="Sheffield",
            postcode="S1 2HE",
            newsletter_subscribed=True,
        )
        for reference in ("R1", "R2"):
            legacy_insert_booking(
                connection,
                session_id=session_id,
                email="sam@example.com",
                user_id=sam,
                reference=reference,
                amount=Decimal("45.00"),
            )
        newcomer = add_user(connection, "new@example.com", name="New Person")
        instructor = add_staff_user(connection, "ivy@example.com", role="instructor", name="Ivy")
    return {"sam": sam, "newcomer": newcomer, "instructor": instructor}


def test_the_list_page_gets_data_total_limit_offset_with_rows_of_the_types_it_reads(
    admin_users_function, people
):
    status, page, _ = dashboard_get(
        admin_users_function, "/api/admin/users", {"limit": "50", "offset": "0"}
    )

    assert status == 200
    assert (page["total"], page["limit"], page["offset"]) == (4, 50, 0)  # and the admin
    assert len(page["data"]) == 4
    for row in page["data"]:
        assert set(LIST_ROW_TYPES) <= set(row)
        for field, types in LIST_ROW_TYPES.items():
            assert isinstance(row[field], types), (field, row[field])
        assert not isinstance(row["totalBookings"], bool)
        assert MONEY.fullmatch(row["totalSpent"])
        assert row["role"] in {"customer", "admin", "instructor"}
        for field in ("lastBookingDate", "customerSince"):
            assert row[field] is None or is_iso_8601(row[field])
    sam = next(row for row in page["data"] if row["id"] == people["sam"])
    assert (sam["totalBookings"], sam["totalSpent"], sam["customerType"]) == (
        2,
        "90.00",
        "corporate",
    )


def test_the_list_pages_filters_arrive_as_it_encodes_them(admin_users_function, people):
    # URLSearchParams writes "Sam Patel" as Sam+Patel; API Gateway hands the function a space.
    query = {
        "search": "Sam Patel",
        "role": "customer",
        "customerType": "corporate",
        "hasBookings": "true",
        "limit": "50",
        "offset": "0",
    }

    status, page, _ = dashboard_get(admin_users_function, "/api/admin/users", query)
    without_bookings = dashboard_get(
        admin_users_function, "/api/admin/users", {"hasBookings": "false", "limit": "50"}
    )[1]

    assert status == 200
    assert [row["id"] for row in page["data"]] == [people["sam"]]
    assert {row["id"] for row in without_bookings["data"]} == {
        people["newcomer"],
        people["instructor"],
        ADMIN_ID,
    }


def test_the_user_page_gets_one_flat_snake_case_object_with_every_field_it_reads(
    admin_users_function, people
):
    status, user, _ = dashboard_get(admin_users_function, f"/api/admin/users/{people['sam']}")

    assert status == 200
    assert set(user) >= DETAIL_FIELDS
    assert not any(isinstance(value, dict) for value in user.values())  # no envelope
    assert is_iso_8601(user["created_at"])
    assert user["is_active"] is True
    assert (user["total_bookings"], user["total_spent"]) == (2, "90.00")
    assert is_iso_8601(user["last_booking_date"])
    assert isinstance(user["bookings"], list) and len(user["bookings"]) == 2
    for booking in user["bookings"]:
        assert set(booking) == BOOKING_FIELDS
        assert is_iso_8601(booking["start_datetime"]) and is_iso_8601(booking["end_datetime"])
        assert booking["payment_amount"] == "45.00"
        assert (booking["course_name"], booking["venue_name"]) == (
            "Paediatric First Aid",
            "Sheffield",
        )
    assert [booking["created_at"] for booking in user["bookings"]] == sorted(
        (booking["created_at"] for booking in user["bookings"]), reverse=True
    )


def test_a_user_without_bookings_still_has_an_array_and_a_creation_date(
    admin_users_function, people
):
    _, user, _ = dashboard_get(admin_users_function, f"/api/admin/users/{people['newcomer']}")

    assert (user["bookings"], user["total_bookings"], user["total_spent"]) == ([], 0, "0.00")
    assert is_iso_8601(user["created_at"])


def test_the_export_button_saves_the_csv_because_the_body_is_the_csv(admin_users_function, people):
    status, body, raw = dashboard_get(
        admin_users_function, "/api/admin/users/export", {"role": "customer", "format": "csv"}
    )

    assert status == 200
    assert raw["multiValueHeaders"]["Content-Type"] == ["text/csv; charset=utf-8"]
    lines = body.removeprefix("\ufeff").splitlines()
    assert lines[0].startswith("Name,Email,Phone,Role")
    assert sorted(line.split(",")[1] for line in lines[1:]) == [
        "new@example.com",
        "sam@example.com",
    ]
