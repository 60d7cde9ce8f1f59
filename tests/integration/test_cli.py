"""The ``rft`` command against the test database."""

from __future__ import annotations

import json

import pytest

from rft_tools.cli import main

pytestmark = pytest.mark.usefixtures("db")


def test_db_url_prints_the_database_the_stack_uses(database_url, capsys):
    main(["db", "url"])

    assert capsys.readouterr().out.strip() == database_url


def test_seed_demo_is_idempotent_and_prints_sessions_with_ids(capsys):
    main(["seed", "demo"])
    first = json.loads(capsys.readouterr().out)
    main(["seed", "demo"])
    second = json.loads(capsys.readouterr().out)

    assert first == second
    assert len(first["sessions"]) == 6
    assert {session["status"] for session in first["sessions"]} == {"published"}
    assert all(session["max_capacity"] == 12 for session in first["sessions"])
    assert {session["price"] for session in first["sessions"]} == {"75.00", "200.00", "120.00"}
