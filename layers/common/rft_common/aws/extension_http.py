"""GET from a Lambda extension's HTTP endpoint on the sandbox's loopback (AppConfig
Agent on 2772, Parameters and Secrets on 2773): no boto3 on the request path."""

from __future__ import annotations

from http.client import HTTPConnection, HTTPException


class ExtensionUnreachable(Exception):
    """Nothing answered (not running, refused, timed out, or a broken answer)."""


def extension_get(
    host: str, port: int, path: str, *, timeout: float, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """The status and body of ``GET path``; ``ExtensionUnreachable`` when nothing answers."""
    connection = HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, HTTPException) as error:
        raise ExtensionUnreachable(str(error)) from error
    finally:
        connection.close()
