"""``rft dev token``: a token for the local stack, and only for it."""

from __future__ import annotations

import time

import jwt
import pytest

from rft_tools.cli import main
from rft_tools.local_admin import LOCAL_ADMIN_JWT_SECRET


@pytest.fixture(autouse=True)
def no_configured_secret(monkeypatch):
    monkeypatch.delenv("ADMIN_JWT_SECRET", raising=False)
    monkeypatch.delenv("ADMIN_JWT_SECRET_ARN", raising=False)


def test_it_prints_a_token_signed_with_the_local_secret(capsys):
    exit_code = main(["dev", "token", "--role", "instructor", "--sub", "ivy", "--ttl", "120"])

    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, LOCAL_ADMIN_JWT_SECRET, algorithms=["HS256"])
    assert exit_code == 0
    assert (claims["role"], claims["sub"]) == ("instructor", "ivy")
    assert 115 <= claims["exp"] - time.time() <= 120


def test_the_stack_accepts_its_admin_token(capsys, monkeypatch):
    from rft_common import settings
    from rft_common.auth import authenticate_admin

    main(["dev", "token", "--role", "admin"])
    monkeypatch.setenv("ADMIN_JWT_SECRET", LOCAL_ADMIN_JWT_SECRET)
    settings.get_settings.cache_clear()
    try:
        admin = authenticate_admin(f"Bearer {capsys.readouterr().out.strip()}")
    finally:
        settings.get_settings.cache_clear()

    assert admin.subject == "local-admin"


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


def test_it_signs_when_the_configured_secret_is_the_local_one(capsys, monkeypatch):
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
