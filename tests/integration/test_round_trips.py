"""Each statement reaches PostgreSQL in one round trip (pg8000's own way takes three),
with results, errors and the connection's state exactly as before: on the connections
``rft_common.db.postgres.connect`` opens (``rft_common.db.adaptations``), SQLAlchemy's
and the pool's, and on those alone."""

from __future__ import annotations

import pg8000
import pytest
from pg8000 import core
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rft_common.db import postgres
from rft_common.db.engine import get_engine
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


def test_a_statement_with_parameters_is_one_round_trip_and_returns_its_rows(round_trips):
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))  # the transaction has begun
        round_trips.clear()
        rows = connection.execute(
            text("SELECT n, :label || n FROM generate_series(1, :count) AS n"),
            {"label": "row ", "count": 3},
        ).all()
        trips = len(round_trips)

    assert rows == [(1, "row 1"), (2, "row 2"), (3, "row 3")]
    assert trips == 1


def test_an_error_is_raised_with_its_sqlstate_and_the_connection_stays_usable():
    with get_engine().connect() as connection:
        with pytest.raises(DBAPIError) as raised:
            connection.execute(text("SELECT CAST(:value AS integer)"), {"value": "twelve"})
        connection.rollback()
        after = connection.execute(text("SELECT 41 + 1")).scalar_one()

    assert sqlstate(raised.value) == "22P02"  # invalid_text_representation
    assert after == 42


def test_a_syntax_error_is_reported_and_nothing_after_it_runs(db):
    with get_engine().connect() as connection:
        with pytest.raises(DBAPIError) as raised:
            connection.execute(text("SELEC 1"))
        connection.rollback()
        still_there = connection.execute(text("SELECT 'ok'")).scalar_one()

    assert sqlstate(raised.value) == "42601"  # syntax_error
    assert still_there == "ok"


def test_a_transaction_sends_its_begin_with_its_first_statement(round_trips):
    engine = get_engine()
    with engine.begin() as connection:
        connection.execute(text("SELECT 1"))  # the engine has connected
    round_trips.clear()

    with engine.begin() as connection:
        started = connection.execute(text("SELECT now(), pg_sleep(:pause)"), {"pause": 0.01})
        started_at = started.first()[0]
        later = connection.execute(text("SELECT now(), clock_timestamp()")).one()
    trips = len(round_trips)

    assert later[0] == started_at < later[1]  # one transaction: its start time stands still
    assert trips == 3  # BEGIN with the first statement, the second statement, COMMIT


class Unsendable:
    """A parameter pg8000 fails to convert to text, after it has begun the transaction."""

    def __str__(self) -> str:
        raise ValueError("cannot be sent")


def test_a_begin_still_unsent_is_not_sent_once_the_connection_autocommits(db):
    """A statement pg8000 refuses before sending it leaves its transaction's BEGIN unsent;
    an autocommit statement afterwards must not carry it (it would open a transaction
    nobody ends)."""
    with get_engine().connect() as connection:
        backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        connection.rollback()
        with pytest.raises(ValueError, match="cannot be sent"):
            connection.execute(text("SELECT :value"), {"value": Unsendable()})
        connection.rollback()
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.execute(text("SELECT 1"))
        with db.connect() as observer:
            state = observer.execute(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": backend}
            ).scalar_one()

    assert state == "idle"


def test_a_pooled_transaction_sends_begin_with_its_first_statement(database_url, round_trips):
    pool = postgres.Pool(1, postgres.parse_database_url(database_url))
    try:
        with pool.transaction() as connection:
            connection.execute("SELECT 1")  # the pool has connected
        round_trips.clear()

        with pool.transaction() as connection:
            started_at = connection.execute(
                "SELECT now(), pg_sleep(:pause)", {"pause": 0.01}
            ).one()[0]
            later = connection.execute("SELECT now(), clock_timestamp()").one()
        trips = len(round_trips)
    finally:
        pool.close()

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
