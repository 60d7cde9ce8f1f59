"""Local API Gateway + Lambda emulator for ``make run``, driven by the SAM template.

Every ``AWS::Serverless::Function`` with ``Api`` (REST API, payload 1.0) or ``HttpApi``
(HTTP API, payload 2.0) events becomes a route. A request is matched like API Gateway
does, turned into the event API Gateway would send, handed to the handler in-process,
and the handler's proxy result is turned back into the HTTP response.

Deliberate differences from API Gateway:

- an unknown path answers 404 ``{"message": "Not Found"}`` and a known path without a
  route for the method 405 ``{"message": "Method Not Allowed"}``; API Gateway answers
  403 "Missing Authentication Token" for both, which only confuses locally;
- all functions share one process and so one ``os.environ`` (see ``merged_environment``);
- each function serves one request at a time, like a single warm Lambda instance;
  ``Timeout`` is reported through the context but not enforced;
- authorizers, CORS, stages, stage variables and ``$default`` routes are not emulated.

Run: ``python -m rft_tools.local.api --template template.yaml --port 3000 --env KEY=VALUE``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote
from uuid import uuid4

from rft_tools.cfn_template import load_template
from rft_tools.local.functions import (
    ACCOUNT_ID,
    FunctionDefinitionError,
    Handler,
    TemplateFunction,
    functions_with_events,
)

ApiType = Literal["Api", "HttpApi"]

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
API_ID = "local"
_REQUEST_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S +0000"


@dataclass(frozen=True)
class Route:
    """One API event of one function."""

    function: TemplateFunction
    method: str  # upper case; "ANY" matches every method
    path: str  # API Gateway path template, e.g. /api/admin/users/{id}
    api_type: ApiType

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Request:
    """An HTTP request as received, before it becomes a Lambda event."""

    method: str
    target: str  # request-line target: raw path plus optional "?query"
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"

    @property
    def raw_path(self) -> str:
        return self.target.partition("?")[0] or "/"

    @property
    def raw_query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        """Last value of a header, case-insensitively."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class RouteNotFoundError(LookupError):
    """No route has a path template matching the request path."""


class MethodNotAllowedError(LookupError):
    """The path matches a route, but none for the request method."""


class MalformedResponseError(ValueError):
    """The handler's result is not a valid Lambda proxy response."""


class EnvironmentConflictError(ValueError):
    """Two functions declare different literal values for the same variable."""


# --- template -> routes -------------------------------------------------------------


def load_routes(template_path: Path) -> list[Route]:
    """Routes of every ``Api``/``HttpApi`` event of every function in the template."""
    return _routes_from_template(load_template(template_path), template_path.parent.resolve())


def _routes_from_template(template: dict[str, Any], base_dir: Path) -> list[Route]:
    routes: list[Route] = []
    for function, events in functions_with_events(template, base_dir, ("Api", "HttpApi")):
        for event_name, event in events.items():
            event_properties = event.get("Properties") or {}
            path, method = event_properties.get("Path"), event_properties.get("Method")
            where = f"{function.function_id}.Events.{event_name}"
            if not isinstance(path, str) or not path.startswith("/") or not isinstance(method, str):
                raise FunctionDefinitionError(
                    f"{where}: needs a literal Path starting with '/' and a Method"
                )
            payload_format = str(event_properties.get("PayloadFormatVersion", "2.0"))
            if event["Type"] == "HttpApi" and payload_format != "2.0":
                raise FunctionDefinitionError(
                    f"{where}: only payload format 2.0 is supported for HttpApi"
                )
            routes.append(Route(function, method.upper(), path, event["Type"]))
    return routes


def merged_environment(
    functions: Iterable[TemplateFunction], overrides: dict[str, str]
) -> dict[str, str]:
    """One environment for all the given functions, as they share a process locally.

    Raises EnvironmentConflictError when two functions would see different values for
    the same variable; an override for that key resolves the conflict.
    """
    merged: dict[str, str] = {}
    declared_by: dict[str, str] = {}
    for function in functions:
        for key, value in (dict(function.environment) | overrides).items():
            if key in merged and merged[key] != value:
                raise EnvironmentConflictError(
                    f"environment variable {key} differs between {declared_by[key]} and "
                    f"{function.function_id}; functions share one process locally, so pass "
                    "an override"
                )
            merged[key] = value
            declared_by.setdefault(key, function.function_id)
    return merged


# --- routing ------------------------------------------------------------------------


