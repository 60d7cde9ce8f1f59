"""Feature flags: one Powertools ``FeatureFlags`` per execution environment.

In AWS the document comes from AppConfig (``AppConfigStore``); locally and in tests
from a JSON file in the same schema (``RFT_FLAGS_FILE``). Either way it is cached for
``FLAGS_MAX_AGE_SECONDS``. When the store cannot be read or the document is invalid,
every flag takes its safe value below and a warning is logged once per cache period:
requests still succeed.
"""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import (
    ConfigurationStoreError,
    SchemaValidationError,
)

from rft_common.emails import rollout_bucket
from rft_common.observability import logger
from rft_common.settings import get_settings

CUSTOMER_ACCOUNTS = "customer_accounts"
ADMIN_USERS_API = "admin_users_api"
BACKFILL = "backfill"

SAFE_VALUES: dict[str, bool] = {
    CUSTOMER_ACCOUNTS: False,  # the legacy booking flow
    ADMIN_USERS_API: True,
    BACKFILL: False,  # paused
}


class JsonFileStore(StoreProvider):
    """Reads the flag document from a local JSON file, re-reading it after ``max_age``."""

    def __init__(self, path: Path, max_age: int) -> None:
        self.path = path
        self.max_age = max_age
        self._document: dict[str, Any] | None = None
        self._read_at = 0.0

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        if self._document is None or time.monotonic() - self._read_at >= self.max_age:
            try:
                self._document = json.loads(self.path.read_text())
            except (OSError, ValueError) as error:
                raise ConfigurationStoreError(f"cannot read {self.path}: {error}") from error
            self._read_at = time.monotonic()
        return self._document

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration


def build_store() -> StoreProvider:
    settings = get_settings()
    if settings.flags_file:
        return JsonFileStore(Path(settings.flags_file), settings.flags_max_age_seconds)
    from aws_lambda_powertools.utilities.feature_flags import AppConfigStore

    return AppConfigStore(
        environment=settings.appconfig_environment or "",
        application=settings.appconfig_application or "",
        name=settings.appconfig_profile or "",
        max_age=settings.flags_max_age_seconds,
    )


@cache
def get_feature_flags() -> FeatureFlags:
    return FeatureFlags(store=build_store())


_last_warning_at = float("-inf")


def is_enabled(name: str, context: dict[str, Any] | None = None) -> bool:
    """Evaluate flag ``name``; its safe value if the document cannot be had."""
    flags = get_feature_flags()
    try:
        flags.get_configuration()
    except (ConfigurationStoreError, SchemaValidationError) as error:
        _warn_once_per_period(error)
        return SAFE_VALUES[name]
    return bool(flags.evaluate(name=name, context=context or {}, default=SAFE_VALUES[name]))


def _warn_once_per_period(error: Exception) -> None:
    global _last_warning_at
    now = time.monotonic()
    if now - _last_warning_at >= get_settings().flags_max_age_seconds:
        _last_warning_at = now
        logger.warning(
            "feature flags unavailable; using safe values",
            extra={"reason": str(error), "safe_values": SAFE_VALUES},
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
