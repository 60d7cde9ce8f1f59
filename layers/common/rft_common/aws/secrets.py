"""Secrets Manager values, cached per execution environment.

Every secret the functions use (database credentials, signing keys, API keys) is read
here and nowhere else, so how secrets are fetched can change in one place.

In AWS they come from the AWS Parameters and Secrets Lambda Extension: plain HTTP to
``localhost:PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`` with the invocation's session
token, so no function imports boto3 (about 200 ms of a cold start) to read a secret.
The extension keeps its own cache (``SECRETS_MANAGER_TTL`` in template.yaml). Where
that port is not configured (the local stack, tests, tools) they come from Secrets
Manager through boto3, imported only then. Both are called on first use, never at
import: the extension answers only during invocations, not during init.
"""

from __future__ import annotations

import json
import os
import threading
from time import monotonic
from typing import Any
from urllib.parse import quote

from rft_common.core.settings import get_settings

SECRET_MAX_AGE_SECONDS = 60
"""How long this environment keeps a value before asking again. With the extension's
own cache of 240 s (``SECRETS_MANAGER_TTL``), a rotated secret takes effect within
five minutes."""
EXTENSION_TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105 - a header name
EXTENSION_TIMEOUT_SECONDS = 3

_cache: dict[str, tuple[float, str]] = {}
_lock = threading.Lock()


class SecretUnavailable(Exception):
    """The secret could not be read (missing, access denied, unreachable)."""


def secret_string(arn: str) -> str:
    """The ``SecretString`` of the secret ``arn``, cached for ``SECRET_MAX_AGE_SECONDS``."""
    with _lock:
        cached = _cache.get(arn)
    if cached is not None and monotonic() < cached[0]:
        return cached[1]
    port = get_settings().secrets_extension_port
    value = _from_extension(arn, port) if port else _from_secrets_manager(arn)
    with _lock:
        _cache[arn] = (monotonic() + SECRET_MAX_AGE_SECONDS, value)
    return value


def secret_json(arn: str) -> dict[str, Any]:
    """A secret whose ``SecretString`` is a JSON object (the RDS credentials)."""
    value = json.loads(secret_string(arn))
    if not isinstance(value, dict):
        raise SecretUnavailable(f"secret {arn} is not a JSON object")
    return value


def clear_cache() -> None:
    """Forget every cached value (tests; a rotation that must act at once)."""
    with _lock:
        _cache.clear()


def _from_extension(arn: str, port: int) -> str:
    """``GET /secretsmanager/get?secretId=...``; the answer is GetSecretValue's JSON."""
    from rft_common.aws.extension_http import ExtensionUnreachable, extension_get

    try:
        status, body = extension_get(
            "localhost",
            port,
            f"/secretsmanager/get?secretId={quote(arn, safe='')}",
            timeout=EXTENSION_TIMEOUT_SECONDS,
            # The function's credentials, not configuration: Lambda sets (and renews) them.
            headers={EXTENSION_TOKEN_HEADER: os.environ.get("AWS_SESSION_TOKEN", "")},
        )
    except ExtensionUnreachable as error:
        raise SecretUnavailable(
            f"secret {arn} cannot be read: the secrets extension is not reachable ({error})"
        ) from error
    if status != 200:
        raise SecretUnavailable(
            f"secret {arn} cannot be read: the secrets extension answered {status}"
        )
    try:
        value = json.loads(body)["SecretString"]
    except (ValueError, KeyError, TypeError) as error:
        raise SecretUnavailable(f"secret {arn} has no SecretString") from error
    return str(value)


def _from_secrets_manager(arn: str) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
    except (BotoCoreError, ClientError) as error:
        raise SecretUnavailable(f"secret {arn} cannot be read") from error
    if "SecretString" not in answer:
        raise SecretUnavailable(f"secret {arn} has no SecretString")
    return str(answer["SecretString"])
