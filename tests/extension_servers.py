"""Local HTTP servers that speak the protocols of the two Lambda extensions we call.

- ``AppConfigAgent``: the AWS AppConfig Agent Lambda extension. ``GET /applications/
  {app}/environments/{env}/configurations/{profile}`` answers the deployed document
  (always the agent's latest copy), or an error status with a short text.
- ``SecretsExtension``: the AWS Parameters and Secrets Lambda Extension. ``GET
  /secretsmanager/get?secretId=...`` with ``X-Aws-Parameters-Secrets-Token`` equal to
  the function's ``AWS_SESSION_TOKEN`` answers GetSecretValue's JSON; a missing or
  wrong token is 401, an unknown secret 400.

Each runs on its own port on a thread, so the code under test makes real HTTP calls.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

APPLICATION, ENVIRONMENT, PROFILE = "app1234", "env1234", "prof123"
APPCONFIG_ENVIRONMENT_VARIABLES = {
    "APPCONFIG_APPLICATION": APPLICATION,
    "APPCONFIG_ENVIRONMENT": ENVIRONMENT,
    "APPCONFIG_PROFILE": PROFILE,
}
SESSION_TOKEN = "session-token-of-this-invocation"


class _LocalServer:
    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = owner.answer(self.path, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                """Quiet: the test run records log lines."""

        self.requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        raise NotImplementedError


class AppConfigAgent(_LocalServer):
    """The agent, holding one document (or failing) until told otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self._status = HTTPStatus.NOT_FOUND
        self._body = b"ResourceNotFoundException: nothing deployed yet"

    def serve(self, document: dict[str, Any] | str) -> None:
        """From now on, answer ``document`` (a dict, or raw text for broken documents)."""
        body = document if isinstance(document, str) else json.dumps(document)
        self._status, self._body = HTTPStatus.OK, body.encode()

    def fail(self, status: int = 502, text: str = "InternalServerException") -> None:
        """From now on, answer ``status`` with ``text``, as the agent does when AppConfig fails."""
        self._status, self._body = status, text.encode()

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        self.requests += 1
        expected = (
            f"/applications/{APPLICATION}/environments/{ENVIRONMENT}/configurations/{PROFILE}"
        )
        if urlsplit(path).path != expected:
            return HTTPStatus.NOT_FOUND, b"ResourceNotFoundException"
        return self._status, self._body


class SecretsExtension(_LocalServer):
    """The extension, holding the secrets it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[str, str] = {}

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        self.requests += 1
        address = urlsplit(path)
        if headers.get("X-Aws-Parameters-Secrets-Token") != SESSION_TOKEN:
            return HTTPStatus.UNAUTHORIZED, b"missing or invalid token"
        secret_id = parse_qs(address.query).get("secretId", [""])[0]
        if address.path != "/secretsmanager/get" or secret_id not in self.secrets:
            return HTTPStatus.BAD_REQUEST, b"ResourceNotFoundException"
        body = {
            "ARN": secret_id,
            "Name": secret_id.rsplit(":", 1)[-1],
            "SecretString": self.secrets[secret_id],
            "VersionId": "v1",
            "VersionStages": ["AWSCURRENT"],
        }
        return HTTPStatus.OK, json.dumps(body).encode()
