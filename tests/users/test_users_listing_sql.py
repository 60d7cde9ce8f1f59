"""The users list composes its SQL from fixed fragments: every value a request carries is a
bound parameter, and every placeholder has its value, whatever the filters, sort and
paging. (What the statements return is tested on PostgreSQL in test_admin_users_list.py.)"""

from __future__ import annotations

import itertools
import re
from datetime import date

import pytest

from rft_common.core.errors import InvalidRequest
from rft_common.db.paging import encode_cursor
from rft_common.users.listing import (
    BoundSql,
    SortOrder,
    UserFilters,
    UserListQuery,
    UserSort,
    count_statement,
    filter_conditions,
    page_statement,
)

PLACEHOLDER = re.compile(r"(?<![:\w]):(\w+)")
HOSTILE = "x'); DROP TABLE users; --"

FILTERS = [
    UserFilters(),
    UserFilters(search=HOSTILE),
    UserFilters(role="admin", customer_type="corporate", has_bookings=False),
    UserFilters(has_bookings=True),
    UserFilters(created_from=date(2025, 1, 1), created_to=date(2025, 1, 31)),
    UserFilters(last_booking_from=date(2025, 1, 1)),
    UserFilters(search="0114 496 0000", last_booking_to=date(2025, 2, 1), role="customer"),
]
CURSOR_VALUES = {
    UserSort.NAME: "o'brien",
    UserSort.CREATED_AT: "2025-01-01 09:00:00+00:00",
    UserSort.LAST_BOOKING_AT: None,
    UserSort.TOTAL_BOOKINGS: 3,
    UserSort.TOTAL_SPENT: "150.00",
}


def placeholders(statement: BoundSql) -> set[str]:
    return set(PLACEHOLDER.findall(statement.sql))


def queries() -> list[UserListQuery]:
    found = []
    for filters, sort, order in itertools.product(FILTERS, UserSort, SortOrder):
        query = UserListQuery(filters, sort, order)
        cursor = encode_cursor(query.fingerprint, [CURSOR_VALUES[sort], 42])
        found += [
            query,
            UserListQuery(filters, sort, order, offset=40),
            UserListQuery(filters, sort, order, cursor=cursor),
        ]
    return found


@pytest.mark.parametrize("query", queries())
def test_every_placeholder_of_a_page_has_its_value_and_nothing_else_is_sent(query):
    statement = page_statement(query)

    assert placeholders(statement) == set(statement.parameters)


@pytest.mark.parametrize("filters", FILTERS)
def test_every_placeholder_of_a_total_and_a_filter_has_its_value(filters):
    for statement in (count_statement(filters), filter_conditions(filters)):
        assert placeholders(statement) == set(statement.parameters)


def test_values_are_bound_never_written_into_the_sql():
    query = UserListQuery(UserFilters(search=HOSTILE), UserSort.NAME)
    cursor = encode_cursor(query.fingerprint, [HOSTILE, 7])
    statement = page_statement(
        UserListQuery(UserFilters(search=HOSTILE), UserSort.NAME, cursor=cursor)
    )

    assert "DROP" not in statement.sql
    assert statement.parameters["search_pattern"] == f"%{HOSTILE}%"
    assert statement.parameters["after_value"] == HOSTILE
    assert statement.parameters["after_id"] == 7


@pytest.mark.parametrize(("order", "comparison"), [(SortOrder.ASC, ">"), (SortOrder.DESC, "<")])
def test_a_cursor_resumes_after_its_row_in_the_sorts_order(order, comparison):
    query = UserListQuery(UserFilters(), UserSort.TOTAL_SPENT, order)
    cursor = encode_cursor(query.fingerprint, ["12.50", 9])
    statement = page_statement(
        UserListQuery(UserFilters(), UserSort.TOTAL_SPENT, order, cursor=cursor)
    )

    assert f"(users.total_spent, users.id) {comparison} (CAST(:after_value AS numeric)" in (
        statement.sql
    )
    assert f"ORDER BY users.total_spent {order.value.upper()}, users.id" in statement.sql


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        (UserSort.TOTAL_BOOKINGS, "3"),
        (UserSort.TOTAL_BOOKINGS, True),
        (UserSort.TOTAL_SPENT, "NaN"),
        (UserSort.CREATED_AT, "2025-01-01 09:00:00"),
        (UserSort.NAME, 5),
    ],
)
def test_a_cursor_whose_value_does_not_fit_its_sort_is_refused(sort, value):
    query = UserListQuery(UserFilters(), sort)
    cursor = encode_cursor(query.fingerprint, [value, 1])

    with pytest.raises(InvalidRequest) as refused:
        page_statement(UserListQuery(UserFilters(), sort, cursor=cursor))
    assert refused.value.field == "cursor"


def test_the_total_without_search_or_dates_reads_user_counts():
    statement = count_statement(UserFilters(role="customer", has_bookings=True))

    assert "FROM user_counts" in statement.sql
    assert "FROM users" not in statement.sql
    assert statement.parameters == {"role": "customer", "has_bookings": True}
