"""Shared fixtures: a real PostgreSQL migrated to head, flag files, handler loading.

The database is ``TEST_DATABASE_URL`` (or ``DATABASE_URL``) when given, on which a
scratch database ``rft_test`` is created; otherwise an embedded PostgreSQL of the
run's own under ``.local/pgtest-<pid>``, removed afterwards. Tests that commit clean
up by truncating every table.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "RFT/Customers")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-2")
os.environ["DB_POOL_SIZE"] = "40"

from rft_tools.local.db import embedded_url, ensure_database, start_embedded
from rft_tools.operations.migrations import upgrade
from rft_tools.paths import LOCAL_DIR
from tests.extension_servers import (
    APPCONFIG_ENVIRONMENT_VARIABLES,
    SESSION_TOKEN,
    AppConfigAgent,
    SecretsExtension,
)

pytest_plugins = ("tests.attendee_helpers",)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA_DIR = LOCAL_DIR / f"pgtest-{os.getpid()}"
"""A server per test run, so that concurrent runs never stop each other's database."""
ALL_TABLES = (
    "users, courses, course_schedules, bookings, payments, idempotency_keys, user_audit_log, "
    "user_counts, backfill_batches, backfill_unlinkable, admin_login_failures, "
    "admin_revoked_refresh_tokens, payment_checkouts, stripe_events, erasure_suppressions, "
    "user_email_aliases, user_merges, not_duplicate_pairs, duplicate_candidates, "
    "duplicate_scan_queue, email_outbox, email_suppressions, staff_password_resets, "
    "staff_password_reset_requests, booking_attendees, certificates, consent_events, "
    "renewal_reminders, user_match_keys"
)


def _reset_app_caches() -> None:
    from rft_common.aws import flags, secrets
    from rft_common.core import settings
    from rft_common.db import postgres

    settings.get_settings.cache_clear()
    flags.get_feature_flags.cache_clear()
    secrets.clear_cache()
    postgres.reset_pool()


@pytest.fixture(autouse=True)
def environment_kept_to_the_test() -> Iterator[None]:
    """Whatever a test (or code it runs in-process, such as the CLI or a local stack's
    function loader) puts in ``os.environ`` ends with it: a leaked ``AWS_ENDPOINT_URL``
    of a stopped moto server failed every later test that talks to AWS."""
    from rft_common.core.settings import get_settings

    before = dict(os.environ)
    yield
    if dict(os.environ) != before:
        os.environ.clear()
        os.environ.update(before)
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A URL for a maintenance database on a running server (``postgres``)."""
    given = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    server = start_embedded(TEST_DATA_DIR)
    yield embedded_url(TEST_DATA_DIR, "postgres")
    server.stop()
    shutil.rmtree(TEST_DATA_DIR, ignore_errors=True)


def scratch_database(server_url: str, name: str) -> str:
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    ensure_database(url, recreate=True)
    return url


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> str:
    url = scratch_database(postgres_server_url, "rft_test")
    upgrade(url)
    os.environ["DATABASE_URL"] = url
    _reset_app_caches()
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url, pool_size=5)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    """The test database, emptied after the test (tests commit, as the app does)."""
    yield engine
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))


@pytest.fixture
def database_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set database environment variables (``DB_POOL_SIZE``, ``DB_SOCKET_TIMEOUT_SECONDS``)
    for this test: the pool is rebuilt with them, and without them after the test."""
    from rft_common.db import postgres

    def apply(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        postgres.reset_pool()

    yield apply
    postgres.reset_pool()  # rebuilt on next use, after monkeypatch restores the variables


@pytest.fixture
def set_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict], None]:
    """Point the app at a flag document: the safe defaults with the given flags replaced."""

    def write(flags: dict[str, Any]) -> None:
        path = tmp_path / "flags.json"
        path.write_text(json.dumps(load_safe_default_flags() | flags))
        monkeypatch.setenv("RFT_FLAGS_FILE", str(path))
        monkeypatch.setenv("FLAGS_MAX_AGE_SECONDS", "0")
        reset_flag_caches()

    yield write
    reset_flag_caches()


def load_safe_default_flags() -> dict[str, Any]:
    """The document the template deploys to AppConfig (config/flags.default.json)."""
    return json.loads((PROJECT_ROOT / "config" / "flags.default.json").read_text())


