"""Local API Gateway emulator: template loading, routing, event shapes, HTTP server."""

from __future__ import annotations

import base64
import http.client
import json
import os
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)

from rft_tools.cfn_template import function_environment, load_template, parse_template
from rft_tools.local import functions
from rft_tools.local.api import (
    MAX_BODY_BYTES,
    EnvironmentConflictError,
    LocalApi,
    MalformedResponseError,
    MethodNotAllowedError,
    Request,
    Route,
    RouteNotFoundError,
    build_http_api_event,
    build_rest_event,
    load_routes,
    make_server,
    match_route,
    to_http_response,
)
from rft_tools.local.functions import TemplateFunction

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Handler: app.lambda_handler
    Timeout: 10
    MemorySize: 256
    Environment:
      Variables:
        POWERTOOLS_SERVICE_NAME: rft
        STAGE: local
        DB_SECRET_ARN: !Ref DbSecret
Resources:
  DbSecret:
    Type: AWS::SecretsManager::Secret
  UsersFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/users/
      Environment:
        Variables:
          TABLE_NAME: !Sub "${AWS::StackName}-users"
          FEATURE_EXPORT: true
      Events:
        GetUser:
          Type: Api
          Properties: {Path: "/api/admin/users/{id}", Method: get}
        DeleteUser:
          Type: Api
          Properties: {Path: "/api/admin/users/{id}", Method: delete}
        ExportUsers:
          Type: Api
          Properties: {Path: /api/admin/users/export, Method: get}
  CatchAllFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/catchall
      MemorySize: !Ref MemoryParam
      Events:
        Proxy:
          Type: Api
          Properties: {Path: "/api/{proxy+}", Method: any}
  BookingsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/bookings
      Handler: handler.main
      Events:
        GetBooking:
          Type: HttpApi
          Properties: {Path: "/v2/bookings/{bookingId}", Method: GET}
  FailingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/failing
      Events:
        Fail:
          Type: Api
          Properties: {Path: /api/fail, Method: get}
        NotADict:
          Type: Api
          Properties: {Path: /api/not-a-dict, Method: get}
  PowertoolsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/powertools
      Events:
        Rest:
          Type: Api
          Properties: {Path: "/api/pt/items/{item_id}", Method: get}
        Http:
          Type: HttpApi
          Properties: {Path: "/v2/pt/items/{item_id}", Method: get}
  QueueWorker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker
      Environment:
        Variables:
          STAGE: somewhere-else
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
"""

ECHO_HANDLER = """\
import json
import os

import helper


def {name}(event, context):
    body = {{
        "event": event,
        "helper": helper.NAME,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "remaining": context.get_remaining_time_in_millis(),
        "stage": os.environ.get("STAGE"),
    }}
    return {{"statusCode": 200, "body": json.dumps(body)}}
"""

FAILING_HANDLER = """\
def lambda_handler(event, context):
    if event["path"] == "/api/not-a-dict":
        return "not a proxy result"
    raise RuntimeError("secret detail for alice@example.com")
"""

POWERTOOLS_HANDLER = """\
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver

rest = APIGatewayRestResolver()
http = APIGatewayHttpResolver()


@rest.get("/api/pt/items/<item_id>")
def rest_item(item_id):
    event = rest.current_event
    return {
        "item_id": item_id,
        "q": event.get_query_string_value("q"),
        "source_ip": event.request_context.identity.source_ip,
    }


@http.get("/v2/pt/items/<item_id>")
def http_item(item_id):
    event = http.current_event
    return {"item_id": item_id, "cookies": event.cookies, "q": event.get_query_string_value("q")}


def lambda_handler(event, context):
    resolver = http if event.get("version") == "2.0" else rest
    return resolver.resolve(event, context)
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture(autouse=True)
def _isolate_process_state() -> Iterator[None]:
    """LocalApi writes os.environ and imports handlers; give each test a clean slate."""
    environ = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(environ)
    for name in [name for name in sys.modules if name.startswith("lambda_")]:
        del sys.modules[name]


@pytest.fixture
def template(tmp_path: Path) -> Path:
    functions = tmp_path / "functions"
    for name in ("users", "catchall"):
        _write(functions / name / "app.py", ECHO_HANDLER.format(name="lambda_handler"))
        _write(functions / name / "helper.py", f"NAME = {name!r}\n")
    _write(functions / "bookings" / "handler.py", ECHO_HANDLER.format(name="main"))
    _write(functions / "bookings" / "helper.py", "NAME = 'bookings'\n")
    _write(functions / "failing" / "app.py", FAILING_HANDLER)
    _write(functions / "powertools" / "app.py", POWERTOOLS_HANDLER)
    _write(tmp_path / "template.yaml", TEMPLATE)
    return tmp_path / "template.yaml"


