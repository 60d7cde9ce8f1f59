"""Admin queries at scale: the users list, one customer's detail, the first page of
duplicate candidates and of renewals due, p50 and p95.

The data is the legacy generator's (``rft seed legacy``, with 2% of the people also
booking under a second identity), linked the way the floor of the backfill section
links it, so every customer has the statistics the triggers keep, then scanned for
duplicate candidates as the scheduled scan would. Each query is the admin domain
function the route calls (``list_users``, ``get_user_detail``), in-process on one
warm pooled connection: the database and the Python that builds the page, not
Lambda's routing and JSON encoding.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text

from bench.backfill import legacy_database, link_everything
from bench.environment import use_database
from rft_common.renewals.service import DEFAULT_WITHIN_DAYS, list_renewals
from rft_common.users.duplicates import PAGE as DUPLICATES_PAGE
from rft_common.users.duplicates import list_duplicates
from rft_common.users.listing import (
    DEFAULT_PAGE_SIZE,
    SortOrder,
    UserFilters,
    UserListQuery,
    UserSort,
    count_statement,
    filter_conditions,
    list_users,
    page_statement,
)
from rft_common.users.profiles import HISTORY_PAGE, UPCOMING, get_user_detail

ADMIN_DATABASE = "bench_admin"
FULL = {"bookings": 1_000_000, "customers": 300_000, "samples": 200}
QUICK = {"bookings": 100_000, "customers": 30_000, "samples": 60}
DEEP_PAGE = 50
DETAIL_BOOKINGS = 200
DUPLICATE_SHARE = 0.02
RENEWAL_SAMPLES = 20
"""The default window's first page only: the renewals section measures the others."""


def _prepare(server_url: str, sizes: dict[str, int]) -> tuple[str, float]:
    """Generated legacy data, linked to customers; its URL and seconds taken."""
    started = time.perf_counter()
    url, _ = legacy_database(
        server_url,
        ADMIN_DATABASE,
        bookings=sizes["bookings"],
        customers=sizes["customers"],
        duplicate_share=DUPLICATE_SHARE,
    )
    engine = create_engine(url)
    with engine.begin() as connection:
        link_everything(connection)
    # Statistics that know the new customers before the scan is planned: the last ones
    # saw only the staff, and a scan planned for a handful of users ran for over ten
    # minutes whenever autovacuum had not analysed them first.
    _vacuum_analyze(engine)
    with engine.begin() as connection:
        # What the scheduled duplicate scan does after a bulk insert, all at once.
        connection.execute(text("SELECT rft_scan_queued_duplicates(:all)"), {"all": 2**31 - 1})
    _vacuum_analyze(engine)
    engine.dispose()
    return url, time.perf_counter() - started


def _vacuum_analyze(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def _search_terms(engine: Engine, count: int) -> dict[str, list[str]]:
    """Terms an admin would type, taken from random customers.

    - email prefix: the address up to its last two characters before the ``@``
      (``olivia.patel12`` of ``olivia.patel1234@...``);
    - name substring: a name without its first letter and the surname's last two
      (``livia pat``), so neither a whole word nor a prefix;
    - broad name substring: a surname alone, which the generator gives to 1 in 14.
    """
    with engine.connect() as connection:
        rows = connection.execute(
            text("""
                SELECT email_normalized, name FROM users
                WHERE role = 'customer' AND name <> '' AND email_normalized ~ '[0-9]{4}@'
                ORDER BY md5(id::text) LIMIT :count
            """),
            {"count": count},
        ).all()
    return {
        "email_prefix": [row.email_normalized.split("@")[0][:-2] for row in rows],
        "name_substring": [row.name.lower()[1:-2] for row in rows],
        "name_substring_broad": [row.name.split()[-1].lower() for row in rows],
    }


def _deep_cursor(query: UserListQuery) -> str:
    """The cursor of page ``DEEP_PAGE``, paged to the way the dashboard would."""
    for _ in range(DEEP_PAGE - 1):
        page = list_users(query)
        assert page.next_cursor is not None
        query = UserListQuery(query.filters, query.sort, query.order, cursor=page.next_cursor)
    assert query.cursor is not None
    return query.cursor


def _customer_with_bookings(engine: Engine, bookings: int) -> tuple[int, int]:
    """The customer whose number of bookings is nearest ``bookings``; and that number."""
    with engine.connect() as connection:
        row = connection.execute(
            text("""
                SELECT user_id, count(*) AS bookings FROM bookings
                WHERE user_id IS NOT NULL GROUP BY user_id
                ORDER BY abs(count(*) - :bookings), user_id LIMIT 1
            """),
            {"bookings": bookings},
        ).one()
    return row.user_id, row.bookings


def _timed(call: Callable[[], Any], samples: int) -> list[float]:
    """Milliseconds of ``samples`` calls, after two warm-up calls."""
    call()
    call()
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49], 2), "p95_ms": round(cuts[94], 2)}


def _rotating(queries: list[UserListQuery]) -> Callable[[], Any]:
    """One call per query in turn, so each sample searches another term."""
    order = itertools.cycle(queries)
    return lambda: list_users(next(order))


def exact_matches(connection: Connection, query: UserListQuery) -> int:
    """Every match of the query's filters (the list's total stops at ``COUNT_LIMIT``)."""
    where, parameters = filter_conditions(query.filters)
    return connection.execute(
        text(f"SELECT count(*) FROM users WHERE {where}"), parameters
    ).scalar_one()


