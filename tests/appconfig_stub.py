"""AppConfig data answered by botocore's Stubber (moto does not implement it).

The stubbed client is the one the app itself uses (``rft_common.flags.appconfig_client``),
so the path under test is the real Powertools ``AppConfigStore``: session start, token
chaining, empty "unchanged" answers, JSON parsing.
"""

from __future__ import annotations

import io
import json
from typing import Any

from botocore.response import StreamingBody
from botocore.stub import Stubber

APPLICATION, ENVIRONMENT, PROFILE = "app1234", "env1234", "prof123"
APPCONFIG_ENVIRONMENT_VARIABLES = {
    "APPCONFIG_APPLICATION": APPLICATION,
    "APPCONFIG_ENVIRONMENT": ENVIRONMENT,
    "APPCONFIG_PROFILE": PROFILE,
}


class StubbedAppConfig:
    """Queues AppConfig's answers in the order the app will ask for them."""

    def __init__(self, stubber: Stubber) -> None:
        self.stubber = stubber
        self._next_token: str | None = None
        self._tokens_issued = 0

    def serve(self, document: dict[str, Any] | str) -> None:
        """The next fetch returns ``document`` (a dict, or raw text for broken documents)."""
        body = document if isinstance(document, str) else json.dumps(document)
        self._answer_latest(body.encode())

    def serve_unchanged(self) -> None:
        """The next fetch is told the client already has the latest version (empty body)."""
        self._answer_latest(b"")

    def fail(self, code: str = "InternalServerException", status: int = 500) -> None:
        """The next fetch fails; the app then starts a new session for the one after."""
        if self._next_token is None:
            self.stubber.add_client_error(
                "start_configuration_session", service_error_code=code, http_status_code=status
            )
        else:
            self.stubber.add_client_error(
                "get_latest_configuration", service_error_code=code, http_status_code=status
            )
        self._next_token = None

    def _answer_latest(self, body: bytes) -> None:
        if self._next_token is None:
            self._next_token = self._issue_token()
            self.stubber.add_response(
                "start_configuration_session",
                {"InitialConfigurationToken": self._next_token},
                {
                    "ApplicationIdentifier": APPLICATION,
                    "EnvironmentIdentifier": ENVIRONMENT,
                    "ConfigurationProfileIdentifier": PROFILE,
                },
            )
        used, self._next_token = self._next_token, self._issue_token()
        self.stubber.add_response(
            "get_latest_configuration",
            {
                "NextPollConfigurationToken": self._next_token,
                "NextPollIntervalInSeconds": 60,
                "ContentType": "application/json",
                "Configuration": StreamingBody(io.BytesIO(body), len(body)),
            },
            {"ConfigurationToken": used},
        )

    def _issue_token(self) -> str:
        self._tokens_issued += 1
        return f"token-{self._tokens_issued}"
