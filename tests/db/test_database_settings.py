"""Where connections go: ``DATABASE_URL`` locally; in AWS the Secrets Manager secret
(moto), with TLS, through RDS Proxy. SQLAlchemy's URL (alembic's) says the same."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from rft_common.core.errors import DatabaseUnavailable
from rft_common.core.settings import get_settings
from rft_common.db import postgres, tables

PROXY = "rft-proxy.proxy-abc.eu-west-2.rds.amazonaws.com"


@pytest.fixture
def aws_settings(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    # Secrets Manager itself (moto), not the Lambda extension a local stack may have set.
    monkeypatch.delenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    monkeypatch.setenv("DB_PROXY_ENDPOINT", PROXY)
    monkeypatch.setenv("DB_NAME", "rft")
    monkeypatch.setenv("DB_SOCKET_TIMEOUT_SECONDS", "7")
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
def test_in_aws_connections_use_the_secret_with_tls_through_rds_proxy():
    assert postgres.connection_arguments() == {
        "user": "app",
        "password": "s3cr:et/@",
        "host": PROXY,
        "port": 5432,
        "database": "rft",
        "ssl_context": True,
        "timeout": 7,
    }


@pytest.mark.usefixtures("aws_settings")
def test_the_sqlalchemy_url_says_the_same():
    url = tables.alembic_url()

    assert url.drivername == "postgresql+pg8000"
    assert (url.username, url.password) == ("app", "s3cr:et/@")
    assert url.host == PROXY
    assert (url.port, url.database) == (5432, "rft")


def test_a_database_url_becomes_pg8000s_arguments_with_its_query_passed_on():
    url = "postgresql+pg8000://app:p%40ss%3Aword@db.example:6543/rft?unix_sock=/tmp/.s.PGSQL.5432"

    assert postgres.parse_database_url(url) == {
        "user": "app",
        "password": "p@ss:word",
        "host": "db.example",
        "port": 6543,
        "database": "rft",
        "unix_sock": "/tmp/.s.PGSQL.5432",
    }


def test_a_url_without_host_port_or_password_takes_pg8000s_defaults():
    arguments = postgres.parse_database_url("postgresql://postgres@/rft")

    assert (arguments["host"], arguments["port"], arguments["password"]) == (
        "localhost",
        5432,
        None,
    )


def test_the_local_database_url_round_trips_through_sqlalchemys_url(monkeypatch):
    monkeypatch.setenv(
        "DATABASE_URL", "postgresql+pg8000://postgres@/rft?unix_sock=/x/.s.PGSQL.5432"
    )
    get_settings.cache_clear()

    url = tables.alembic_url()

    assert url.render_as_string(hide_password=False) == (
        "postgresql+pg8000://postgres@localhost:5432/rft?unix_sock=%2Fx%2F.s.PGSQL.5432"
    )
    get_settings.cache_clear()


def test_another_driver_in_the_url_is_refused_with_the_reason():
    with pytest.raises(DatabaseUnavailable, match=r"postgresql\+pg8000://, not mysql://"):
        postgres.parse_database_url("mysql://app@db/rft")


def test_without_any_database_setting_the_error_says_what_is_missing(monkeypatch):
    for name in ("DATABASE_URL", "DB_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()

    with pytest.raises(DatabaseUnavailable, match="DATABASE_URL or DB_SECRET_ARN"):
        postgres.connection_arguments()
    get_settings.cache_clear()
