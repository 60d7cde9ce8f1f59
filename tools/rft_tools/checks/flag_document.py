"""The flag document operators edit, locally and before an AppConfig deployment.

It is the JSON the functions read (Powertools feature-flag schema), checked both the
way the functions check it and against ``config/flags.schema.json``, the validator of
the AppConfig configuration profile. Only ``customer_accounts`` is evaluated per
customer, so only it carries rules, under fixed names: allow-listed emails,
allow-listed domains and a percentage of the stable 0-99 customer bucket. The
percentage always starts at bucket 0, so raising it never turns anyone off.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError

from rft_common.aws.flags import (
    ADMIN_USERS_API,
    BACKFILL,
    CUSTOMER_ACCOUNTS,
    SAFE_VALUES,
    validate_flag_document,
)
from rft_common.core.emails import normalize_email
from rft_tools.paths import LOCAL_DIR, PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "config"
SCHEMA_FILE = CONFIG_DIR / "flags.schema.json"
SAFE_DEFAULTS_FILE = CONFIG_DIR / "flags.default.json"
"""Deployed to AppConfig by template.yaml; a unit test keeps the two identical."""
LOCAL_DEFAULTS_FILE = CONFIG_DIR / "flags.local.json"
LOCAL_FLAGS_FILE = LOCAL_DIR / "flags.json"

ALLOWED_EMAILS = "allow-listed emails"
ALLOWED_DOMAINS = "allow-listed domains"
PERCENTAGE = "percentage rollout"
BUCKETS = 100
READABLE_FILE_MODE = 0o644
"""For a new file: temporary files are private (0600), the flag file is not secret."""


class FlagDocumentError(ValueError):
    """The document cannot be read, or the requested change would make it invalid."""


def flags_file() -> Path:
    """``RFT_FLAGS_FILE`` if set, else the local stack's file (created on first use)."""
    given = os.environ.get("RFT_FLAGS_FILE")
    return Path(given) if given else ensure_local_flags()


def ensure_local_flags() -> Path:
    """The flag file the local stack reads; created from the local defaults on first use."""
    if not LOCAL_FLAGS_FILE.exists():
        LOCAL_FLAGS_FILE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LOCAL_DEFAULTS_FILE, LOCAL_FLAGS_FILE)
    return LOCAL_FLAGS_FILE


def load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FlagDocumentError(f"no flag document at {path}") from None
    except (OSError, ValueError) as error:
        raise FlagDocumentError(f"cannot read {path}: {error}") from None


def validate(document: Any) -> None:
    """Raise ``FlagDocumentError`` listing every reason the functions or AppConfig would
    reject ``document``."""
    problems = [
        f"{'.'.join(str(part) for part in error.absolute_path) or 'document'}: {error.message}"
        for error in sorted(_schema_validator().iter_errors(document), key=str)
    ]
    if problems:
        raise FlagDocumentError("invalid flag document: " + "; ".join(problems))
    try:
        validate_flag_document(document)
    except ConfigurationStoreError as error:
        raise FlagDocumentError(str(error)) from None


@cache
def _schema_validator() -> Any:
    from jsonschema import Draft4Validator

    return Draft4Validator(json.loads(SCHEMA_FILE.read_text()))


def save(path: Path, document: dict[str, Any]) -> None:
    """Validate, then replace ``path`` atomically: readers see the old or the new file."""
    validate(document)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as temporary:
        json.dump(document, temporary, indent=2)
        temporary.write("\n")
        temporary.flush()
        os.fsync(temporary.fileno())
    os.chmod(temporary.name, path.stat().st_mode if path.exists() else READABLE_FILE_MODE)
    os.replace(temporary.name, path)


def switch(document: dict[str, Any], name: str, on: bool) -> dict[str, Any]:
    """``name`` on or off for everyone; for customer_accounts this drops its rules too."""
    return {**document, name: {"default": on}}


def set_percentage(document: dict[str, Any], percent: int) -> dict[str, Any]:
    """customer_accounts for ``percent``% of customers (plus the allow-lists)."""
    if not 0 <= percent <= BUCKETS:
        raise FlagDocumentError(f"percentage must be 0..{BUCKETS}, not {percent}")
    rules = _rules(document)
    rules.pop(PERCENTAGE, None)
    if percent:
        rules[PERCENTAGE] = _rule(
            "MODULO_RANGE", "bucket", {"BASE": BUCKETS, "START": 0, "END": percent - 1}
        )
    return _with_rules(document, rules, default=False)


