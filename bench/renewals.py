"""Renewals at scale: pages of ``list_renewals`` read from certificates, p50 and p95.

The data is the legacy generator's (``rft seed legacy``), linked the way the floor of
the backfill section links it: customers, links, each booker as their booking's one
known attendee and the certificates the certificates job issues for history. Each
sample is ``list_renewals`` (the route's domain function: a page of 20 and its total,
in one read-only snapshot), in-process on one warm pooled connection, for windows of
30, 90 and 365 days: the first page, page 10 reached by cursor, and the first page of
those who may be contacted (``CONSENTS``: two customers in five).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bench.admin import _percentiles, _plan, _scans, _timed, _vacuum_analyze
from bench.backfill import legacy_database, link_everything
from bench.environment import use_database
from rft_common.core.vocabulary import BUSINESS_TIME_ZONE
from rft_common.db.paging import DEFAULT_PAGE_SIZE
from rft_common.renewals.service import (
    KEEP_JOIN_ORDER,
    PAGE,
    TOTAL,
    RenewalPage,
    list_renewals,
)
from rft_tools.operations.migrations import upgrade

RENEWALS_DATABASE = "bench_renewals"
FULL = {"bookings": 1_000_000, "customers": 300_000, "samples": 100}
QUICK = {"bookings": 100_000, "customers": 30_000, "samples": 30}
WINDOWS = (30, 90, 365)
CONSENTS = text("UPDATE users SET marketing_consent = true WHERE role = 'customer' AND id % 5 < 2")
"""Two customers in five have agreed to marketing: legacy bookings carry no consent (the
checkout records it since), and with none the "may be contacted" page would walk the
whole window to find nothing."""
DEEP_PAGE = 10


REUSE = os.environ.get("BENCH_RENEWALS_REUSE")
"""Set: measure on the data set of the last run (migrated to head), when it has
certificates, instead of generating it again (to try a change to the query quickly)."""


def _reused(server_url: str) -> str | None:
    url = make_url(server_url).set(database=RENEWALS_DATABASE).render_as_string(hide_password=False)
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            held = connection.execute(text("SELECT count(*) FROM certificates")).scalar_one()
        engine.dispose()
    except DBAPIError:
        return None
    if not held:
        return None
    upgrade(url)
    return url


def _prepare(server_url: str, sizes: dict[str, int]) -> tuple[str, float]:
    """Generated legacy data, linked with attendees and certificates; URL and seconds."""
    started = time.perf_counter()
    if REUSE and (url := _reused(server_url)):
        return url, time.perf_counter() - started
    url, _ = legacy_database(
        server_url, RENEWALS_DATABASE, bookings=sizes["bookings"], customers=sizes["customers"]
    )
    engine = create_engine(url)
    with engine.begin() as connection:
        link_everything(connection)
        connection.execute(CONSENTS)
    _vacuum_analyze(engine)
    engine.dispose()
    return url, time.perf_counter() - started


def _cursor_of_page(within_days: int, page: int) -> str | None:
    """The cursor of page ``page`` of the window, paged to as the dashboard would."""
    cursor = None
    for _ in range(page - 1):
        cursor = list_renewals(
            within_days=within_days, limit=DEFAULT_PAGE_SIZE, cursor=cursor
        ).next_cursor
        if cursor is None:
            return None
    return cursor


def _window(within_days: int, samples: int) -> dict[str, Any]:
    first: RenewalPage = list_renewals(within_days=within_days, limit=DEFAULT_PAGE_SIZE)
    deep_cursor = _cursor_of_page(within_days, DEEP_PAGE)
    calls = {
        "first": lambda: list_renewals(within_days=within_days, limit=DEFAULT_PAGE_SIZE),
        "page_10": lambda: list_renewals(
            within_days=within_days, limit=DEFAULT_PAGE_SIZE, cursor=deep_cursor
        ),
        "may_contact": lambda: list_renewals(
            within_days=within_days, may_contact=True, limit=DEFAULT_PAGE_SIZE
        ),
    }
    timings = {name: _percentiles(_timed(call, samples)) for name, call in calls.items()}
    return {
        "total": first.total,
        "total_is_exact": first.total_is_exact,
        "page_10_reached": deep_cursor is not None,
        "p50_ms": {name: value["p50_ms"] for name, value in timings.items()},
        "p95_ms": {name: value["p95_ms"] for name, value in timings.items()},
    }


def _plans(url: str) -> dict[str, list[str]]:
    """The scans of the first page and of the total, 90 days, planned as
    ``list_renewals`` plans them."""
    parameters = {
        "within_days": 90,
        "may_contact": None,
        "today": None,
        "time_zone": BUSINESS_TIME_ZONE,
    }
    engine = create_engine(url)
    page = parameters | {"after_expires_on": None, "after_id": None, "limit_plus_one": 21}
    with engine.begin() as connection:
        connection.execute(text(KEEP_JOIN_ORDER))
        plans = {
            "page": _scans(_plan(connection, PAGE, page)),
            "total": _scans(_plan(connection, TOTAL, parameters)),
        }
    engine.dispose()
    return plans


def run(server_url: str, flags_file: Path, *, quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    url, prepare_seconds = _prepare(server_url, sizes)
    use_database(url, str(flags_file))
    engine = create_engine(url)
    with engine.connect() as connection:
        counts = connection.execute(
            text("""
                SELECT (SELECT count(*) FROM booking_attendees) AS attendees,
                       (SELECT count(*) FROM certificates) AS certificates,
                       (SELECT count(*) FROM certificates WHERE status = 'active') AS active
            """)
        ).one()
    engine.dispose()
    windows = {str(days): _window(days, sizes["samples"]) for days in WINDOWS}
    plans = _plans(url)
    from rft_common.db.postgres import reset_pool

    reset_pool()
    return {
        "bookings": sizes["bookings"],
        "customers": sizes["customers"],
        "attendees": counts.attendees,
        "certificates": counts.certificates,
        "active_certificates": counts.active,
        "samples": sizes["samples"],
        "deep_page": DEEP_PAGE,
        "prepare_seconds": round(prepare_seconds, 1),
        "windows": windows,
        "plans": plans,
    }
