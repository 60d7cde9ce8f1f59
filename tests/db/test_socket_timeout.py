"""A statement that outlives the socket timeout: a backfill batch is retried once on a
fresh connection; other work fails; no timed-out connection goes back to the pool."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from rft_common.backfill import service as backfill
from rft_common.backfill.service import process_batch
from rft_common.db import postgres
from tests.backfill_helpers import contact, insert_legacy_bookings, key_message, state
from tests.factories import add_session, stats_mismatches

SOCKET_TIMEOUT_SECONDS = 1
STALL = f"SELECT pg_sleep({SOCKET_TIMEOUT_SECONDS + 0.5})"
"""Longer than the socket timeout: pg8000 raises ``TimeoutError`` while it waits."""
BACKEND = "SELECT pg_backend_pid()"


@pytest.fixture
def short_socket_timeout(db, database_settings) -> None:
    database_settings(DB_SOCKET_TIMEOUT_SECONDS=str(SOCKET_TIMEOUT_SECONDS), DB_POOL_SIZE="1")


@pytest.mark.usefixtures("short_socket_timeout")
def test_a_batch_whose_statement_times_out_is_retried_once_on_a_fresh_connection(db, monkeypatch):
    with db.begin() as connection:
        session_id = add_session(connection)
        insert_legacy_bookings(
            connection, session_id, [contact(f"p{i % 4}@example.com") for i in range(12)]
        )
    backends: list[int] = []
    claim = backfill._claim_batch

    def claim_then_stall_the_first_time(connection, message, parameters):
        claim(connection, message, parameters)
        backends.append(connection.execute(BACKEND).scalar_one())
        if len(backends) == 1:
            connection.execute(STALL)

    monkeypatch.setattr(backfill, "_claim_batch", claim_then_stall_the_first_time)

    result = process_batch(key_message(batch_id="stalled"))

    assert (result.bookings_linked, result.customers_created) == (12, 4)
    assert len(backends) == 2 and backends[0] != backends[1]
    with db.connect() as connection:
        runs = connection.execute(text("SELECT runs, status FROM backfill_batches")).one()
        assert stats_mismatches(connection) == []
    assert tuple(runs) == (1, "done")


@pytest.mark.usefixtures("short_socket_timeout")
def test_a_batch_that_times_out_twice_fails_and_leaves_nothing(db, monkeypatch):
    with db.begin() as connection:
        session_id = add_session(connection)
        insert_legacy_bookings(connection, session_id, [contact("jo@example.com")])
    before = state(db)
    calls: list[int] = []
    claim = backfill._claim_batch

    def always_stall(connection, message, parameters):
        calls.append(1)
        claim(connection, message, parameters)
        connection.execute(STALL)

    monkeypatch.setattr(backfill, "_claim_batch", always_stall)

    with pytest.raises(TimeoutError):
        process_batch(key_message())

    assert len(calls) == 2
    assert state(db) == before


@pytest.mark.usefixtures("short_socket_timeout")
def test_other_work_is_not_retried_and_the_pool_hands_out_a_working_connection():
    calls: list[int] = []
    backend = BACKEND

    def stall(connection):
        calls.append(connection.execute(backend).one()[0])
        connection.execute(STALL)

    with pytest.raises(TimeoutError):
        postgres.run_transaction(stall)

    after = postgres.run_transaction(lambda c: c.execute(backend).one()[0])
    assert len(calls) == 1
    assert after != calls[0]  # the timed-out connection was discarded, not pooled


STALL_AT_COMMIT = (
    "CREATE TEMPORARY TABLE stalls_at_commit (n int)",
    "CREATE FUNCTION pg_temp.stall() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN PERFORM pg_sleep({SOCKET_TIMEOUT_SECONDS + 0.5}); RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER stall AFTER INSERT ON stalls_at_commit "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.stall()",
    "INSERT INTO stalls_at_commit VALUES (1)",
)
"""A transaction whose COMMIT outlives the socket timeout (a deferred trigger sleeps)."""


@pytest.mark.usefixtures("short_socket_timeout")
def test_a_connection_whose_commit_timed_out_is_discarded_not_reused(caplog):
    """Its late COMMIT reply must not be read as the answer to the next statement, nor
    waited for by a rollback (which would time out too and be logged as an error)."""
    backends: list[int] = []
    backend = BACKEND

    def commit_stalls(connection):
        backends.append(connection.execute(backend).one()[0])
        for statement in STALL_AT_COMMIT:
            connection.execute(statement)

    with caplog.at_level(logging.WARNING), pytest.raises(TimeoutError):
        postgres.run_transaction(commit_stalls)

    def answer(connection):
        return connection.execute(backend).one()[0], connection.execute(
            "SELECT 41 + 1 AS answer"
        ).one()[0]

    after, answered = postgres.run_transaction(answer)
    assert after != backends[0]
    assert answered == 42
    assert [
        record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
    ] == []