def match_route(
    routes: Iterable[Route], method: str, raw_path: str
) -> tuple[Route, dict[str, str]]:
    """The route API Gateway would pick for a raw (percent-encoded) path, with its
    URL-decoded path parameters.

    Per segment, a literal beats ``{param}``, which beats ``{proxy+}``; for equally
    specific paths an explicit method beats ``ANY``. Template order does not matter.
    Only routes allowing the method compete (HTTP API style), so ``POST`` to a GET-only
    ``/api/x`` falls through to an ``ANY /api/{proxy+}`` route if there is one.
    """
    segments = [segment for segment in raw_path.split("/") if segment]
    candidates = [
        (route, params)
        for route in routes
        if (params := _match_path(route.path, segments)) is not None
    ]
    if not candidates:
        raise RouteNotFoundError(raw_path)
    allowed = [(route, params) for route, params in candidates if route.method in (method, "ANY")]
    if not allowed:
        raise MethodNotAllowedError(f"{method} {raw_path}")
    return min(allowed, key=lambda match: (_specificity(match[0].path), match[0].method == "ANY"))


def _match_path(template: str, segments: list[str]) -> dict[str, str] | None:
    parts = [part for part in template.split("/") if part]
    params: dict[str, str] = {}
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if not rest:
                return None
            params[part[1:-2]] = unquote("/".join(rest))
            return params
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = unquote(segments[index])
        elif part != unquote(segments[index]):
            return None
    return params if len(parts) == len(segments) else None


def _specificity(template: str) -> tuple[int, ...]:
    """Lower sorts first: 0 literal, 1 ``{param}``, 2 ``{proxy+}`` per segment."""
    return tuple(
        2 if part.endswith("+}") else 1 if part.startswith("{") else 0
        for part in template.split("/")
        if part
    )


# --- events -------------------------------------------------------------------------


def build_rest_event(route: Route, request: Request, path_params: dict[str, str]) -> dict[str, Any]:
    """REST API (payload format 1.0) proxy event."""
    now = datetime.now(UTC)
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.raw_query, keep_blank_values=True):
        multi_query.setdefault(key, []).append(value)
    body, is_base64 = _encode_body(request.body)
    path = unquote(request.raw_path)
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {key: values[-1] for key, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": request.header("host") or "localhost",
            "stage": "local",
            "protocol": request.protocol,
            "identity": {"sourceIp": request.source_ip, "userAgent": request.header("user-agent")},
            "requestId": str(uuid4()),
            "requestTime": now.strftime(_REQUEST_TIME_FORMAT),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourcePath": route.path,
            "httpMethod": request.method,
            "path": path,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def build_http_api_event(
    route: Route, request: Request, path_params: dict[str, str]
) -> dict[str, Any]:
    """HTTP API (payload format 2.0) event; like API Gateway, absent parts are left out."""
    now = datetime.now(UTC)
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":  # payload 2.0 moves cookies out of the headers
            cookies.extend(cookie.strip() for cookie in value.split(";") if cookie.strip())
        else:
            headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    body, is_base64 = _encode_body(request.body)
    domain = request.header("host") or "localhost"
    event = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "cookies": cookies or None,
        "headers": headers,
        "queryStringParameters": query or None,
        "pathParameters": path_params or None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": request.method,
                "path": unquote(request.raw_path),
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": request.header("user-agent") or "",
            },
            "requestId": str(uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime(_REQUEST_TIME_FORMAT),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }
    return {key: value for key, value in event.items() if value is not None}


def _encode_body(body: bytes) -> tuple[str | None, bool]:
    """Event body: text when it is valid UTF-8, base64 otherwise."""
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


# --- results ------------------------------------------------------------------------


def to_http_response(api_type: ApiType, result: Any) -> HttpResponse:
    """Turn a Lambda proxy result into the HTTP response API Gateway would send."""
    if not isinstance(result, dict):
        raise MalformedResponseError(f"handler returned {type(result).__name__}, not a dict")
    if api_type == "HttpApi" and "statusCode" not in result:
        # HTTP API treats a result without statusCode as a 200 JSON body.
        return HttpResponse(
            200, [("Content-Type", "application/json")], json.dumps(result).encode()
        )
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResponseError(f"invalid statusCode {status!r}")
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedResponseError(f"body must be a string, not {type(body).__name__}")
    payload = b""
    if body and result.get("isBase64Encoded"):
        payload = base64.b64decode(body, validate=True)
    elif body:
        payload = body.encode("utf-8")

    headers = [
        (str(name), str(value))
        for name, values in (result.get("multiValueHeaders") or {}).items()
        for value in values
    ]
    # Like API Gateway: merge both header maps, a pair present in both appears once.
    seen = {(name.lower(), value) for name, value in headers}
    headers += [
        (str(name), str(value))
        for name, value in (result.get("headers") or {}).items()
        if (str(name).lower(), str(value)) not in seen
    ]
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
    if any("\r" in part or "\n" in part for header in headers for part in header):
        raise MalformedResponseError("header names and values must not contain line breaks")
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
    return HttpResponse(status, headers, payload)


