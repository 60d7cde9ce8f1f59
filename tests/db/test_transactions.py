"""run_transaction retries what a rerun can fix, and nothing else."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from rft_common.core.errors import DatabaseUnavailable
from rft_common.db import postgres
from rft_common.db.postgres import sqlstate
from tests.factories import add_staff_user

INSERT_USER = (
    "INSERT INTO users (email, name, password_hash, role) VALUES (:email, 'X', 'h', 'admin')"
)
TERMINATE_MYSELF = "SELECT pg_terminate_backend(pg_backend_pid())"


def test_losing_the_insert_race_on_the_legacy_email_constraint_is_retried(db):
    with db.begin() as connection:
        add_staff_user(connection, "jo@example.com")
    attempts = []

    def work(connection):
        attempts.append(1)
        if len(attempts) == 1:
            connection.execute(INSERT_USER, {"email": "jo@example.com"})
        return len(attempts)

    assert postgres.run_transaction(work) == 2


def test_other_unique_violations_are_not_retried(db):
    with db.begin() as connection:
        add_staff_user(connection, "jo@example.com")
    attempts = []

    def work(connection):
        attempts.append(1)
        connection.execute(INSERT_USER, {"email": " JO@example.com"})

    with pytest.raises(Exception, match="uq_users_email_normalized") as raised:
        postgres.run_transaction(work)
    assert sqlstate(raised.value) == "23505"
    assert len(attempts) == 1


def test_a_connection_lost_during_the_work_is_replaced_and_the_work_run_once_more():
    """The engine does not ping before use: a connection found dead by the work's own
    statements is replaced once; a second loss is the database being unreachable."""
    attempts = []

    def work(connection):
        attempts.append(1)
        connection.execute(TERMINATE_MYSELF)

    with pytest.raises(DatabaseUnavailable):
        postgres.run_transaction(work)
    assert len(attempts) == 2


def test_work_runs_once_more_after_a_lost_connection_and_its_answer_is_returned(caplog):
    """Replacing the lost connection is no error: nothing is logged at ERROR (SQLAlchemy's
    pool logs a failure to close it as a plain-text traceback)."""
    attempts = []

    def work(connection):
        attempts.append(1)
        if len(attempts) == 1:
            connection.execute(TERMINATE_MYSELF)
        return connection.execute("SELECT 'answered'").one()[0]

    with caplog.at_level(logging.WARNING):
        assert postgres.run_transaction(work) == "answered"
    assert len(attempts) == 2
    assert [
        record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
    ] == []


def test_what_the_work_wrote_is_committed_and_what_a_failed_work_wrote_is_not(db):
    insert = INSERT_USER

    def fails_after_writing(connection):
        connection.execute(insert, {"email": "kept-out@example.com"})
        raise ValueError("changed its mind")

    postgres.run_transaction(lambda c: c.execute(insert, {"email": "kept@example.com"}))
    with pytest.raises(ValueError, match="changed its mind"):
        postgres.run_transaction(fails_after_writing)

    with db.connect() as connection:
        emails = connection.execute(text("SELECT email FROM users")).scalars().all()
    assert emails == ["kept@example.com"]