OVERRIDES = {"DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-2:123456789012:secret:local"}


@pytest.fixture
def api(template: Path) -> LocalApi:
    return LocalApi(template, OVERRIDES)


def _request(method: str, target: str, body: bytes = b"", **headers: str) -> Request:
    header_list = [("Host", "localhost:3000"), ("User-Agent", "pytest")]
    header_list += [(name.replace("_", "-"), value) for name, value in headers.items()]
    return Request(method, target, header_list, body, "127.0.0.1")


def _echo(api: LocalApi, request: Request) -> dict[str, Any]:
    response = api.handle(request)
    assert response.status == 200, response.body
    return json.loads(response.body)


# --- template ---------------------------------------------------------------------


def test_short_form_tags_become_long_form() -> None:
    document = parse_template(
        dedent("""\
        Version: 2012-10-17
        A: !Ref Bucket
        B: !Sub "${AWS::StackName}-x"
        C: !GetAtt Db.Endpoint.Address
        D: !GetAtt [Db, Arn]
        E: !If [IsProd, !Join ["", [a, !Select [0, !Split [",", "x,y"]]]], !Ref AWS::NoValue]
        F: !Equals [!FindInMap [Map, !Ref AWS::Region, Key], prod]
        G: !Not [!Condition IsProd]
        H: !And [!Or [!Condition A, !Condition B], !Condition C]
        I: !ImportValue shared-vpc
        J: !Base64 {"Fn::Sub": "x"}
        K: !GetAZs ""
        """)
    )
    assert document == {
        "Version": "2012-10-17",
        "A": {"Ref": "Bucket"},
        "B": {"Fn::Sub": "${AWS::StackName}-x"},
        "C": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
        "D": {"Fn::GetAtt": ["Db", "Arn"]},
        "E": {
            "Fn::If": [
                "IsProd",
                {"Fn::Join": ["", ["a", {"Fn::Select": [0, {"Fn::Split": [",", "x,y"]}]}]]},
                {"Ref": "AWS::NoValue"},
            ]
        },
        "F": {"Fn::Equals": [{"Fn::FindInMap": ["Map", {"Ref": "AWS::Region"}, "Key"]}, "prod"]},
        "G": {"Fn::Not": [{"Condition": "IsProd"}]},
        "H": {
            "Fn::And": [
                {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]},
                {"Condition": "C"},
            ]
        },
        "I": {"Fn::ImportValue": "shared-vpc"},
        "J": {"Fn::Base64": {"Fn::Sub": "x"}},
        "K": {"Fn::GetAZs": ""},
    }


def test_loader_stays_safe() -> None:
    with pytest.raises(yaml.YAMLError, match="python/object"):
        parse_template("a: !!python/object/apply:os.system ['true']\n")


def test_function_environment_keeps_literals_and_applies_overrides(template: Path) -> None:
    document = load_template(template)
    assert function_environment(document, "UsersFunction", {}) == {
        "POWERTOOLS_SERVICE_NAME": "rft",
        "STAGE": "local",
        "FEATURE_EXPORT": "true",
    }
    overridden = function_environment(
        document, "UsersFunction", {"TABLE_NAME": "users", "STAGE": "test"}
    )
    assert overridden["TABLE_NAME"] == "users"
    assert overridden["STAGE"] == "test"


def test_load_routes_reads_globals_and_events(template: Path) -> None:
    routes = {
        (route.function.function_id, route.method, route.path): route
        for route in load_routes(template)
    }
    assert set(routes) == {
        ("UsersFunction", "GET", "/api/admin/users/{id}"),
        ("UsersFunction", "DELETE", "/api/admin/users/{id}"),
        ("UsersFunction", "GET", "/api/admin/users/export"),
        ("CatchAllFunction", "ANY", "/api/{proxy+}"),
        ("BookingsFunction", "GET", "/v2/bookings/{bookingId}"),
        ("FailingFunction", "GET", "/api/fail"),
        ("FailingFunction", "GET", "/api/not-a-dict"),
        ("PowertoolsFunction", "GET", "/api/pt/items/{item_id}"),
        ("PowertoolsFunction", "GET", "/v2/pt/items/{item_id}"),
    }
    users = routes["UsersFunction", "GET", "/api/admin/users/export"]
    assert users.function.code_dir == template.parent / "functions" / "users"
    assert (users.function.handler_module, users.function.handler_function) == (
        "app",
        "lambda_handler",
    )
    assert (users.api_type, users.function.memory_mb, users.function.timeout_s) == ("Api", 256, 10)
    bookings = routes["BookingsFunction", "GET", "/v2/bookings/{bookingId}"]
    assert (bookings.function.handler_module, bookings.function.handler_function) == (
        "handler",
        "main",
    )
    assert bookings.api_type == "HttpApi"
    # MemorySize: !Ref MemoryParam cannot be resolved locally: Lambda's default applies.
    assert routes["CatchAllFunction", "ANY", "/api/{proxy+}"].function.memory_mb == 128


