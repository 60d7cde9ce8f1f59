"""run_transaction retries what a rerun can fix, and nothing else."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from rft_common.db import run_transaction
from rft_common.errors import DatabaseUnavailable
from tests.factories import add_staff_user

pytestmark = pytest.mark.usefixtures("db")

INSERT_USER = text(
    "INSERT INTO users (email, name, password_hash, role) VALUES (:email, 'X', 'h', 'admin')"
)


def test_losing_the_insert_race_on_the_legacy_email_constraint_is_retried(db):
    with db.begin() as connection:
        add_staff_user(connection, "jo@example.com")
    attempts = []

    def work(connection):
        attempts.append(1)
        if len(attempts) == 1:
            connection.execute(INSERT_USER, {"email": "jo@example.com"})
        return len(attempts)

    assert run_transaction(work) == 2


def test_other_unique_violations_are_not_retried(db):
    with db.begin() as connection:
        add_staff_user(connection, "jo@example.com")
    attempts = []

    def work(connection):
        attempts.append(1)
        connection.execute(INSERT_USER, {"email": " JO@example.com"})

    with pytest.raises(IntegrityError, match="uq_users_email_normalized"):
        run_transaction(work)
    assert len(attempts) == 1


def test_a_connection_lost_during_the_work_is_replaced_and_the_work_run_once_more(db):
    """The engine does not ping before use: a connection found dead by the work's own
    statements is replaced once; a second loss is the database being unreachable."""
    attempts = []

    def work(connection):
        attempts.append(1)
        connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    with pytest.raises(DatabaseUnavailable):
        run_transaction(work)
    assert len(attempts) == 2


def test_work_runs_once_more_after_a_lost_connection_and_its_answer_is_returned(db):
    attempts = []

    def work(connection):
        attempts.append(1)
        if len(attempts) == 1:
            connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return connection.execute(text("SELECT 'answered'")).scalar_one()

    assert run_transaction(work) == "answered"
    assert len(attempts) == 2