def reset_flag_caches() -> None:
    from rft_common.aws import flags
    from rft_common.core import settings

    settings.get_settings.cache_clear()
    flags.get_feature_flags.cache_clear()


class FlagClock:
    """The monotonic clock of ``rft_common.aws.flags``, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def flag_clock(monkeypatch: pytest.MonkeyPatch) -> FlagClock:
    from rft_common.aws import flags

    clock = FlagClock()
    monkeypatch.setattr(flags, "monotonic", lambda: clock.now)
    return clock


@pytest.fixture
def appconfig(monkeypatch: pytest.MonkeyPatch, flag_clock: FlagClock) -> Iterator[AppConfigAgent]:
    """Flags from the AppConfig agent's HTTP protocol (a local server; cache max age 5 s
    on ``flag_clock``), as the functions read them in AWS."""
    agent = AppConfigAgent()
    monkeypatch.delenv("RFT_FLAGS_FILE", raising=False)
    monkeypatch.setenv("APPCONFIG_AGENT_URL", agent.url)
    for name, value in APPCONFIG_ENVIRONMENT_VARIABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FLAGS_MAX_AGE_SECONDS", "5")
    reset_flag_caches()
    yield agent
    agent.stop()
    reset_flag_caches()


@pytest.fixture
def secrets_extension(monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretsExtension]:
    """Secrets from the Parameters and Secrets extension's HTTP protocol (a local server),
    as the functions read them in AWS."""
    from rft_common.aws import secrets
    from rft_common.core.settings import get_settings

    extension = SecretsExtension()
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(extension.port))
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    get_settings.cache_clear()
    secrets.clear_cache()
    yield extension
    extension.stop()
    secrets.clear_cache()
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def customer_accounts_on(set_flags: Callable[[dict], None]) -> None:
    set_flags({"customer_accounts": {"default": True}})


@pytest.fixture
def customer_accounts_off(set_flags: Callable[[dict], None]) -> None:
    set_flags({"customer_accounts": {"default": False}})


def load_function(name: str, instance: str = "0") -> ModuleType:
    """Import ``functions/<name>/app.py`` as its own module, like one Lambda environment.

    Each ``instance`` is a separate module object (its own resolver), as separate
    execution environments would be.
    """
    path = PROJECT_ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"lambda_{name}_{instance}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeLambdaContext:
    def __init__(self, function_name: str = "test-function") -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = (
            f"arn:aws:lambda:eu-west-2:123456789012:function:{function_name}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class LogTee(io.TextIOBase):
    """A log stream that writes to the real stream, the whole-run record and any
    per-test buffers listening at the moment."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.run_record = io.StringIO()
        self.listeners: list[io.StringIO] = []

    def write(self, text: str) -> int:
        self.run_record.write(text)
        for listener in self.listeners:
            listener.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
UK_PHONE = re.compile(r"(?:\+44\s?|\b0)(?:7\d{3}\s?\d{6}|\d{2,4}\s\d{3}\s\d{4})\b")


@pytest.fixture(scope="session", autouse=True)
def log_tee() -> Iterator[LogTee]:
    """Record every log line of the whole run; at the end, fail it if any line holds
    an email address or a phone number (logs must never carry PII)."""
    from rft_common.core.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    tee = LogTee(handler.stream)
    handler.setStream(tee)
    everything_else = logging.StreamHandler(tee.run_record)
    everything_else.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(everything_else)
    root.setLevel(min(root.level, logging.INFO))
    yield tee
    root.removeHandler(everything_else)
    handler.setStream(tee.stream)
    leaks = [
        line
        for line in tee.run_record.getvalue().splitlines()
        if EMAIL.search(line) or UK_PHONE.search(line)
    ]
    assert not leaks, f"{len(leaks)} log lines carry PII, e.g. {leaks[:3]}"


