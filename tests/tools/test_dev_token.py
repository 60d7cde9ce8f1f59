"""``rft dev token``: a token for the local stack, and only for it."""

from __future__ import annotations

import time

import jwt
import pytest
from sqlalchemy import text

from rft_tools.cli.main import main
from rft_tools.local.admin import LOCAL_ADMIN_JWT_SECRET


@pytest.fixture(autouse=True)
def no_configured_secret(monkeypatch):
    monkeypatch.delenv("ADMIN_JWT_SECRET", raising=False)
    monkeypatch.delenv("ADMIN_JWT_SECRET_ARN", raising=False)


def test_it_prints_a_token_in_the_login_format_signed_with_the_local_secret(capsys):
    exit_code = main(
        ["dev", "token", "--role", "instructor", "--id", "7", "--email", "ivy@example.com",
         "--ttl", "120"]
    )  # fmt: skip

    token = capsys.readouterr().out.strip()
    claims = jwt.decode(
        token,
        LOCAL_ADMIN_JWT_SECRET,
        algorithms=["HS256"],
        audience="admin",
        issuer="reactfasttraining.co.uk",
    )
    assert exit_code == 0
    assert (claims["id"], claims["email"], claims["role"]) == (7, "ivy@example.com", "instructor")
    assert "sub" not in claims
    assert 115 <= claims["exp"] - time.time() <= 120


def test_a_sub_is_added_only_when_asked_for(db, capsys):
    main(["dev", "token", "--role", "admin", "--sub", "alex"])

    token = capsys.readouterr().out.strip()
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "alex"


def test_the_stack_accepts_its_admin_token_acting_as_its_staff_member_not_user_1(
    db, capsys, monkeypatch
):
    from rft_common.core import settings
    from rft_common.staff.tokens import authenticate_admin

    with db.begin() as connection:  # user 1, as the quick start makes it: a customer
        connection.execute(
            text("INSERT INTO users (email, role) VALUES ('c@example.com', 'customer')")
        )
    main(["dev", "token", "--role", "admin"])
    monkeypatch.setenv("ADMIN_JWT_SECRET", LOCAL_ADMIN_JWT_SECRET)
    settings.get_settings.cache_clear()
    try:
        admin = authenticate_admin(f"Bearer {capsys.readouterr().out.strip()}")
    finally:
        settings.get_settings.cache_clear()

    with db.begin() as connection:
        user = connection.execute(
            text("SELECT email, role FROM users WHERE id = :id"), {"id": admin.id}
        ).one()
    assert admin.role == "admin"
    assert tuple(user) == ("local-admin@example.com", "admin")


def test_each_staff_role_has_its_own_member_and_a_customer_token_needs_an_id(db, capsys):
    main(["dev", "token", "--role", "admin"])
    main(["dev", "token", "--role", "admin"])
    main(["dev", "token", "--role", "instructor"])
    claims = [
        jwt.decode(token, options={"verify_signature": False})
        for token in capsys.readouterr().out.split()
    ]

    assert claims[0]["id"] == claims[1]["id"] != claims[2]["id"]
    assert claims[2]["email"] == "local-instructor@example.com"
    assert main(["dev", "token", "--role", "customer"]) == 2
    assert "needs --id" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ADMIN_JWT_SECRET_ARN", "arn:aws:secretsmanager:eu-west-2:1:secret:rft/admin-jwt"),
        ("ADMIN_JWT_SECRET", "a-real-secret-from-somewhere-else"),
    ],
)
def test_it_refuses_when_another_secret_is_configured(capsys, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)

    exit_code = main(["dev", "token", "--role", "admin"])

    output = capsys.readouterr()
    assert exit_code == 2
    assert output.out == ""
    assert f"refusing: {variable} is set" in output.err


def test_it_signs_when_the_configured_secret_is_the_local_one(db, capsys, monkeypatch):
    monkeypatch.setenv("ADMIN_JWT_SECRET", LOCAL_ADMIN_JWT_SECRET)

    assert main(["dev", "token", "--role", "admin"]) == 0
    assert capsys.readouterr().out.count(".") == 2


@pytest.mark.parametrize(
    "arguments", [["--role", "owner"], ["--role", "admin", "--ttl", "0"], ["--ttl", "60"]]
)
def test_invalid_arguments_exit_with_usage(capsys, arguments):
    with pytest.raises(SystemExit) as exit_:
        main(["dev", "token", *arguments])

    assert exit_.value.code == 2
    assert "usage: rft dev token" in capsys.readouterr().err
