"""Secrets Manager values, cached per execution environment.

Every secret the functions use (database credentials, signing keys, API keys) is read
here and nowhere else, so how secrets are fetched can change in one place.
"""

from __future__ import annotations

import json
from typing import Any

SECRET_MAX_AGE_SECONDS = 300
"""A rotated secret takes effect within this time."""


class SecretUnavailable(Exception):
    """The secret could not be read (missing, access denied, unreachable)."""


def secret_string(arn: str) -> str:
    """The ``SecretString`` of the secret ``arn``, cached for ``SECRET_MAX_AGE_SECONDS``."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS)
    except parameters.exceptions.GetParameterError as error:
        raise SecretUnavailable(f"secret {arn} cannot be read") from error
    return str(value)


def secret_json(arn: str) -> dict[str, Any]:
    """A secret whose ``SecretString`` is a JSON object (the RDS credentials)."""
    value = json.loads(secret_string(arn))
    if not isinstance(value, dict):
        raise SecretUnavailable(f"secret {arn} is not a JSON object")
    return value
