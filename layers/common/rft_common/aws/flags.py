"""Feature flags: one Powertools ``FeatureFlags`` per execution environment.

In AWS the document comes from the AWS AppConfig Agent Lambda extension
(``AppConfigAgentStore``: plain HTTP to ``localhost:2772``; the agent polls AppConfig
and caches the document itself), so no function imports boto3 for its flags. Locally
and in tests it comes from a JSON file in the same schema (``RFT_FLAGS_FILE``) or
from any HTTP endpoint that speaks the agent's protocol (``APPCONFIG_AGENT_URL``).
``CachedFlagStore`` reads and validates it at most once per ``FLAGS_MAX_AGE_SECONDS``.
When the read fails or the document is invalid, every flag takes its safe value below
until the next read, one warning is logged per failed read (so once per cache
period), and requests still succeed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from functools import cache
from pathlib import Path
from time import monotonic
from typing import Any
from urllib.parse import quote, urlsplit

from rft_common.core.emails import rollout_bucket
from rft_common.core.observability import logger
from rft_common.core.settings import get_settings

POWERTOOLS_FEATURE_FLAGS = "aws_lambda_powertools.utilities.feature_flags"


POWERTOOLS_VERSION = "3.37.0"
"""The Powertools release whose feature-flag package ``__init__`` this module bypasses
(pyproject.toml pins it exactly; tests/aws/test_flags_powertools_pin.py fails on a
release whose ``__init__`` or feature-flag modules import anything else)."""


def _feature_flags_package_without_its_init() -> None:
    """Let Powertools' feature-flag modules be imported without the package's
    ``__init__``, which imports its AppConfig stores and through them boto3 and
    botocore (about 150 ms of a cold start) for a store we do not use.

    The package module is registered unexecuted; an attribute it lacks (a name its
    ``__init__`` would define) runs the real ``__init__`` then, so other code that
    imports from the package still works, at the usual price.

    Kept, pinned and tested, because no clean way exists: Python runs a package's
    ``__init__`` before any of its modules, and this one imports the AppConfig store.
    Loading the modules from their files under other names would give us copies of
    Powertools' classes; importing the flags on first use would put boto3 in the
    first request of every function; importing them in the SnapStart before-snapshot
    hook would put boto3 in every snapshot (memory restored on each cold start) and
    back in every local and test run's first request. Writing our own rule evaluator
    would copy Powertools'.
    """
    if POWERTOOLS_FEATURE_FLAGS in sys.modules:
        return
    spec = importlib.util.find_spec(POWERTOOLS_FEATURE_FLAGS)
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def load_on_demand(name: str) -> Any:
        submodule = f"{POWERTOOLS_FEATURE_FLAGS}.{name}"
        if importlib.util.find_spec(submodule) is not None:
            return importlib.import_module(submodule)
        del package.__getattr__  # type: ignore[attr-defined]
        loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = load_on_demand  # type: ignore[attr-defined]
    sys.modules[POWERTOOLS_FEATURE_FLAGS] = package


_feature_flags_package_without_its_init()

from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider  # noqa: E402
from aws_lambda_powertools.utilities.feature_flags.exceptions import (  # noqa: E402
    ConfigurationStoreError,
    SchemaValidationError,
)
from aws_lambda_powertools.utilities.feature_flags.feature_flags import FeatureFlags  # noqa: E402
from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator  # noqa: E402

CUSTOMER_ACCOUNTS = "customer_accounts"
ADMIN_USERS_API = "admin_users_api"
BACKFILL = "backfill"

SAFE_VALUES: dict[str, bool] = {
    CUSTOMER_ACCOUNTS: False,  # the legacy booking flow
    ADMIN_USERS_API: True,
    BACKFILL: False,  # paused
}

AGENT_TIMEOUT_SECONDS = 2
"""Short, so an agent that does not answer delays one request per cache period, not every one."""


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


class AppConfigAgentStore(StoreProvider):
    """Reads the flag document from the AppConfig Agent on every call (cached by the caller).

    The agent's protocol: ``GET /applications/{app}/environments/{env}/configurations/
    {profile}`` answers 200 with the deployed document as its body, or an error status
    (400, 404, 500, 502) with a short text saying why.
    """

    def __init__(self, base_url: str, application: str, environment: str, profile: str) -> None:
        address = urlsplit(base_url)
        self.host = address.hostname or "localhost"
        self.port = address.port or 80
        self.path = "/".join(
            [
                "",
                "applications",
                quote(application, safe=""),
                "environments",
                quote(environment, safe=""),
                "configurations",
                quote(profile, safe=""),
            ]
        )

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        from rft_common.aws.extension_http import ExtensionUnreachable, extension_get

        try:
            status, body = extension_get(
                self.host, self.port, self.path, timeout=AGENT_TIMEOUT_SECONDS
            )
        except ExtensionUnreachable as error:
            raise ConfigurationStoreError(
                f"the AppConfig agent at {self.host}:{self.port} is not reachable: {error}"
            ) from error
        if status != 200:
            said = body[:200].decode(errors="replace").strip()
            denied = status in (401, 403) or "AccessDenied" in said
            raise ConfigurationStoreError(
                f"{'access denied: ' if denied else ''}the AppConfig agent answered "
                f"{status}: {said}"
            )
        try:
            return json.loads(body)
        except ValueError as error:
            raise InvalidFlagDocument(f"invalid flag document: not JSON ({error})") from error

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration


class CachedFlagStore(StoreProvider):
    """Reads and validates the document at most once per ``max_age``, failures included.

    A failure is remembered for ``max_age`` too: the source is not asked on every
    request while it is down, and the warning is logged once per period.
    """

    def __init__(self, source: StoreProvider, max_age: int) -> None:
        self._source = source
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


def build_source() -> StoreProvider:
    settings = get_settings()
    if settings.flags_file:
        return JsonFileStore(Path(settings.flags_file))
    return AppConfigAgentStore(
        settings.appconfig_agent_url,
        application=settings.appconfig_application or "",
        environment=settings.appconfig_environment or "",
        profile=settings.appconfig_profile or "",
    )


@cache
def get_feature_flags() -> FeatureFlags:
    return FeatureFlags(
        store=CachedFlagStore(build_source(), max_age=get_settings().flags_max_age_seconds)
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
