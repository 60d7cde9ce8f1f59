"""Each statement reaches PostgreSQL in one round trip (pg8000's own way takes three),
with results, errors and the connection's state exactly as before: on the connections
``rft_common.db.postgres.connect`` opens (``rft_common.db.adaptations``), and on those
alone."""

from __future__ import annotations

import pg8000
import pytest
from pg8000 import core
from pg8000.exceptions import DatabaseError
from sqlalchemy import text

from rft_common.db import postgres
from rft_common.db.postgres import sqlstate

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def round_trips(monkeypatch):
    """Counts the times the client sends its buffered messages and waits for answers."""
    sent = []
    flush = core._flush

    def counting_flush(sock):
        sent.append(1)
        return flush(sock)

    monkeypatch.setattr(core, "_flush", counting_flush)
    return sent


@pytest.fixture
def pool(database_url):
    pool = postgres.Pool(1, postgres.parse_database_url(database_url))
    yield pool
    pool.close()


def test_a_statement_with_parameters_is_one_round_trip_and_returns_its_rows(pool, round_trips):
    with pool.transaction() as connection:
        connection.execute("SELECT 1")  # the transaction has begun
        round_trips.clear()
        rows = connection.execute(
            "SELECT n, :label || n FROM generate_series(1, :count) AS n",
            {"label": "row ", "count": 3},
        ).all()
        trips = len(round_trips)

    assert rows == [(1, "row 1"), (2, "row 2"), (3, "row 3")]
    assert trips == 1


def test_an_error_is_raised_with_its_sqlstate_and_the_connection_stays_usable(pool):
    with pytest.raises(DatabaseError) as raised, pool.transaction() as connection:
        connection.execute("SELECT CAST(:value AS integer)", {"value": "twelve"})
    with pool.transaction() as connection:
        after = connection.execute("SELECT 41 + 1").scalar_one()

    assert sqlstate(raised.value) == "22P02"  # invalid_text_representation
    assert after == 42


def test_a_syntax_error_is_reported_and_nothing_after_it_runs(pool):
    with pytest.raises(DatabaseError) as raised, pool.transaction() as connection:
        connection.execute("SELEC 1")
    with pool.transaction() as connection:
        still_there = connection.execute("SELECT 'ok'").scalar_one()

    assert sqlstate(raised.value) == "42601"  # syntax_error
    assert still_there == "ok"


class Unsendable:
    """A parameter pg8000 fails to convert to text, after it has begun the transaction."""

    def __str__(self) -> str:
        raise ValueError("cannot be sent")


def test_a_begin_still_unsent_is_not_sent_once_the_connection_autocommits(database_url, db):
    """A statement refused before it is sent leaves its transaction's BEGIN unsent; an
    autocommit statement afterwards must not carry it (it would open a transaction
    nobody ends)."""
    connection = postgres.connect(postgres.parse_database_url(database_url))
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
        connection.rollback()
        with pytest.raises(ValueError, match="cannot be sent"):
            cursor.execute("SELECT %s", (Unsendable(),))
        connection.rollback()
        connection.autocommit = True
        cursor.execute("SELECT 1")
        with db.connect() as observer:
            state = observer.execute(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": backend}
            ).scalar_one()
    finally:
        connection.close()

    assert state == "idle"


def test_a_transaction_sends_its_begin_with_its_first_statement(pool, round_trips):
    with pool.transaction() as connection:
        connection.execute("SELECT 1")  # the pool has connected
    round_trips.clear()

    with pool.transaction() as connection:
        started_at = connection.execute("SELECT now(), pg_sleep(:pause)", {"pause": 0.01}).one()[0]
        later = connection.execute("SELECT now(), clock_timestamp()").one()
    trips = len(round_trips)

    assert later[0] == started_at < later[1]
    assert trips == 3  # BEGIN with the first statement, the second statement, COMMIT


def test_a_connection_pg8000_opens_itself_keeps_pg8000s_three_round_trips(
    database_url, round_trips
):
    with pg8000.connect(**postgres.parse_database_url(database_url)) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT 1")  # the transaction has begun
        round_trips.clear()
        cursor.execute("SELECT %s::int + 1", (41,))
        answer = cursor.fetchone()
        trips = len(round_trips)

    assert answer == [42]
    assert trips == 3  # Parse; Describe; Bind and Execute: the adaptations are ours alone