# --- plans -----------------------------------------------------------------------------


def _plan(connection: Connection, sql: Any, parameters: dict[str, Any]) -> dict:
    """The plan of SQL text with ``:name`` placeholders (a string, or SQLAlchemy's text())."""
    explained = connection.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"), parameters)
    return explained.scalar_one()[0]["Plan"]


def _scans(plan: dict) -> list[str]:
    """Each scan of the plan as ``"Node Type on table [using index]"``, in plan order."""
    found = []
    if "Relation Name" in plan or "Index Name" in plan:
        where = plan.get("Relation Name", "")
        index = f" using {plan['Index Name']}" if "Index Name" in plan else ""
        found.append(f"{plan['Node Type']} on {where}{index}".replace(" on  using", " using"))
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def _explain(engine: Engine, queries: dict[str, UserListQuery], user_id: int) -> dict[str, Any]:
    """Which scans serve each list query (the page and its total) and the detail."""
    summary: dict[str, Any] = {}
    with engine.connect() as connection:
        for name, query in queries.items():
            summary[name] = {
                "page": _scans(_plan(connection, *page_statement(query))),
                "total": _scans(_plan(connection, *count_statement(query.filters))),
            }
        history = {"user_id": user_id, "after_created_at": None, "after_id": None}
        summary["detail_200_bookings"] = {
            "history": _scans(_plan(connection, HISTORY_PAGE, history | {"limit_plus_one": 21})),
            "upcoming": _scans(_plan(connection, UPCOMING, {"user_id": user_id})),
        }
        first_page = {"after_score": None, "after_user": None, "after_other": None}
        summary["duplicates_first_page"] = {
            "page": _scans(_plan(connection, DUPLICATES_PAGE, first_page | {"limit_plus_one": 21})),
        }
    summary["seq_scan_on_users"] = any(
        scan.startswith("Seq Scan on users")
        for plans in summary.values()
        for scans in plans.values()
        for scan in scans
    )
    return summary


# --- the section -----------------------------------------------------------------------


def run(server_url: str, flags_file: Path, *, quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    samples = sizes["samples"]
    url, prepare_seconds = _prepare(server_url, sizes)
    use_database(url, str(flags_file))
    engine = create_engine(url)
    terms = _search_terms(engine, samples)
    detail_user, detail_bookings = _customer_with_bookings(engine, DETAIL_BOOKINGS)
    first_page = UserListQuery(UserFilters())
    deep_offset = UserListQuery(UserFilters(), offset=(DEEP_PAGE - 1) * first_page.limit)
    deep_cursor = UserListQuery(UserFilters(), cursor=_deep_cursor(first_page))
    by_spent = UserListQuery(UserFilters(), sort=UserSort.TOTAL_SPENT, order=SortOrder.DESC)
    searches = {
        name: [UserListQuery(UserFilters(search=term)) for term in found]
        for name, found in terms.items()
    }
    calls: dict[str, Callable[[], Any]] = {
        "no_filter": lambda: list_users(first_page),
        "email_prefix": _rotating(searches["email_prefix"]),
        "name_substring": _rotating(searches["name_substring"]),
        "sort_total_spent": lambda: list_users(by_spent),
        "deep_cursor_page": lambda: list_users(deep_cursor),
        "deep_offset_page": lambda: list_users(deep_offset),
        "name_substring_broad": _rotating(searches["name_substring_broad"]),
        "detail_200_bookings": lambda: get_user_detail(detail_user),
        "duplicates_first_page": lambda: list_duplicates(limit=DEFAULT_PAGE_SIZE),
        "renewals_first_page": lambda: list_renewals(limit=DEFAULT_PAGE_SIZE),
    }
    timings: dict[str, dict[str, float]] = {}
    matches: dict[str, float] = {}
    for name, call in calls.items():
        count = RENEWAL_SAMPLES if name == "renewals_first_page" else samples
        timings[name] = _percentiles(_timed(call, count))
    with engine.connect() as connection:
        for name, queries in searches.items():
            matches[name] = round(
                statistics.mean(exact_matches(connection, query) for query in queries)
            )
    plans = _explain(
        engine,
        {
            "no_filter": first_page,
            "email_prefix": searches["email_prefix"][0],
            "name_substring": searches["name_substring"][0],
            "name_substring_broad": searches["name_substring_broad"][0],
            "sort_total_spent": by_spent,
            "deep_cursor_page": deep_cursor,
            "deep_offset_page": deep_offset,
        },
        detail_user,
    )
    engine.dispose()
    from rft_common.db.postgres import reset_pool

    reset_pool()
    return {
        "p95_ms": {name: value["p95_ms"] for name, value in timings.items()},
        "p50_ms": {name: value["p50_ms"] for name, value in timings.items()},
        "customers": sizes["customers"],
        "bookings": sizes["bookings"],
        "samples": samples,
        "prepare_seconds": round(prepare_seconds, 1),
        "average_matches": matches,
        "detail_bookings": detail_bookings,
        "deep_page": DEEP_PAGE,
        "duplicate_candidates": list_duplicates(limit=1).total,
        "renewals_due": list_renewals(limit=1).total,
        "renewals_within_days": DEFAULT_WITHIN_DAYS,
        "plans": plans,
    }
