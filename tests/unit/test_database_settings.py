"""In AWS the database URL is built from the Secrets Manager secret (moto)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from rft_common import db
from rft_common.settings import get_settings


@pytest.fixture
def aws_settings(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    monkeypatch.setenv("DB_PROXY_ENDPOINT", "rft-proxy.proxy-abc.eu-west-2.rds.amazonaws.com")
    monkeypatch.setenv("DB_NAME", "rft")
    with mock_aws():
        secret = boto3.client("secretsmanager").create_secret(
            Name="rft/db",
            SecretString=json.dumps(
                {"username": "app", "password": "s3cr:et/@", "host": "db.internal", "port": 5432}
            ),
        )
        monkeypatch.setenv("DB_SECRET_ARN", secret["ARN"])
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("aws_settings")
def test_the_url_comes_from_the_secret_and_points_at_rds_proxy():
    url = db.database_url()

    assert url.drivername == "postgresql+pg8000"
    assert (url.username, url.password) == ("app", "s3cr:et/@")
    assert url.host == "rft-proxy.proxy-abc.eu-west-2.rds.amazonaws.com"
    assert (url.port, url.database) == (5432, "rft")


def test_without_any_database_setting_the_error_says_what_is_missing(monkeypatch):
    for name in ("DATABASE_URL", "DB_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()

    with pytest.raises(db.DatabaseUnavailable, match="DATABASE_URL or DB_SECRET_ARN"):
        db.database_url()
    get_settings.cache_clear()