def allow(document: dict[str, Any], entry: str) -> dict[str, Any]:
    """Add an email or a domain to customer_accounts' allow-lists (idempotent)."""
    rule_name, key, value = _allow_list_entry(entry)
    rules = _rules(document)
    listed = _listed(rules, rule_name)
    if value not in listed:
        rules[rule_name] = _rule("IN", key, sorted([*listed, value]))
    return _with_rules(document, rules)


def disallow(document: dict[str, Any], entry: str) -> dict[str, Any]:
    """Remove an email or a domain from customer_accounts' allow-lists."""
    rule_name, key, value = _allow_list_entry(entry)
    rules = _rules(document)
    listed = _listed(rules, rule_name)
    if value not in listed:
        raise FlagDocumentError(f"{value} is not allow-listed")
    remaining = [item for item in listed if item != value]
    if remaining:
        rules[rule_name] = _rule("IN", key, remaining)
    else:
        del rules[rule_name]
    return _with_rules(document, rules)


MEANINGS: dict[str, dict[str, str]] = {
    CUSTOMER_ACCOUNTS: {
        "on": "bookings find or create their customer and link to them",
        "off": "legacy flow: a booking is stored without a customer",
    },
    ADMIN_USERS_API: {
        "on": "the admin routes answer",
        "off": "kill switch: the admin routes (not sign-in) answer 503",
    },
    BACKFILL: {
        "on": "the backfill worker links historical bookings",
        "off": "backfill paused: its batches wait in the queue",
    },
}
"""What each flag's two states mean, as ``rft flags show`` explains them."""


def summary(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each flag does, in the words of ``rft flags set``, and what that means."""
    result: dict[str, dict[str, Any]] = {}
    for name, safe_value in SAFE_VALUES.items():
        state = "on" if document[name]["default"] else "off"
        result[name] = {
            "default": state,
            "means": MEANINGS[name][state],
            "on": MEANINGS[name]["on"],
            "off": MEANINGS[name]["off"],
            "safe_value": "on" if safe_value else "off",
        }
    rules = _rules(document)
    percentage = rules.get(PERCENTAGE)
    accounts = result[CUSTOMER_ACCOUNTS]
    accounts["percent"] = percentage["conditions"][0]["value"]["END"] + 1 if percentage else 0
    accounts["allow"] = _listed(rules, ALLOWED_EMAILS) + _listed(rules, ALLOWED_DOMAINS)
    if accounts["default"] == "off" and (accounts["percent"] or accounts["allow"]):
        accounts["means"] = (
            f"on for {accounts['percent']}% of customers and the allow-listed "
            f"{', '.join(accounts['allow']) or 'nobody'}; legacy flow for the rest"
        )
    return result


def _allow_list_entry(entry: str) -> tuple[str, str, str]:
    """(rule, context key, normalised value) for an email or a domain."""
    try:
        if "@" in entry.strip().lstrip("@"):
            return ALLOWED_EMAILS, "email", normalize_email(entry)
        domain = normalize_email(f"postmaster@{entry.strip().lstrip('@')}").rpartition("@")[2]
    except ValueError as error:
        raise FlagDocumentError(f"{entry!r} is neither an email nor a domain: {error}") from None
    return ALLOWED_DOMAINS, "domain", domain


def _rules(document: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(document[CUSTOMER_ACCOUNTS].get("rules", {}))


def _listed(rules: dict[str, Any], rule_name: str) -> list[str]:
    rule = rules.get(rule_name)
    return list(rule["conditions"][0]["value"]) if rule else []


def _rule(action: str, key: str, value: Any) -> dict[str, Any]:
    return {"when_match": True, "conditions": [{"action": action, "key": key, "value": value}]}


def _with_rules(
    document: dict[str, Any], rules: dict[str, Any], default: bool | None = None
) -> dict[str, Any]:
    flag: dict[str, Any] = {
        "default": document[CUSTOMER_ACCOUNTS]["default"] if default is None else default
    }
    if rules:
        known = [name for name in (ALLOWED_EMAILS, ALLOWED_DOMAINS, PERCENTAGE) if name in rules]
        flag["rules"] = {**{name: rules[name] for name in known}, **rules}
    return {**document, CUSTOMER_ACCOUNTS: flag}