@pytest.fixture
def captured_logs(log_tee: LogTee) -> Iterator[io.StringIO]:
    """Everything the shared Powertools logger writes during the test."""
    buffer = io.StringIO()
    log_tee.listeners.append(buffer)
    yield buffer
    log_tee.listeners.remove(buffer)


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def rest_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (payload v1) proxy event, as ``sam local generate-event`` makes."""
    all_headers = {"Content-Type": "application/json", "Host": "127.0.0.1:3000"} | (headers or {})
    raw_body = body if isinstance(body, str) or body is None else json.dumps(body)
    request_id = str(uuid.uuid4())
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {key: [value] for key, value in all_headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "httpMethod": method,
            "path": f"/Prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "resourcePath": resource or path,
            "stage": "Prod",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }


@pytest.fixture
def admin_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Admin tokens are signed with ``tests.admin_helpers.TEST_ADMIN_SECRET`` (access) and
    ``TEST_REFRESH_SECRET`` (refresh)."""
    from rft_common.core import settings
    from tests.admin_helpers import TEST_ADMIN_SECRET, TEST_REFRESH_SECRET

    monkeypatch.setenv("ADMIN_JWT_SECRET", TEST_ADMIN_SECRET)
    monkeypatch.setenv("ADMIN_REFRESH_SECRET", TEST_REFRESH_SECRET)
    for variable in (
        "ADMIN_JWT_SECRET_ARN",
        "ADMIN_REFRESH_SECRET_ARN",
        "ADMIN_JWT_ISSUER",
        "ADMIN_JWT_AUDIENCE",
    ):
        monkeypatch.delenv(variable, raising=False)
    settings.get_settings.cache_clear()
    yield TEST_ADMIN_SECRET
    settings.get_settings.cache_clear()


@pytest.fixture
def signed_in_admin(db: Engine, admin_secret: str) -> int:
    """The account behind ``tests.admin_helpers.token_for()``'s default token, stored (the
    admin gate checks on every request that it is still an active admin at the token's
    version); its id. Lists of users see its row."""
    from tests.admin_helpers import add_signed_in_admin

    return add_signed_in_admin()


@pytest.fixture(scope="session")
def admin_users_function() -> ModuleType:
    return load_function("admin_users")


@pytest.fixture
def export_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3 bucket for the users export, in moto's in-process AWS."""
    import boto3
    from moto import mock_aws

    from rft_common.core import settings
    from rft_common.kit import csv_export as export

    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket="rft-admin-exports-test",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-2"},
        )
        monkeypatch.setenv("ADMIN_EXPORT_BUCKET", "rft-admin-exports-test")
        settings.get_settings.cache_clear()
        export.s3_client.cache_clear()
        yield "rft-admin-exports-test"
    export.s3_client.cache_clear()
    settings.get_settings.cache_clear()


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """A localstripe of the run's own on a free port, like the embedded PostgreSQL."""
    from rft_tools.local.stripe import localstripe

    with localstripe() as url:
        yield url


@pytest.fixture
def stripe_keys(localstripe_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app talks to the run's localstripe with the local test keys."""
    from rft_common.checkout import stripe_api
    from rft_common.core import settings
    from rft_tools.local.stripe import local_stripe_environment

    for name, value in local_stripe_environment(localstripe_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STRIPE_SECRET_KEY_ARN", raising=False)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET_ARN", raising=False)
    settings.get_settings.cache_clear()
    stripe_api._client.cache_clear()
    yield localstripe_url
    settings.get_settings.cache_clear()


@pytest.fixture(scope="session")
def moto_server_url() -> Iterator[str]:
    """A moto server of the run's own (as ``make run`` starts one), for SES."""
    from rft_tools.local.aws import start_moto_server

    server, url = start_moto_server()
    yield url
    server.stop()


@pytest.fixture
def local_ses(moto_server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app sends email to the run's moto SES, emptied first, exactly as the local
    stack does (its identity verified, its sender settings); tests read what was sent
    with ``rft_tools.local.mail.sent_mail(local_ses)``, as ``rft mail list`` does."""
    import urllib.request

    from rft_common.core import settings
    from rft_common.email import ses
    from rft_tools.cfn_template import load_template
    from rft_tools.local.aws import LOCAL_CREDENTIALS
    from rft_tools.local.mail import local_email_environment

    request = urllib.request.Request(f"{moto_server_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    for name, value in {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": moto_server_url}.items():
        monkeypatch.setenv(name, value)
    template = load_template(Path(__file__).resolve().parents[1] / "template.yaml")
    for name, value in local_email_environment(template).items():
        monkeypatch.setenv(name, value)
    settings.get_settings.cache_clear()
    ses._client.cache_clear()
    yield moto_server_url
    ses._client.cache_clear()
    settings.get_settings.cache_clear()
