"""GET /api/admin/users: search, filters, sorts, paging and totals on generated data.

Expected answers come from a reference computed in Python over all the users, so the
list is checked against what it should contain, not against itself. The population
has many ties (generated names repeat, many users share totals or have no booking,
two special users share a creation time), accented names, an apostrophe, ``%`` and
``_`` in values, staff, a user without a name and one created just after midnight in
British Summer Time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from rft_common.users.listing import COUNT_LIMIT
from tests.admin_helpers import add_user, call, list_everything
from tests.factories import (
    add_session,
    generate_bookings,
    generate_customers,
    legacy_insert_booking,
)

pytestmark = pytest.mark.usefixtures("signed_in_admin")

SPECIAL_USERS = [
    {
        "email": "sean.obrien@example.ie",
        "name": "Seán O'Brien",
        "phone": "0114 496 0000",
        "company_name": "O'Brien & Sons",
        "customer_type": "corporate",
        "created_at": "2025-03-01 12:00+00",
    },
    {
        "email": "zoe.angstrom@example.com",
        "name": "Zoë Ångström",
        "customer_type": "individual",
        "created_at": "2025-03-01 12:00+00",
    },
    {"email": "percy@example.com", "name": "Percy 50% Off", "company_name": "a_b Ltd"},
    {"email": "quentin@example.com", "name": "Quentin 50x Off", "company_name": "axb Ltd"},
    {"email": "nameless@example.com", "name": None},
    {"email": "alex.admin@reactfast.example", "name": "Alex Admin", "role": "admin"},
    {"email": "ivy@reactfast.example", "name": "Ivy Instructor", "role": "instructor"},
    # 00:30 on 1 July in London (BST), still 30 June in UTC.
    {"email": "bea@example.com", "name": "Bea Boundary", "created_at": "2025-06-30 23:30+00"},
]


@pytest.fixture
def population(db) -> list[Any]:
    """Generated customers with bookings, the special users, and every row as stored."""
    with db.begin() as connection:
        generate_customers(connection, 150)
        generate_bookings(connection, 240, customers=100)
        for user in SPECIAL_USERS:
            add_user(connection, **user)
        session_id = add_session(connection)
        legacy_insert_booking(
            connection,
            session_id=session_id,
            email="bea@example.com",
            user_id=_id_of(connection, "bea@example.com"),
            reference="BEA-1",
            created_at="2025-09-30 23:30+00",  # 1 October in London
        )
    with db.connect() as connection:
        return connection.execute(
            text(
                "SELECT *, dense_rank() OVER (ORDER BY lower(coalesce(name, ''))) AS name_rank "
                "FROM users"
            )
        ).all()


def _id_of(connection, email: str) -> int:
    return connection.execute(
        text("SELECT id FROM users WHERE email = :email"), {"email": email}
    ).scalar_one()


def _document(row: Any) -> str:
    digits = "".join(c for c in (row.phone or "") if c not in " +-().")
    return f"{row.name or ''} {row.email_normalized} {digits} {row.company_name or ''}".lower()


NO_BOOKING = datetime.min.replace(tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")


def uk_day(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


SORT_KEYS = {
    "name": lambda row: row.name_rank,
    "createdAt": lambda row: row.created_at,
    "lastBookingAt": lambda row: row.last_booking_at or NO_BOOKING,
    "totalBookings": lambda row: row.total_bookings,
    "totalSpent": lambda row: row.total_spent,
}


def reference_order(rows: list[Any], sort: str, order: str) -> list[int]:
    ranked = sorted(rows, key=lambda row: (SORT_KEYS[sort](row), row.id))
    ids = [row.id for row in ranked]
    return ids[::-1] if order == "desc" else ids


def ids_where(rows: list[Any], predicate) -> set[int]:
    return {row.id for row in rows if predicate(row)}


# --- sorting and paging ---------------------------------------------------------------


def test_the_default_order_is_newest_first_with_ties_broken_by_id(admin_users_function, population):
    ids, _ = list_everything(admin_users_function, {})

    assert ids == reference_order(population, "createdAt", "desc")


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", list(SORT_KEYS))
def test_cursor_paging_visits_every_user_once_in_the_sort_order(
    admin_users_function, population, sort, order
):
    ids, totals = list_everything(admin_users_function, {"sort": sort, "order": order})

    assert ids == reference_order(population, sort, order)
    assert set(totals) == {len(population)}


@pytest.mark.parametrize("sort", list(SORT_KEYS))
def test_offset_pages_are_the_same_pages(admin_users_function, population, sort):
    by_cursor, _ = list_everything(admin_users_function, {"sort": sort}, page_size=25)

    by_offset = []
    for offset in range(0, len(population), 25):
        status, page, _ = call(
            admin_users_function,
            "GET",
            "/api/admin/users",
            query={"sort": sort, "limit": "25", "offset": str(offset)},
        )
        assert (status, page["offset"]) == (200, offset)
        by_offset += [item["id"] for item in page["data"]]

    assert by_offset == by_cursor


def test_users_added_while_paging_do_not_shift_the_pages(admin_users_function, population, db):
    status, first, _ = call(admin_users_function, "GET", "/api/admin/users", query={"limit": "10"})
    with db.begin() as connection:
        for number in range(5):  # newer than every user on the first page
            add_user(connection, f"newcomer{number}@example.com", name="Newcomer")

    rest = []
    cursor = first["nextCursor"]
    while cursor:
        _, page, _ = call(
            admin_users_function, "GET", "/api/admin/users", query={"limit": "10", "cursor": cursor}
        )
        rest += [item["id"] for item in page["data"]]
        cursor = page["nextCursor"]

    assert status == 200
    assert [item["id"] for item in first["data"]] + rest == reference_order(
        population, "createdAt", "desc"
    )


def test_the_last_page_has_no_next_cursor(admin_users_function, population):
    status, page, _ = call(
        admin_users_function, "GET", "/api/admin/users", query={"limit": "100", "offset": "100"}
    )

    assert status == 200
    assert len(page["data"]) == len(population) - 100
    assert page["nextCursor"] is None


# --- search ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "term",
    [
        "o'brien",
        "O'BRIEN",
        "seán",
        "zoë ång",
        "ZOË",
        "sean.obr",
        "@example.ie",
        "brien & so",
        "Patel",
        "atel",
        "sheffield-not-searched",
    ],
)
def test_search_is_a_case_insensitive_substring_of_name_email_phone_or_company(
    admin_users_function, population, term
):
    ids, totals = list_everything(admin_users_function, {"search": term})

    expected = ids_where(population, lambda row: term.lower() in _document(row))
    assert set(ids) == expected
    assert len(ids) == len(expected)
    assert set(totals) == {len(expected)}


def test_search_follows_edits_to_the_searched_fields(admin_users_function, population, db):
    with db.begin() as connection:
        connection.execute(
            text(
                "UPDATE users SET name = 'Rowan Renamed', email = ' Rowan@New.Example ', "
                "phone = '0161 555 0199', company_name = NULL "
                "WHERE email = 'sean.obrien@example.ie'"
            )
        )

    def found(term: str) -> list[int]:
        return list_everything(admin_users_function, {"search": term})[0]

    [renamed] = found("rowan renamed")
    assert found("ROWAN@NEW.EXAMPLE") == found("01615550199") == [renamed]
    assert found("seán o'brien") == found("brien & sons") == found("sean.obrien@") == []
    assert found("0114 496 0000") == []


@pytest.mark.parametrize("term", ["0114 496 0000", "01144960000", "(0114) 496-0000", "4960000"])
def test_a_phone_number_is_found_whatever_its_spacing(admin_users_function, population, term):
    ids, _ = list_everything(admin_users_function, {"search": term})

    assert ids == [row.id for row in population if row.email == "sean.obrien@example.ie"]


@pytest.mark.parametrize(
    ("term", "email"),
    [("50%", "percy@example.com"), ("a_b", "percy@example.com"), ("50x", "quentin@example.com")],
)
def test_percent_and_underscore_match_only_themselves(
    admin_users_function, population, term, email
):
    ids, _ = list_everything(admin_users_function, {"search": term})

    assert ids == [row.id for row in population if row.email == email]


def test_a_blank_search_is_no_search(admin_users_function, population):
    status, page, _ = call(admin_users_function, "GET", "/api/admin/users", query={"search": "  "})

    assert (status, page["total"]) == (200, len(population))


# --- filters and totals ----------------------------------------------------------------

FILTERS = {
    "role admin": ({"role": "admin"}, lambda row: row.role == "admin"),
    "role instructor": ({"role": "instructor"}, lambda row: row.role == "instructor"),
    "customers": ({"role": "customer"}, lambda row: row.role == "customer"),
    "corporate": ({"customerType": "corporate"}, lambda row: row.customer_type == "corporate"),
    "with bookings": ({"hasBookings": "true"}, lambda row: row.total_bookings > 0),
    "without bookings": ({"hasBookings": "false"}, lambda row: row.total_bookings == 0),
    "individual customers with bookings": (
        {"role": "customer", "customerType": "individual", "hasBookings": "true"},
        lambda row: row.customer_type == "individual" and row.total_bookings > 0,
    ),
    "search and type": (
        {"search": "smith", "customerType": "individual"},
        lambda row: "smith" in _document(row) and row.customer_type == "individual",
    ),
    "created in 2025 (UK dates)": (
        {"createdFrom": "2025-01-01", "createdTo": "2025-12-31"},
        lambda row: uk_day(row.created_at).year == 2025,
    ),
    "booked in the first half of 2025": (
        {"lastBookingFrom": "2025-01-01", "lastBookingTo": "2025-06-30", "hasBookings": "true"},
        lambda row: (
            row.last_booking_at is not None
            and date(2025, 1, 1) <= uk_day(row.last_booking_at) <= date(2025, 6, 30)
        ),
    ),
}


@pytest.mark.parametrize(("query", "predicate"), FILTERS.values(), ids=FILTERS.keys())
def test_filters_select_exactly_the_matching_users_and_total_counts_them(
    admin_users_function, population, query, predicate
):
    ids, totals = list_everything(admin_users_function, query)

    matching = ids_where(population, predicate)
    expected = [i for i in reference_order(population, "createdAt", "desc") if i in matching]
    assert ids == expected
    assert set(totals) == {len(expected)}


@pytest.mark.parametrize(
    ("query", "included"),
    [
        ({"createdFrom": "2025-07-01"}, True),
        ({"createdTo": "2025-06-30"}, False),
        ({"createdFrom": "2025-07-01", "createdTo": "2025-07-01"}, True),
        ({"lastBookingFrom": "2025-10-01", "lastBookingTo": "2025-10-01"}, True),
        ({"lastBookingTo": "2025-09-30"}, False),
    ],
)
def test_date_ranges_are_uk_calendar_days_including_both_ends(
    admin_users_function, population, query, included
):
    ids, _ = list_everything(admin_users_function, query | {"search": "bea@example.com"})

    assert bool(ids) is included


def test_a_user_without_bookings_has_no_last_booking_and_passes_no_last_booking_range(
    admin_users_function, population
):
    ids, _ = list_everything(admin_users_function, {"lastBookingTo": "2030-01-01"})

    assert set(ids) == ids_where(population, lambda row: row.last_booking_at is not None)


# --- items ------------------------------------------------------------------------------


def test_items_carry_the_dashboard_fields_and_money_as_a_string(admin_users_function, db):
    with db.begin() as connection:
        session_id = add_session(connection)
        user_id = add_user(
            connection,
            "sam@example.com",
            name="Sam Patel",
            phone="07700 900123",
            company_name="Acme Ltd",
            customer_type="corporate",
            city="Sheffield",
            postcode="S1 2HE",
            newsletter_subscribed=True,
            password_hash="bcrypt$secret",
            created_at="2025-01-02 03:04:05+00",
        )
        for reference, amount in (("A", Decimal("75.00")), ("B", Decimal("74.50"))):
            legacy_insert_booking(
                connection,
                session_id=session_id,
                email="sam@example.com",
                user_id=user_id,
                reference=reference,
                amount=amount,
                created_at="2025-05-06 07:08:09+00",
            )

    status, page, _ = call(
        admin_users_function, "GET", "/api/admin/users", query={"role": "customer"}
    )

    assert status == 200
    assert page["data"] == [
        {
            "id": user_id,
            "email": "sam@example.com",
            "name": "Sam Patel",
            "phone": "07700 900123",
            "role": "customer",
            "customerType": "corporate",
            "companyName": "Acme Ltd",
            "city": "Sheffield",
            "postcode": "S1 2HE",
            "newsletterSubscribed": True,
            "customerSince": "2025-01-02T03:04:05Z",
            "totalBookings": 2,
            "totalSpent": "149.50",
            "lastBookingDate": "2025-05-06T07:08:09Z",
        }
    ]
    assert (page["total"], page["limit"], page["offset"], page["nextCursor"]) == (1, 20, 0, None)


# --- invalid requests --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"sort": "password"}, "sort"),
        ({"order": "sideways"}, "order"),
        ({"role": "superuser"}, "role"),
        ({"customerType": "charity"}, "customerType"),
        ({"hasBookings": "perhaps"}, "hasBookings"),
        ({"createdFrom": "2025-02-30"}, "createdFrom"),
        ({"createdFrom": "0"}, "createdFrom"),
        ({"lastBookingTo": "1735689600"}, "lastBookingTo"),
        ({"createdTo": "2025-01-01T00:00:00"}, "createdTo"),
        ({"createdFrom": "2025-03-02", "createdTo": "2025-03-01"}, "createdTo"),
        ({"lastBookingFrom": "2025-03-02", "lastBookingTo": "2025-03-01"}, "lastBookingTo"),
        ({"search": "x" * 201}, "search"),
        ({"search": "nul\x00byte"}, "search"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJxIjoxfQ"}, "cursor"),
    ],
)
def test_invalid_parameters_are_422_naming_the_parameter(admin_users_function, db, query, field):
    status, body, _ = call(admin_users_function, "GET", "/api/admin/users", query=query)

    assert status == 422
    assert field in [error["field"] for error in body["errors"]]


def test_cursor_and_offset_together_are_422(admin_users_function, population):
    _, page, _ = call(admin_users_function, "GET", "/api/admin/users", query={"limit": "5"})

    status, body, _ = call(
        admin_users_function,
        "GET",
        "/api/admin/users",
        query={"cursor": page["nextCursor"], "offset": "5"},
    )

    assert status == 422
    assert body["errors"][0]["field"] == "offset"


@pytest.mark.parametrize("changed", [{"sort": "name"}, {"order": "asc"}, {"search": "smith"}])
def test_a_cursor_is_refused_with_another_query(admin_users_function, population, changed):
    _, page, _ = call(admin_users_function, "GET", "/api/admin/users", query={"limit": "5"})

    status, body, _ = call(
        admin_users_function,
        "GET",
        "/api/admin/users",
        query={"cursor": page["nextCursor"]} | changed,
    )

    assert status == 422
    assert body["errors"][0]["field"] == "cursor"


# --- bounded totals ----------------------------------------------------------------------


@pytest.fixture
def many_customers(db) -> int:
    """More customers than a search counts exactly."""
    count = COUNT_LIMIT + 25
    with db.begin() as connection:
        generate_customers(connection, count)
    return count


def test_a_search_counts_exactly_up_to_the_limit_and_says_so_beyond(
    admin_users_function, many_customers
):
    everyone = {"search": "@"}
    status, broad, _ = call(admin_users_function, "GET", "/api/admin/users", query=everyone)
    _, narrow, _ = call(admin_users_function, "GET", "/api/admin/users", query={"search": "9999@"})

    assert status == 200
    assert (broad["total"], broad["totalIsExact"]) == (COUNT_LIMIT, False)
    assert (narrow["total"], narrow["totalIsExact"]) == (1, True)


def test_paging_reaches_every_match_beyond_the_counted_limit(admin_users_function, many_customers):
    matches = many_customers + 1  # and the signed-in admin
    query = {"search": "@", "limit": "100", "offset": str(matches - 10)}

    _, last_page, _ = call(admin_users_function, "GET", "/api/admin/users", query=query)

    assert len(last_page["data"]) == 10 and last_page["nextCursor"] is None


def test_the_unfiltered_total_stays_exact_beyond_the_limit(admin_users_function, many_customers):
    _, everyone, _ = call(admin_users_function, "GET", "/api/admin/users")
    _, customers, _ = call(
        admin_users_function, "GET", "/api/admin/users", query={"role": "customer"}
    )

    assert (everyone["total"], everyone["totalIsExact"]) == (many_customers + 1, True)  # admin
    assert (customers["total"], customers["totalIsExact"]) == (many_customers, True)
