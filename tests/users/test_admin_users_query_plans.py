"""The list's statements are served by indexes, as PostgreSQL plans them on real data.

The plans are taken on 20,000 generated customers with fresh statistics (``ANALYZE``),
in a database of their own. On a handful of rows the planner rightly prefers reading
the whole table, which would say nothing; at this size it chooses as it does with
300,000, and the assertions hold without disabling any plan type. The statements are
exactly what the API sends: built by the same functions, with the same parameters,
on the same kind of connection (``rft_common.db.postgres``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from rft_common.db.postgres import Connection, Pool, parse_database_url
from rft_common.users.listing import (
    BoundSql,
    SortOrder,
    UserFilters,
    UserListQuery,
    UserSort,
    count_statement,
    page_statement,
    read_page,
)
from rft_tools.operations import migrations
from tests.conftest import scratch_database
from tests.factories import generate_bookings, generate_customers

CUSTOMERS = 20_000


@pytest.fixture(scope="module")
def planned(postgres_server_url) -> Iterator[Pool]:
    url = scratch_database(postgres_server_url, "rft_query_plans_test")
    migrations.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        generate_customers(connection, CUSTOMERS)
        generate_bookings(connection, CUSTOMERS, customers=CUSTOMERS * 3 // 4)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    pool = Pool(1, parse_database_url(url))
    yield pool
    pool.close()


def plan_of(connection: Connection, statement: BoundSql) -> dict[str, Any]:
    explained = connection.execute("EXPLAIN (FORMAT JSON) " + statement.sql, statement.parameters)
    return explained.scalar_one()[0]["Plan"]


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def scans_of_users(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [
        (node["Node Type"], node.get("Index Name"))
        for node in nodes(plan)
        if node.get("Relation Name") == "users" or "users" in node.get("Index Name", "")
    ]


def assert_served_by(plan: dict[str, Any], index: str) -> None:
    scans = scans_of_users(plan)
    assert ("Seq Scan", None) not in scans, scans
    assert index in {name for _, name in scans}, scans


SORT_INDEXES = {
    UserSort.CREATED_AT: "ix_users_created_at_id",
    UserSort.NAME: "ix_users_name_sort",
    UserSort.LAST_BOOKING_AT: "ix_users_last_booking_sort",
    UserSort.TOTAL_BOOKINGS: "ix_users_total_bookings_id",
    UserSort.TOTAL_SPENT: "ix_users_total_spent_id",
}


@pytest.mark.parametrize("order", list(SortOrder))
@pytest.mark.parametrize("sort", list(SORT_INDEXES))
def test_each_sort_reads_its_index(planned, sort, order):
    with planned.transaction() as connection:
        plan = plan_of(connection, page_statement(UserListQuery(UserFilters(), sort, order)))

    assert_served_by(plan, SORT_INDEXES[sort])


@pytest.mark.parametrize("sort", list(SORT_INDEXES))
def test_page_fifty_by_cursor_starts_from_the_cursor_in_the_index(planned, sort):
    query = UserListQuery(UserFilters(), sort, limit=20)
    for _ in range(49):
        with planned.transaction() as connection:
            page = read_page(connection, query)
        query = UserListQuery(UserFilters(), sort, limit=20, cursor=page.next_cursor)
    with planned.transaction() as connection:
        plan = plan_of(connection, page_statement(query))

    assert_served_by(plan, SORT_INDEXES[sort])
    [scan] = [node for node in nodes(plan) if node.get("Index Name") == SORT_INDEXES[sort]]
    assert "Index Cond" in scan  # it seeks to the cursor, rather than filtering from the start


@pytest.mark.parametrize(
    "term", ["olivia.smith1234", "harry.khan1", "brien", "ngstr", "07700", "Müller Care"]
)
def test_search_uses_the_trigram_index_for_the_total(planned, term):
    with planned.transaction() as connection:
        count_plan = plan_of(connection, count_statement(UserFilters(search=term)))
        page_plan = plan_of(connection, page_statement(UserListQuery(UserFilters(search=term))))

    assert_served_by(count_plan, "ix_users_search_trgm")
    assert ("Seq Scan", None) not in scans_of_users(page_plan)


def test_a_total_without_search_or_dates_does_not_read_users(planned):
    filters = UserFilters(role="customer", customer_type="corporate", has_bookings=True)
    with planned.transaction() as connection:
        plan = plan_of(connection, count_statement(filters))

    assert scans_of_users(plan) == []
    assert {node.get("Relation Name") for node in nodes(plan)} >= {"user_counts"}


def test_listing_staff_reads_the_role_index(planned):
    with planned.transaction() as connection:
        plan = plan_of(connection, page_statement(UserListQuery(UserFilters(role="admin"))))

    assert_served_by(plan, "ix_users_role_created_at_id")


def test_a_last_booking_range_reads_the_last_booking_index(planned):
    from datetime import date

    filters = UserFilters(last_booking_from=date(2025, 12, 1), last_booking_to=date(2025, 12, 2))
    with planned.transaction() as connection:
        plan = plan_of(connection, count_statement(filters))

    assert_served_by(plan, "ix_users_last_booking_sort")
