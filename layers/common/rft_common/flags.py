"""Feature flags: one Powertools ``FeatureFlags`` per execution environment.

In AWS the document comes from AppConfig (``AppConfigStore``); locally and in tests
from a JSON file in the same schema (``RFT_FLAGS_FILE``). ``CachedFlagStore`` fetches
it at most once per ``FLAGS_MAX_AGE_SECONDS``, so a change reaches every environment
within that time. When the fetch fails or the document is invalid, every flag takes
its safe value below until the next fetch, one warning is logged per failed fetch
(so once per cache period), and requests still succeed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import (
    ConfigurationStoreError,
    SchemaValidationError,
    StoreClientError,
)
from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator

from rft_common.emails import rollout_bucket
from rft_common.observability import logger
from rft_common.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_appconfigdata import AppConfigDataClient

CUSTOMER_ACCOUNTS = "customer_accounts"
ADMIN_USERS_API = "admin_users_api"
BACKFILL = "backfill"

SAFE_VALUES: dict[str, bool] = {
    CUSTOMER_ACCOUNTS: False,  # the legacy booking flow
    ADMIN_USERS_API: True,
    BACKFILL: False,  # paused
}

APPCONFIG_CONNECT_TIMEOUT_SECONDS = 1
APPCONFIG_READ_TIMEOUT_SECONDS = 2
"""Short, so an unreachable AppConfig delays one request per cache period, not every one."""


class InvalidFlagDocument(ConfigurationStoreError):
    """The document was read but is not a valid flag document for this system."""


class JsonFileStore(StoreProvider):
    """Reads the flag document from a local JSON file on every call (cached by the caller)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError) as error:
            raise ConfigurationStoreError(f"cannot read {self.path}: {error}") from error

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration


class CachedFlagStore(StoreProvider):
    """Fetches and validates the document at most once per ``max_age``, failures included.

    A failure is remembered for ``max_age`` too: AppConfig is not called on every
    request while it is down, and the warning is logged once per period. After a
    failure the source is rebuilt, so an AppConfig session starts afresh.
    """

    def __init__(self, build_source: Callable[[], StoreProvider], max_age: int) -> None:
        self._build_source = build_source
        self._source = build_source()
        self._max_age = max_age
        self._fetch_after = float("-inf")
        self._document: dict[str, Any] | None = None
        self._failure: str | None = None
        """Why the last fetch failed; a fresh exception is raised from it on each call."""
        self._lock = threading.Lock()
        """One fetch at a time: Lambda runs one request per environment, but the local
        stack runs several worker invocations on threads of one process."""

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        with self._lock:
            if monotonic() >= self._fetch_after:
                self._fetch()
            failure, document = self._failure, self._document
        if failure is not None:
            raise ConfigurationStoreError(failure)
        assert document is not None
        return document

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration

    def _fetch(self) -> None:
        self._fetch_after = monotonic() + self._max_age
        try:
            document = self._source.get_configuration()
            validate_flag_document(document)
        except StoreClientError as error:  # AppConfig answered AccessDenied
            self._fail(ConfigurationStoreError(f"access denied: {error.__cause__}"))
        except ConfigurationStoreError as error:
            self._fail(error)
        else:
            if self._failure is not None:
                logger.info("feature flags available again")
            self._document, self._failure = document, None

    def _fail(self, error: ConfigurationStoreError) -> None:
        cause = error.__cause__
        hidden_cause = cause is not None and str(cause) not in str(error)
        self._failure = f"{error}: {cause}" if hidden_cause else str(error)
        self._source = self._build_source()
        logger.warning(
            "feature flags unavailable; using safe values",
            extra={"reason": self._failure, "safe_values": SAFE_VALUES},
        )


def validate_flag_document(document: Any) -> None:
    """Raise ``InvalidFlagDocument`` unless ``document`` is a Powertools flag document
    that defines every flag this system reads. Messages name flags and rules, never
    values: an allow-list holds email addresses, which must not reach the logs."""
    if not isinstance(document, dict):
        raise InvalidFlagDocument(
            f"invalid flag document: a JSON object is expected, not {type(document).__name__}"
        )
    try:
        SchemaValidator(schema=document).validate()
    except SchemaValidationError as error:
        raise InvalidFlagDocument(f"invalid flag document: {error}") from error
    missing = sorted(SAFE_VALUES.keys() - document.keys())
    if missing:
        raise InvalidFlagDocument(f"invalid flag document: missing flags {missing}")


@cache
def appconfig_client() -> AppConfigDataClient:
    """The AppConfig data client of this execution environment (tests stub this one)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "appconfigdata",
        config=Config(
            connect_timeout=APPCONFIG_CONNECT_TIMEOUT_SECONDS,
            read_timeout=APPCONFIG_READ_TIMEOUT_SECONDS,
            retries={"mode": "standard", "total_max_attempts": 2},
        ),
    )


def build_source() -> StoreProvider:
    settings = get_settings()
    if settings.flags_file:
        return JsonFileStore(Path(settings.flags_file))
    return AppConfigStore(
        environment=settings.appconfig_environment or "",
        application=settings.appconfig_application or "",
        name=settings.appconfig_profile or "",
        max_age=0,  # CachedFlagStore caches, for both sources alike
        boto3_client=appconfig_client(),
    )


@cache
def get_feature_flags() -> FeatureFlags:
    return FeatureFlags(
        store=CachedFlagStore(build_source, max_age=get_settings().flags_max_age_seconds)
    )


def is_enabled(name: str, context: dict[str, Any] | None = None) -> bool:
    """Evaluate flag ``name``; its safe value while the document cannot be had."""
    return bool(
        get_feature_flags().evaluate(name=name, context=context or {}, default=SAFE_VALUES[name])
    )


def customer_accounts_enabled(normalized_email: str) -> bool:
    """Whether a booking by this customer creates and links a customer record."""
    return is_enabled(
        CUSTOMER_ACCOUNTS,
        {
            "email": normalized_email,
            "domain": normalized_email.rpartition("@")[2],
            "bucket": rollout_bucket(normalized_email),
        },
    )
