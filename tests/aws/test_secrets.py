"""Secrets through the Parameters and Secrets extension's HTTP protocol (a local server
speaking it), and through Secrets Manager (moto) where no extension is configured."""

from __future__ import annotations

import json
import socket

import boto3
import pytest
from moto import mock_aws

from rft_common.aws import secrets
from rft_common.aws.secrets import SecretUnavailable, secret_json, secret_string
from rft_common.core.settings import get_settings

ARN = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:rft/admin-jwt-AbCdEf"


def test_a_secret_is_read_through_the_extension_with_the_session_token(secrets_extension):
    secrets_extension.secrets[ARN] = "the-signing-secret"

    assert secret_string(ARN) == "the-signing-secret"


def test_a_json_secret_is_parsed(secrets_extension):
    secrets_extension.secrets[ARN] = json.dumps({"username": "app", "password": "p"})

    assert secret_json(ARN) == {"username": "app", "password": "p"}


def test_a_value_is_asked_for_once_per_max_age(secrets_extension, monkeypatch):
    now = [1_000.0]
    monkeypatch.setattr(secrets, "monotonic", lambda: now[0])
    secrets_extension.secrets[ARN] = "before rotation"
    assert secret_string(ARN) == "before rotation"
    secrets_extension.secrets[ARN] = "after rotation"

    cached = secret_string(ARN)
    now[0] += secrets.SECRET_MAX_AGE_SECONDS
    fresh = secret_string(ARN)

    assert (cached, fresh) == ("before rotation", "after rotation")
    assert secrets_extension.requests == 2


def test_a_wrong_session_token_is_refused_by_the_extension(secrets_extension, monkeypatch):
    secrets_extension.secrets[ARN] = "the-signing-secret"
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a token of another invocation")

    with pytest.raises(SecretUnavailable, match="answered 401"):
        secret_string(ARN)


def test_an_unknown_secret_is_unavailable_and_not_cached(secrets_extension):
    with pytest.raises(SecretUnavailable, match="cannot be read"):
        secret_string(ARN)
    secrets_extension.secrets[ARN] = "created since"

    assert secret_string(ARN) == "created since"


def test_an_extension_that_is_not_running_makes_the_secret_unavailable(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(port))
    get_settings.cache_clear()
    secrets.clear_cache()

    with pytest.raises(SecretUnavailable, match="not reachable"):
        secret_string(ARN)


def test_without_the_extension_secrets_come_from_secrets_manager(monkeypatch):
    monkeypatch.delenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", raising=False)
    get_settings.cache_clear()
    secrets.clear_cache()
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="rft/stripe", SecretString="sk_test_123"
        )["ARN"]

        assert secret_string(arn) == "sk_test_123"
    secrets.clear_cache()
