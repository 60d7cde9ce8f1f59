"""The checkout's own pool and results (``rft_common.db.postgres``): connections reused for
their lifetime, callers waiting their turn, rows as named tuples."""

from __future__ import annotations

import threading
import time

import pytest
from pg8000.exceptions import InterfaceError
from sqlalchemy import text

from rft_common.core.errors import DatabaseUnavailable
from rft_common.db import postgres

BACKEND = "SELECT pg_backend_pid()"


@pytest.fixture
def pool(database_url, db):
    pool = postgres.Pool(1, postgres.parse_database_url(database_url))
    yield pool
    pool.close()


def backend_of(pool: postgres.Pool) -> int:
    with pool.transaction() as connection:
        return connection.execute(BACKEND).one()[0]


def test_a_connection_is_reused_until_its_lifetime_is_over(pool, monkeypatch):
    first, again = backend_of(pool), backend_of(pool)
    monkeypatch.setattr(postgres, "CONNECTION_LIFETIME_SECONDS", 0)
    replaced = backend_of(pool)

    assert first == again
    assert replaced != first


def test_a_connection_whose_work_failed_is_rolled_back_and_reused(pool):
    with pytest.raises(ValueError, match="refused"), pool.transaction() as connection:
        before = connection.execute(BACKEND).one()[0]
        connection.execute("CREATE TEMPORARY TABLE scratch (n int)")
        raise ValueError("refused")

    with pool.transaction() as connection:
        after = connection.execute(BACKEND).one()[0]
        leftover = connection.execute(
            "SELECT count(*) FROM pg_class WHERE relname = 'scratch'"
        ).one()[0]

    assert after == before
    assert leftover == 0


def test_a_caller_waits_for_the_busy_connection_then_gets_it(pool):
    holding = threading.Event()
    letting_go: list[float] = []

    def hold_the_connection():
        with pool.transaction() as connection:
            connection.execute("SELECT 1")
            holding.set()
            time.sleep(0.3)
            letting_go.append(time.monotonic())

    holder = threading.Thread(target=hold_the_connection)
    holder.start()
    holding.wait()
    backend = backend_of(pool)
    got_it_at = time.monotonic()
    holder.join()

    assert got_it_at >= letting_go[0]
    assert backend == backend_of(pool)


def test_a_caller_that_waits_too_long_is_told_the_database_is_busy(pool, monkeypatch):
    monkeypatch.setattr(postgres, "POOL_WAIT_SECONDS", 0.1)

    with (
        pool.transaction(),
        pytest.raises(DatabaseUnavailable, match="busy"),
        pool.transaction(),
    ):
        pass


def test_rows_are_named_tuples_and_one_insists_on_exactly_one(pool):
    with pool.transaction() as connection:
        rows = connection.execute(
            "SELECT n, :label || n AS label FROM generate_series(1, :count) AS n",
            {"label": "row ", "count": 2},
        ).all()
        nothing = connection.execute("SELECT 1 WHERE false")
        written = connection.execute("CREATE TEMPORARY TABLE scratch (n int)")
        with pytest.raises(LookupError, match="exactly one row, got 2"):
            connection.execute("SELECT * FROM generate_series(1, 2)").one()

    assert rows == [(1, "row 1"), (2, "row 2")]
    assert (rows[1].n, rows[1].label) == (2, "row 2")
    assert nothing.first() is None
    assert written.all() == []


def test_a_lost_connection_takes_the_idle_ones_with_it(database_url, db):
    """After a restart every pooled connection is dead: a lost one empties the pool, so
    the one reconnect a transaction gets is a fresh connection."""
    pool = postgres.Pool(2, postgres.parse_database_url(database_url))
    with pool.transaction() as first, pool.transaction() as second:
        idle = second.execute(BACKEND).one()[0]
        lost = first.execute(BACKEND).one()[0]
    with db.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost})

    # The pool hands out the connection given back last: the lost one.
    with pytest.raises(InterfaceError, match="network error"), pool.transaction() as connection:
        connection.execute(BACKEND)
    fresh = backend_of(pool)
    pool.close()

    assert fresh not in (idle, lost)


def test_a_result_gives_scalars_mappings_and_the_rows_a_statement_changed(pool):
    with pool.transaction() as connection:
        connection.execute("CREATE TEMPORARY TABLE scratch (n int)")
        inserted = connection.execute("INSERT INTO scratch SELECT generate_series(1, 3)")
        updated = connection.execute("UPDATE scratch SET n = n * 10 WHERE n > 1")
        rows = connection.execute("SELECT n, n + 1 AS next FROM scratch ORDER BY n")
        empty = connection.execute("SELECT n FROM scratch WHERE n < 0")
        with pytest.raises(LookupError, match="at most one row, got 3"):
            connection.execute("SELECT n FROM scratch").one_or_none()

    assert (inserted.rowcount, updated.rowcount) == (3, 2)
    assert rows.scalars() == [1, 20, 30]
    assert rows.mappings()[0] == {"n": 1, "next": 2}
    assert [row.next for row in rows] == [2, 21, 31]
    assert (empty.scalar(), empty.one_or_none(), empty.scalars()) == (None, None, [])
