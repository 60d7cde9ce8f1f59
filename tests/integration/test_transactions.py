"""run_transaction retries what a rerun can fix, and nothing else."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from rft_common.db import run_transaction
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