def test_http_api_payload_1_is_rejected(tmp_path: Path) -> None:
    _write(
        tmp_path / "template.yaml",
        dedent("""\
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: fn
              Handler: app.handler
              Events:
                E:
                  Type: HttpApi
                  Properties: {Path: /x, Method: get, PayloadFormatVersion: "1.0"}
        """),
    )
    _write(tmp_path / "fn" / "app.py", "def handler(event, context): ...\n")
    with pytest.raises(ValueError, match=r"payload format 2\.0"):
        load_routes(tmp_path / "template.yaml")


# --- routing ----------------------------------------------------------------------


FUNCTION = TemplateFunction("Fn", Path("/fn"), "app", "handler")


def _route(method: str, path: str) -> Route:
    return Route(FUNCTION, method, path, "Api")


@pytest.mark.parametrize("reverse", [False, True])
def test_route_precedence_ignores_template_order(reverse: bool) -> None:
    routes = [
        _route("ANY", "/api/{proxy+}"),
        _route("GET", "/api/admin/users/{id}"),
        _route("GET", "/api/admin/users/export"),
        _route("ANY", "/api/admin/users/{id}"),
    ]
    if reverse:
        routes.reverse()

    route, params = match_route(routes, "GET", "/api/admin/users/export")
    assert (route.path, params) == ("/api/admin/users/export", {})

    route, params = match_route(routes, "GET", "/api/admin/users/u%2042")
    assert (route.method, route.path, params) == ("GET", "/api/admin/users/{id}", {"id": "u 42"})

    route, _ = match_route(routes, "DELETE", "/api/admin/users/42")
    assert route.route_key == "ANY /api/admin/users/{id}"

    route, params = match_route(routes, "POST", "/api/admin/users/42/notes")
    assert (route.path, params) == ("/api/{proxy+}", {"proxy": "admin/users/42/notes"})


def test_proxy_needs_at_least_one_segment() -> None:
    with pytest.raises(RouteNotFoundError):
        match_route([_route("ANY", "/api/{proxy+}")], "GET", "/api")


def test_unknown_path_and_method(api: LocalApi) -> None:
    with pytest.raises(MethodNotAllowedError):
        match_route(api.routes, "POST", "/v2/bookings/b-1")

    not_found = api.handle(_request("GET", "/nope?email=a@b.com"))
    assert (not_found.status, json.loads(not_found.body)) == (404, {"message": "Not Found"})
    not_allowed = api.handle(_request("PUT", "/v2/pt/items/i1"))
    assert (not_allowed.status, json.loads(not_allowed.body)) == (
        405,
        {"message": "Method Not Allowed"},
    )


# --- events -----------------------------------------------------------------------


def test_rest_event_shape_and_params(api: LocalApi) -> None:
    echoed = _echo(api, _request("GET", "/api/admin/users/u%2042?tag=a&tag=b&email=x%40y.com"))
    event = echoed["event"]
    APIGatewayProxyEventModel.model_validate(event)
    assert event["resource"] == "/api/admin/users/{id}"
    assert event["path"] == "/api/admin/users/u 42"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "u 42"}
    assert event["queryStringParameters"] == {"tag": "b", "email": "x@y.com"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "email": ["x@y.com"]}
    assert event["headers"]["User-Agent"] == "pytest"
    assert event["multiValueHeaders"]["Host"] == ["localhost:3000"]
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["resourcePath"] == "/api/admin/users/{id}"
    assert context["stage"] == "local"
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "pytest"}
    assert echoed["function_name"] == "UsersFunction"
    assert echoed["memory"] == 256
    assert 0 < echoed["remaining"] <= 10_000


def test_rest_event_without_query_or_params(api: LocalApi) -> None:
    event = _echo(api, _request("GET", "/api/admin/users/export"))["event"]
    APIGatewayProxyEventModel.model_validate(event)
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None


