"""Answers carrying tokens, client secrets or customers' details tell every cache not to
keep them (``Cache-Control: no-store``); only the public sessions list is cacheable."""

from __future__ import annotations

import re

import pytest

from rft_common.staff import service as staff
from rft_tools.cfn_template import load_template
from tests.admin_helpers import add_user, call
from tests.checkout.test_payments import intent_body, new_session
from tests.conftest import PROJECT_ROOT, FakeLambdaContext, load_function, rest_event

pytestmark = pytest.mark.usefixtures("admin_secret", "export_bucket")


def cache_control(result: dict) -> list[str]:
    return [
        value
        for name, values in result["multiValueHeaders"].items()
        if name.lower() == "cache-control"
        for value in values
    ]


def test_the_admin_sign_in_answer_with_its_tokens_is_never_stored(db):
    with db.begin() as connection:
        add_user(
            connection,
            "alex.admin@reactfasttraining.co.uk",
            role="admin",
            password_hash=staff.hash_password("Correct-Horse-9-Battery", rounds=4),
        )
    body = {"email": "alex.admin@reactfasttraining.co.uk", "password": "Correct-Horse-9-Battery"}
    result = load_function("admin_auth").lambda_handler(
        rest_event("POST", "/api/admin/auth/login", body), FakeLambdaContext()
    )

    assert result["statusCode"] == 200
    assert cache_control(result) == ["no-store"]


def test_admin_users_answers_and_refusals_are_never_stored(
    admin_users_function, db, signed_in_admin
):
    _, _, listed = call(admin_users_function, "GET", "/api/admin/users")
    _, _, refused = call(admin_users_function, "GET", "/api/admin/users", headers={})

    assert listed["statusCode"] == 200
    assert refused["statusCode"] == 401
    assert cache_control(listed) == cache_control(refused) == ["no-store"]


@pytest.mark.usefixtures("stripe_keys", "customer_accounts_on")
def test_the_client_secret_is_never_stored_but_the_sessions_list_is_cacheable(db):
    checkout = load_function("create_booking", "payments")
    context = FakeLambdaContext()
    session_id = new_session(db)
    event = rest_event("POST", "/api/bookings/create-payment-intent", intent_body(session_id))
    intent = checkout.lambda_handler(event, context)
    listing = rest_event("GET", "/api/courses/sessions/available")
    sessions = checkout.lambda_handler(listing, context)

    assert intent["statusCode"] == 200, intent["body"]
    assert cache_control(intent) == ["no-store"]
    assert sessions["statusCode"] == 200
    assert cache_control(sessions)[0].startswith("public")


def template_functions() -> list[tuple[str, str, str]]:
    """(function directory, method, path) of every Api event in template.yaml."""
    resources = load_template(PROJECT_ROOT / "template.yaml")["Resources"]
    return sorted(
        (
            resource["Properties"]["CodeUri"].strip("/").rpartition("/")[2],
            event["Properties"]["Method"].upper(),
            event["Properties"]["Path"],
        )
        for resource in resources.values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event["Type"] == "Api"
    )


CACHEABLE = {
    ("GET", "/api/courses/sessions/available"),  # public sessions, no one's details
    ("GET", "/api/openapi.json"),  # the API's description
    ("GET", "/api/docs"),  # the page that renders it
}


@pytest.mark.usefixtures("stripe_keys", "customer_accounts_on")
@pytest.mark.parametrize(("function", "method", "path"), template_functions())
def test_every_route_but_the_public_documents_is_never_stored(db, function, method, path):
    """Whatever the route answers (here mostly a refusal: no token, an empty body), no
    cache keeps it; new routes are covered as soon as the template declares them."""
    concrete = re.sub(r"\{[^}]+\}", "1", path)
    event = rest_event(
        method,
        concrete,
        None if method == "GET" else {},
        resource=path,
        path_parameters={name: "1" for name in re.findall(r"\{([^}+]+)\+?\}", path)} or None,
    )
    result = load_function(function, "no-store").lambda_handler(event, FakeLambdaContext())

    assert result["statusCode"] < 500, result.get("body")
    if (method, path) not in CACHEABLE:
        assert cache_control(result) == ["no-store"], (method, path, result["statusCode"])