def _message(status: int, message: str) -> HttpResponse:
    body = json.dumps({"message": message}).encode()
    return HttpResponse(status, [("Content-Type", "application/json")], body)


# --- the API ------------------------------------------------------------------------


class LocalApi:
    """Routes, environment and warm handler modules of one template."""

    def __init__(self, template_path: Path, env_overrides: dict[str, str] | None = None) -> None:
        self.routes = load_routes(template_path)
        # Only functions with API routes run locally, so only their environments must agree.
        functions = {route.function.function_id: route.function for route in self.routes}
        self.environment = merged_environment(functions.values(), env_overrides or {})
        os.environ.update(self.environment)
        self._handlers: dict[str, Handler] = {}
        self._import_lock = threading.Lock()
        # Powertools keeps the current event on the resolver *class*, so handlers in one
        # process must never overlap, even handlers of different functions. Lambda runs
        # one request per environment anyway; locally, one at a time in the process.
        self._invoke_lock = threading.Lock()

    def handle(self, request: Request) -> HttpResponse:
        try:
            route, path_params = match_route(self.routes, request.method, request.raw_path)
        except RouteNotFoundError:
            return _message(404, "Not Found")
        except MethodNotAllowedError:
            return _message(405, "Method Not Allowed")
        build = build_rest_event if route.api_type == "Api" else build_http_api_event
        event = build(route, request, path_params)
        try:
            handler = self._handler(route.function)
            with self._invoke_lock:
                result = handler(event, route.function.context())
            return to_http_response(route.api_type, result)
        except Exception:
            # API Gateway hides the failure from the client; the details go to the log only.
            sys.stderr.write(f"{route.function.function_id} failed:\n{traceback.format_exc()}")
            return _message(502, "Internal server error")

    def _handler(self, function: TemplateFunction) -> Handler:
        """The function's warm handler, imported on its first request."""
        with self._import_lock:
            handler = self._handlers.get(function.function_id)
            if handler is None:
                handler = function.load_handler()
                self._handlers[function.function_id] = handler
        return handler


# --- HTTP server --------------------------------------------------------------------


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: LocalApi) -> None:
        self.api = api
        super().__init__(address, _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalApiServer
    server_version = "rft-local-api"

    def _dispatch(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self._send(_message(411, "Length Required"))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send(_message(400, "Bad Request"))
            return
        if length > MAX_BODY_BYTES:  # answered before reading, the handler is never called
            self._send(_message(413, "Request Too Long"))
            return
        request = Request(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=self.rfile.read(length) if length else b"",
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        self._send(self.server.api.handle(request))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch
    do_TRACE = do_QUERY = _dispatch  # 405 like any other method a route lacks, not 501

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One-line access log; never the query string, which may hold emails."""
        if isinstance(code, HTTPStatus):
            code = code.value
        path = getattr(self, "path", "").partition("?")[0]
        sys.stderr.write(f"{self.command or '-'} {path} {code}\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default messages include the raw request line, query and all."""


def make_server(
    template_path: Path, host: str, port: int, env_overrides: dict[str, str] | None = None
) -> LocalApiServer:
    """A ready-to-``serve_forever()`` server; port 0 picks a free port."""
    return LocalApiServer((host, port), LocalApi(template_path, env_overrides))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the SAM template's API locally.")
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment override, e.g. for variables the template sets with !Ref",
    )
    args = parser.parse_args(argv)
    overrides: dict[str, str] = {}
    for pair in args.env:
        key, separator, value = pair.partition("=")
        if not key or not separator:
            parser.error(f"--env expects KEY=VALUE, got {pair!r}")
        overrides[key] = value
    server = make_server(args.template, args.host, args.port, overrides)
    for route in server.api.routes:
        print(f"  {route.method:<7} {route.path}  ->  {route.function.function_id}")
    print(f"Local API on http://{args.host}:{server.server_port} (Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
