"""Calling the admin users function the way API Gateway does, with admin tokens."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from sqlalchemy import text

from rft_common.db.postgres import run_transaction
from rft_common.staff.tokens import issue_access_token
from tests.conftest import FakeLambdaContext, rest_event

TEST_ADMIN_SECRET = "test-only-admin-jwt-secret-long-enough-for-hs512-0123456789abcdef"
TEST_REFRESH_SECRET = "test-only-admin-refresh-secret-of-another-value-0123456789abcdef"
ADMIN_ID = 900_000_042
"""Beyond the ids the tests' own rows take from the sequence."""
ADMIN_EMAIL = "alex.admin@reactfasttraining.co.uk"
SIGNED_IN_ADMIN = """
    INSERT INTO users (id, email, name, role, password_hash)
    VALUES (:id, :email, 'Alex Admin', 'admin', 'bcrypt$hash')
    ON CONFLICT (id) DO NOTHING
"""


def add_signed_in_admin() -> int:
    """The default token's account, active and at token version 0: the admin gate looks the
    acting admin up on every request (the ``signed_in_admin`` fixture)."""
    run_transaction(
        lambda connection: connection.execute(
            SIGNED_IN_ADMIN, {"id": ADMIN_ID, "email": ADMIN_EMAIL}
        )
    )
    return ADMIN_ID


def token_for(
    role: str = "admin",
    *,
    user_id: int = ADMIN_ID,
    email: str = ADMIN_EMAIL,
    ttl_seconds: int = 600,
    secret: str = TEST_ADMIN_SECRET,
    token_version: int = 0,
    **claims: Any,
) -> str:
    """An access token exactly as the admin login issues it: ``{id, email, role, ver}``,
    issuer and audience, no ``sub``."""
    return issue_access_token(
        secret,
        user_id=user_id,
        email=email,
        role=role,
        token_version=token_version,
        ttl_seconds=ttl_seconds,
        **claims,
    )


def call(
    function: ModuleType,
    method: str,
    path: str,
    *,
    token: str | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, Any]]:
    """Invoke the handler; returns the status, the body (parsed if JSON) and the raw result.

    ``token`` defaults to a valid admin's; pass ``headers={}`` with ``token=None`` to
    send no Authorization header at all.
    """
    all_headers = {"Authorization": f"Bearer {token or token_for()}"}
    if headers is not None:
        all_headers = headers
    result = function.lambda_handler(
        rest_event(method, path, body, headers=all_headers, query=query), FakeLambdaContext()
    )
    return result["statusCode"], _body(result), result


def _body(result: dict[str, Any]) -> Any:
    """The JSON body parsed; any other body (a CSV file, a redirect's note) as text."""
    headers = {name.lower(): values for name, values in result["multiValueHeaders"].items()}
    if headers.get("content-type", ["application/json"])[0].startswith("application/json"):
        return json.loads(result["body"])
    return result["body"]


def add_user(connection: Any, email: str, **columns: Any) -> int:
    """A users row written in plain SQL, with whichever columns are given."""
    values = {"email": email, "role": "customer", **columns}
    names = ", ".join(values)
    placeholders = ", ".join(f":{name}" for name in values)
    return connection.execute(
        text(f"INSERT INTO users ({names}) VALUES ({placeholders}) RETURNING id"), values
    ).scalar_one()


def list_everything(
    function: ModuleType, query: dict[str, str], *, page_size: int = 7
) -> tuple[list[int], list[int]]:
    """Walk every page of the list by cursor: the ids in order, and each page's total."""
    ids: list[int] = []
    totals: list[int] = []
    cursor: str | None = None
    while True:
        page_query = query | {"limit": str(page_size)} | ({"cursor": cursor} if cursor else {})
        status, page, _ = call(function, "GET", "/api/admin/users", query=page_query)
        assert status == 200, page
        ids += [item["id"] for item in page["data"]]
        totals.append(page["total"])
        cursor = page["nextCursor"]
        if cursor is None:
            return ids, totals