def test_multi_value_headers() -> None:
    route = _route("GET", "/x")
    request = Request("GET", "/x", [("Accept", "a"), ("Accept", "b")], b"", "127.0.0.1")
    rest = build_rest_event(route, request, {})
    assert (rest["headers"]["Accept"], rest["multiValueHeaders"]["Accept"]) == ("b", ["a", "b"])
    http_route = Route(FUNCTION, "GET", "/x", "HttpApi")
    v2 = build_http_api_event(http_route, request, {})
    assert v2["headers"]["accept"] == "a,b"


def test_http_api_event_shape(api: LocalApi) -> None:
    request = _request(
        "GET", "/v2/bookings/b-1?tag=a&tag=b", Cookie="session=abc; theme=dark", X_Trace="t1"
    )
    event = _echo(api, request)["event"]
    APIGatewayProxyEventV2Model.model_validate(event)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /v2/bookings/{bookingId}"
    assert event["rawPath"] == "/v2/bookings/b-1"
    assert event["rawQueryString"] == "tag=a&tag=b"
    assert event["queryStringParameters"] == {"tag": "a,b"}
    assert event["pathParameters"] == {"bookingId": "b-1"}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-trace"] == "t1"
    http = event["requestContext"]["http"]
    assert http == {
        "method": "GET",
        "path": "/v2/bookings/b-1",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "pytest",
    }
    assert event["requestContext"]["stage"] == "$default"
    assert event["isBase64Encoded"] is False
    assert "body" not in event


@pytest.mark.parametrize("target", ["/api/admin/users/export", "/v2/bookings/b-1"])
def test_binary_body_is_base64(api: LocalApi, target: str) -> None:
    payload = b"\x89PNG\r\n\x1a\n\xff\x00"
    event = _echo(api, _request("GET", target, payload))["event"]
    model = APIGatewayProxyEventV2Model if "version" in event else APIGatewayProxyEventModel
    model.model_validate(event)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_text_body_is_passed_as_is(api: LocalApi) -> None:
    event = _echo(api, _request("GET", "/api/admin/users/export", '{"name": "Zoë"}'.encode()))
    assert event["event"]["body"] == '{"name": "Zoë"}'
    assert event["event"]["isBase64Encoded"] is False


def test_powertools_resolvers_accept_the_events(api: LocalApi) -> None:
    rest = api.handle(_request("GET", "/api/pt/items/i%201?q=x"))
    assert rest.status == 200, rest.body
    assert json.loads(rest.body) == {"item_id": "i 1", "q": "x", "source_ip": "127.0.0.1"}
    http = api.handle(_request("GET", "/v2/pt/items/i1?q=y", Cookie="a=1"))
    assert http.status == 200, http.body
    assert json.loads(http.body) == {"item_id": "i1", "cookies": ["a=1"], "q": "y"}


# --- handlers ---------------------------------------------------------------------


def test_functions_with_same_module_names_load_independently(api: LocalApi) -> None:
    users = _echo(api, _request("GET", "/api/admin/users/export"))
    catchall = _echo(api, _request("GET", "/api/anything"))
    assert (users["helper"], users["function_name"]) == ("users", "UsersFunction")
    assert (catchall["helper"], catchall["function_name"]) == ("catchall", "CatchAllFunction")
    assert sys.modules["lambda_UsersFunction"] is not sys.modules["lambda_CatchAllFunction"]
    assert "helper" not in sys.modules
    # Warm: the module is imported once and reused.
    module = sys.modules["lambda_UsersFunction"]
    _echo(api, _request("GET", "/api/admin/users/export"))
    assert sys.modules["lambda_UsersFunction"] is module


