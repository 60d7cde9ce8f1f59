"""``rft staff create``: a staff login for the local stack; the password never in argv."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import text

from rft_common.core.errors import Unauthorized
from rft_common.staff import service as staff
from rft_tools.cli.main import main
from tests.admin_helpers import add_user

pytestmark = pytest.mark.usefixtures("admin_secret")

PASSWORD = "a-long-local-password"


def create(monkeypatch, capsys, *arguments: str, password: str = PASSWORD) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{password}\n"))
    exit_code = main(["staff", "create", *arguments])
    output = capsys.readouterr()
    return exit_code, output.out, output.err


def stored(db, email: str):
    with db.connect() as connection:
        return connection.execute(
            text("SELECT * FROM users WHERE email_normalized = :email"), {"email": email}
        ).one()


def test_it_creates_an_admin_who_can_sign_in_with_the_password_from_stdin(db, monkeypatch, capsys):
    exit_code, out, _ = create(
        monkeypatch, capsys, "--email", " Alex@Example.com ", "--name", "Alex", "--role", "admin"
    )

    row = stored(db, "alex@example.com")
    assert exit_code == 0
    assert json.loads(out) == {"id": row.id, "role": "admin", "created": True}
    assert (row.role, row.name, row.is_active) == ("admin", "Alex", True)
    assert row.password_hash.startswith("$2b$12$")
    assert PASSWORD not in out
    assert staff.sign_in("alex@example.com", PASSWORD).user.id == row.id


def test_running_it_again_resets_the_password_and_ends_the_sessions(db, monkeypatch, capsys):
    create(monkeypatch, capsys, "--email", "ivy@example.com", "--name", "Ivy", "--role", "admin")
    before = stored(db, "ivy@example.com")

    exit_code, out, _ = create(
        monkeypatch,
        capsys,
        *("--email", "ivy@example.com", "--name", "Ivy Jones", "--role", "instructor"),
        password="another-long-password",
    )

    after = stored(db, "ivy@example.com")
    assert (exit_code, json.loads(out)["created"]) == (0, False)
    assert (after.id, after.role, after.name) == (before.id, "instructor", "Ivy Jones")
    assert after.token_version == before.token_version + 1
    with pytest.raises(Unauthorized):
        staff.sign_in("ivy@example.com", PASSWORD)


def test_a_customers_email_is_refused_and_left_alone(db, monkeypatch, capsys):
    with db.begin() as connection:
        add_user(connection, "sam@example.com", name="Sam")

    exit_code, _, err = create(
        monkeypatch, capsys, "--email", "sam@example.com", "--name", "Sam", "--role", "admin"
    )

    assert exit_code == 2
    assert "belongs to a customer" in err
    row = stored(db, "sam@example.com")
    assert (row.role, row.password_hash) == ("customer", None)


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("short@example.com", "seven77", "at least 8 characters"),
        ("not-an-email", PASSWORD, "not a valid email address"),
    ],
)
def test_a_short_password_or_a_bad_email_is_refused(
    db, monkeypatch, capsys, email, password, message
):
    exit_code, _, err = create(
        monkeypatch, capsys, "--email", email, "--name", "X", "--role", "admin", password=password
    )

    assert exit_code == 2
    assert message in err
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 0


def test_empty_input_is_refused_saying_what_is_missing(db, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    exit_code = main(
        ["staff", "create", "--email", "e@example.com", "--name", "E", "--role", "admin"]
    )

    assert exit_code == 2
    assert "no password given" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["staff", "create", "--email", "e@example.com", "--name", " ", "--role", "admin"])
    assert exit_.value.code == 2
    assert "argument --name: is empty" in capsys.readouterr().err
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 0


def test_customers_cannot_be_created_here(db, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["staff", "create", "--email", "c@example.com", "--name", "C", "--role", "customer"])

    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
