"""The ``rft`` command against the test database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from rft_tools.cli.main import main

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


def test_seed_demo_adds_sessions_again_once_the_earlier_ones_have_started(db, capsys):
    main(["seed", "demo"])
    first = json.loads(capsys.readouterr().out)["sessions"]
    with db.begin() as connection:
        connection.execute(
            text("UPDATE course_schedules SET start_datetime = now() - interval '1 day'")
        )

    main(["seed", "demo"])
    second = json.loads(capsys.readouterr().out)["sessions"]

    assert len(second) == 6
    assert not {session["session_id"] for session in first} & {
        session["session_id"] for session in second
    }
    assert {session["course_id"] for session in second} == {
        session["course_id"] for session in first
    }


def test_help_is_plain_text_without_restructuredtext_markup(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])

    help_text = capsys.readouterr().out
    assert "rft: the operators' and developers' command line." in help_text
    assert "``" not in help_text