@pytest.mark.parametrize("target", ["/api/fail", "/api/not-a-dict"])
def test_handler_failure_is_502_without_details(
    api: LocalApi, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    response = api.handle(_request("GET", target))
    assert response.status == 502
    assert json.loads(response.body) == {"message": "Internal server error"}
    assert "Traceback" in capsys.readouterr().err


def test_lambda_context_remaining_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = 1000.0
    monkeypatch.setattr(functions.time, "monotonic", lambda: now)
    context = functions.LambdaContext("UsersFunction", 256, 3)
    assert context.get_remaining_time_in_millis() == 3000
    now += 1.25
    assert context.get_remaining_time_in_millis() == 1750
    now += 5
    assert context.get_remaining_time_in_millis() == 0
    assert context.function_version == "$LATEST"
    assert context.invoked_function_arn.endswith(":function:UsersFunction")
    assert context.log_group_name == "/aws/lambda/UsersFunction"


def test_proxy_result_to_http_response() -> None:
    response = to_http_response(
        "Api",
        {
            "statusCode": 201,
            "headers": {"X-One": "1", "Vary": "Origin"},
            "multiValueHeaders": {"Vary": ["Origin", "Accept"]},
            "body": base64.b64encode(b"\x00\x01").decode(),
            "isBase64Encoded": True,
        },
    )
    assert response.status == 201
    assert response.body == b"\x00\x01"
    assert sorted(response.headers) == [
        ("Content-Type", "application/json"),
        ("Vary", "Accept"),
        ("Vary", "Origin"),
        ("X-One", "1"),
    ]
    v2 = to_http_response("HttpApi", {"statusCode": 200, "cookies": ["a=1", "b=2"], "body": "x"})
    assert [value for name, value in v2.headers if name == "Set-Cookie"] == ["a=1", "b=2"]
    inferred = to_http_response("HttpApi", {"ok": True})
    assert (inferred.status, json.loads(inferred.body)) == (200, {"ok": True})


@pytest.mark.parametrize(
    "result",
    [
        None,
        {"body": "no status"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "headers": {"X-Bad": "a\r\nSet-Cookie: evil=1"}},
    ],
)
def test_malformed_proxy_results(result: Any) -> None:
    with pytest.raises(MalformedResponseError):
        to_http_response("Api", result)


# --- environment ------------------------------------------------------------------


def test_environment_is_merged_into_os_environ(template: Path) -> None:
    os.environ.pop("TABLE_NAME", None)
    api = LocalApi(template, OVERRIDES)
    assert os.environ["STAGE"] == "local"
    assert os.environ["FEATURE_EXPORT"] == "true"
    assert os.environ["DB_SECRET_ARN"] == OVERRIDES["DB_SECRET_ARN"]
    assert "TABLE_NAME" not in os.environ  # !Sub without an override stays unset
    # QueueWorker has no API events, so its different STAGE does not conflict.
    assert _echo(api, _request("GET", "/api/admin/users/export"))["stage"] == "local"


def test_conflicting_literal_environment_is_an_error(template: Path) -> None:
    text = template.read_text().replace(
        "      CodeUri: functions/catchall\n",
        "      CodeUri: functions/catchall\n"
        "      Environment:\n        Variables:\n          STAGE: other\n",
    )
    template.write_text(text)
    with pytest.raises(EnvironmentConflictError, match="STAGE"):
        LocalApi(template, {})
    assert LocalApi(template, {"STAGE": "mine"}).environment["STAGE"] == "mine"


# --- HTTP server ------------------------------------------------------------------


@pytest.fixture
def base_url(template: Path) -> Iterator[str]:
    server = make_server(template, "127.0.0.1", 0, OVERRIDES)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _call(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_server_end_to_end(base_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, body = _call(f"{base_url}/api/admin/users/export?email=x%40y.com")
    assert status == 200
    event = json.loads(body)["event"]
    assert event["queryStringParameters"] == {"email": "x@y.com"}
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"

    status, body = _call(f"{base_url}/api/things", "POST", b'{"a": 1}')
    event = json.loads(body)["event"]
    assert (status, event["resource"], event["body"]) == (200, "/api/{proxy+}", '{"a": 1}')

    assert _call(f"{base_url}/elsewhere") == (404, b'{"message": "Not Found"}')
    assert _call(f"{base_url}/api/fail") == (502, b'{"message": "Internal server error"}')

    status, body = _call(f"{base_url}/api/things", "HEAD")
    assert (status, body) == (200, b"")

    log = capsys.readouterr().err
    assert "GET /api/admin/users/export 200" in log
    assert "x%40y.com" not in log


def test_server_rejects_oversized_body(base_url: str) -> None:
    connection = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=10)
    connection.putrequest("POST", "/api/things")
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())) == (413, {"message": "Request Too Long"})
    connection.close()
    assert "lambda_CatchAllFunction" not in sys.modules  # the handler was never loaded


@pytest.mark.parametrize("method", ["TRACE", "QUERY"])
def test_methods_http_server_does_not_know_are_405_like_any_method_without_a_route(
    base_url: str, method: str
) -> None:
    status, body = _call(f"{base_url}/v2/bookings/1", method)

    assert (status, json.loads(body)) == (405, {"message": "Method Not Allowed"})
