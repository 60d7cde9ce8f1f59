"""GET /api/openapi.json and /api/docs: one generated document for every function's routes."""

from __future__ import annotations

import gzip
import json

import pytest

from rft_tools.cfn_template import load_template
from tests.conftest import PROJECT_ROOT, FakeLambdaContext, load_function, rest_event

ADMIN_PREFIX = "/api/admin/"
SIGN_IN_PREFIX = "/api/admin/auth/"


@pytest.fixture(scope="module")
def api_docs():
    return load_function("api_docs")


@pytest.fixture(scope="module")
def document(api_docs) -> dict:
    result = api_docs.lambda_handler(rest_event("GET", "/api/openapi.json"), FakeLambdaContext())
    assert result["statusCode"] == 200
    assert result["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return json.loads(result["body"])


def template_routes() -> set[tuple[str, str]]:
    """(method, path) of every Api event of every function in template.yaml."""
    resources = load_template(PROJECT_ROOT / "template.yaml")["Resources"]
    return {
        (event["Properties"]["Method"].lower(), event["Properties"]["Path"])
        for resource in resources.values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event["Type"] == "Api"
    }


def document_routes(document: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item}


def test_the_document_describes_every_route_of_every_function(document):
    routes = template_routes()

    assert document_routes(document) == routes
    assert {path for _, path in routes} >= {
        "/api/bookings",
        "/api/health",
        "/api/admin/users",
        "/api/admin/users/export",
        "/api/admin/users/{user_id}",
        "/api/admin/users/{user_id}/bookings",
        "/api/openapi.json",
        "/api/docs",
    }


STAFF_ROUTES = (
    "/api/admin/auth/me",
    "/api/admin/auth/change-password",
    "/api/admin/auth/logout-everywhere",
)


def test_admin_routes_require_the_bearer_scheme_and_no_other_route_does(document):
    schemes = document["components"]["securitySchemes"]

    for name in ("bearerAuth", "staffBearerAuth"):
        scheme = schemes[name]
        assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == (
            "http",
            "bearer",
            "JWT",
        )
    for path, item in document["paths"].items():
        for operation in item.values():
            admin_only = path.startswith(ADMIN_PREFIX) and not path.startswith(SIGN_IN_PREFIX)
            expected = [{"bearerAuth": []}] if admin_only else None
            if path in STAFF_ROUTES:  # any staff member, not only admins
                expected = [{"staffBearerAuth": []}]
            assert operation.get("security") == expected, path


def test_every_error_response_has_the_shared_error_shape(document):
    error_shape = {"$ref": "#/components/schemas/ErrorResponse"}
    errors = {
        (method, path, status): response["content"]["application/json"]["schema"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if int(status) >= 400
    }

    # The booking site reads {success, error} from the PaymentIntent route (the client
    # wins); its error shape is ours plus those two fields.
    site_shape = {"$ref": "#/components/schemas/CheckoutIntentError"}
    schemas = document["components"]["schemas"]

    assert errors
    assert {
        where: schema for where, schema in errors.items() if schema not in (error_shape, site_shape)
    } == {}
    assert {path for (_, path, _), schema in errors.items() if schema == site_shape} == {
        "/api/bookings/create-payment-intent"
    }
    assert set(schemas["ErrorResponse"]["properties"]) == {"message", "errors"}
    assert set(schemas["CheckoutIntentError"]["properties"]) == {
        "message",
        "errors",
        "success",
        "error",
    }


def test_admin_responses_name_401_403_and_the_models(document):
    listing = document["paths"]["/api/admin/users"]["get"]

    assert {"200", "401", "403", "422", "503"} <= set(listing["responses"])
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserPage"
    }
    parameters = {parameter["name"] for parameter in listing["parameters"]}
    assert parameters >= {"search", "role", "customerType", "hasBookings", "sort", "order"}
    assert parameters >= {"limit", "cursor", "offset", "createdFrom", "lastBookingTo"}


def test_swagger_ui_is_an_html_page_embedding_the_document(api_docs):
    result = api_docs.lambda_handler(rest_event("GET", "/api/docs"), FakeLambdaContext())

    assert result["statusCode"] == 200
    assert result["multiValueHeaders"]["Content-Type"] == ["text/html"]
    assert result["body"].startswith("<!DOCTYPE html>")
    assert "SwaggerUIBundle" in result["body"]
    assert "/api/admin/users/export" in result["body"]


def test_the_server_is_the_stage_the_page_was_served_from(api_docs):
    event = rest_event("GET", "/api/openapi.json")
    event["requestContext"] |= {"stage": "prod", "path": "/prod/api/openapi.json"}

    result = api_docs.lambda_handler(event, FakeLambdaContext())

    assert json.loads(result["body"])["servers"] == [{"url": "/prod"}]


def test_swagger_ui_works_from_the_gzipped_files_the_layer_ships(api_docs, tmp_path, monkeypatch):
    from rft_common.http import docs

    for name in ("swagger-ui-bundle.min.js", "swagger-ui.min.css"):
        (tmp_path / f"{name}.gz").write_bytes(
            gzip.compress((docs.SWAGGER_FILES / name).read_bytes())
        )
    monkeypatch.setattr(docs, "SWAGGER_FILES", tmp_path)
    docs.swagger_asset.cache_clear()

    result = api_docs.lambda_handler(rest_event("GET", "/api/docs"), FakeLambdaContext())
    docs.swagger_asset.cache_clear()

    assert result["statusCode"] == 200
    assert "SwaggerUIBundle" in result["body"]
    assert (docs.SWAGGER_FILES / "swagger-ui.min.css.gz").exists()


def test_the_document_the_layer_ships_is_served_without_rendering_anything(
    api_docs, document, tmp_path, monkeypatch
):
    """sam build renders the document into the layer (layers/common/Makefile runs
    ``render_document``); the function then only reads it."""
    from rft_common.http import docs

    shipped = tmp_path / "openapi.json"
    shipped.write_text(docs.render_document(), encoding="utf-8")
    monkeypatch.setattr(docs, "PRERENDERED", shipped)

    def no_rendering() -> str:
        raise AssertionError("rendered although the layer ships the document")

    monkeypatch.setattr(docs, "render_document", no_rendering)
    docs.api_document.cache_clear()
    event = rest_event("GET", "/api/openapi.json")
    event["requestContext"] |= {"stage": "prod", "path": "/prod/api/openapi.json"}

    served = json.loads(api_docs.lambda_handler(event, FakeLambdaContext())["body"])
    docs.api_document.cache_clear()

    assert served == document | {"servers": [{"url": "/prod"}]}
