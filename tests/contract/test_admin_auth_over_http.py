"""Every admin route, over HTTP through the local stack, refuses every broken credential.

The routes come from the API document (every operation with the ``bearerAuth``
scheme), so a new admin route is covered the day it is added. Each refusal is 401 (no
or untrustworthy token) or 403 (a trustworthy token of another role) and its body is
the bare error shape: a message, no field errors and nothing about any user.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jwt
import pytest

from rft_common.http.docs import api_document
from rft_common.staff.tokens import issue_access_token, issue_refresh_token
from rft_tools.local.admin import LOCAL_ADMIN_JWT_SECRET, LOCAL_ADMIN_REFRESH_SECRET
from tests.staff.test_admin_auth import ROUTES as HANDLER_LEVEL_ROUTES

USER_ID = 1
"""The first customer the package's stack made through checkout."""


def _admin_operations() -> list[tuple[str, str]]:
    document = json.loads(api_document(""))
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if {"bearerAuth": []} in (operation.get("security") or [])
    ]


ADMIN_OPERATIONS = _admin_operations()
OPERATION_IDS = [f"{method} {path}" for method, path in ADMIN_OPERATIONS]


def _segment(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")


def _claims(**changes: Any) -> dict[str, Any]:
    """The admin login's access-token claims, with some changed (``None`` removes one)."""
    now = int(time.time())
    claims = {
        "id": 1,
        "email": "intruder@example.com",
        "role": "admin",
        "ver": 0,
        "iss": "reactfasttraining.co.uk",
        "aud": "admin",
        "iat": now,
        "exp": now + 600,
    } | changes
    return {name: value for name, value in claims.items() if value is not None}


def _admin_token(role: str = "admin", ttl_seconds: int = 600, user_id: int = 1) -> str:
    """``user_id`` 1 is a customer: only the role decides a 403; a request that must be
    served names the stack's admin (the gate finds them active, at version 0)."""
    return issue_access_token(
        LOCAL_ADMIN_JWT_SECRET,
        user_id=user_id,
        email="staff@example.com",
        role=role,
        token_version=0,
        ttl_seconds=ttl_seconds,
    )


def _signed(claims: dict[str, Any], *, secret: str = LOCAL_ADMIN_JWT_SECRET, alg="HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def _unsigned(alg: str) -> str:
    return f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(_claims())}."


def _without_signature() -> str:
    header, payload, _ = _signed(_claims()).split(".")
    return f"{header}.{payload}."


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


UNAUTHENTICATED: dict[str, dict[str, str]] = {
    "no token": {},
    "malformed token": _bearer("not.a.jwt"),
    "two segments": _bearer("eyJhbGciOiJIUzI1NiJ9.e30"),
    "8 KB of garbage": _bearer("A" * 8192),
    "another scheme": {"Authorization": f"Basic {_signed(_claims())}"},
    "wrong signature": _bearer(_signed(_claims(), secret="another-secret-" * 4)),
    "signature removed": _bearer(_without_signature()),
    "alg none": _bearer(_unsigned("none")),
    "alg None": _bearer(_unsigned("None")),
    "alg NONE": _bearer(_unsigned("NONE")),
    "HS512 with the right secret": _bearer(_signed(_claims(), alg="HS512")),
    "expired": _bearer(_signed(_claims(exp=int(time.time()) - 300))),
    "not valid yet": _bearer(_signed(_claims(nbf=int(time.time()) + 24 * 3600))),
    "exp not a number": _bearer(_signed(_claims(exp="never"))),
    "no role": _bearer(_signed(_claims(role=None))),
    "no id": _bearer(_signed(_claims(id=None))),
    "no email": _bearer(_signed(_claims(email=None))),
    "no iss": _bearer(_signed(_claims(iss=None))),
    "another iss": _bearer(_signed(_claims(iss="reactfasttraining.co.uk.evil"))),
    "no aud": _bearer(_signed(_claims(aud=None))),
    "another aud": _bearer(_signed(_claims(aud=["customer"]))),
    "the old sub-only format": _bearer(
        _signed({"sub": "intruder", "role": "admin", "exp": int(time.time()) + 600})
    ),
    "a refresh token": _bearer(
        issue_refresh_token(LOCAL_ADMIN_REFRESH_SECRET, user_id=1, token_version=0)
    ),
}
FORBIDDEN: dict[str, dict[str, str]] = {
    role: _bearer(_admin_token(role)) for role in ("instructor", "customer", "Admin", "admin ")
}


def request(
    api: str, method: str, path: str, headers: dict[str, str], query: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    url = f"{api}{path.replace('{user_id}', str(USER_ID))}"
    if query:
        url += f"?{urllib.parse.urlencode(query)}"
    body = json.dumps({"city": "Refused"}).encode() if method == "PATCH" else None
    call = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def assert_bare_refusal(body: dict[str, Any], customer_emails: tuple[str, ...]) -> None:
    assert set(body) == {"message", "errors"}
    assert body["errors"] == []
    assert not any(email in body["message"] for email in customer_emails)


def test_the_document_has_every_admin_route_and_the_handler_tests_cover_them_all():
    documented = {
        (method, path.replace("{user_id}", "{id}").replace("{attendee_id}", "{id}"))
        for method, path in ADMIN_OPERATIONS
    }

    assert len(documented) >= 5
    assert documented == {(method, path) for method, path, _ in HANDLER_LEVEL_ROUTES}


@pytest.mark.parametrize("credentials", UNAUTHENTICATED.values(), ids=UNAUTHENTICATED.keys())
@pytest.mark.parametrize(("method", "path"), ADMIN_OPERATIONS, ids=OPERATION_IDS)
def test_no_trustworthy_token_is_401_with_nothing_but_the_error(stack, method, path, credentials):
    status, headers, body = request(stack.api, method, path, credentials)

    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="rft-admin"'
    assert_bare_refusal(body, stack.customer_emails)


@pytest.mark.parametrize("credentials", FORBIDDEN.values(), ids=FORBIDDEN.keys())
@pytest.mark.parametrize(("method", "path"), ADMIN_OPERATIONS, ids=OPERATION_IDS)
def test_a_valid_token_of_another_role_is_403_with_nothing_but_the_error(
    stack, method, path, credentials
):
    status, _, body = request(stack.api, method, path, credentials)

    assert status == 403
    assert_bare_refusal(body, stack.customer_emails)


@pytest.mark.parametrize(("method", "path"), ADMIN_OPERATIONS, ids=OPERATION_IDS)
def test_a_token_in_the_query_string_instead_of_the_header_is_401(stack, method, path):
    token = _admin_token()

    status, _, body = request(stack.api, method, path, {}, query={"access_token": token})

    assert status == 401
    assert_bare_refusal(body, stack.customer_emails)


def test_refused_edits_change_nothing_and_the_same_request_from_an_admin_succeeds(stack):
    attempts = [*UNAUTHENTICATED.values(), *FORBIDDEN.values()]
    admin = _bearer(_admin_token(ttl_seconds=60, user_id=stack.staff_id))

    refused = [request(stack.api, "PATCH", "/api/admin/users/{user_id}", h)[0] for h in attempts]
    _, _, before = request(stack.api, "GET", "/api/admin/users/{user_id}", admin)
    edited, _, after = request(stack.api, "PATCH", "/api/admin/users/{user_id}", admin)

    assert set(refused) == {401, 403}
    assert before["city"] != "Refused"
    assert (edited, after["city"]) == (200, "Refused")
