"""Calling the admin users function the way API Gateway does, with admin tokens."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from sqlalchemy import text

from rft_common.auth import issue_token
from tests.conftest import FakeLambdaContext, rest_event

TEST_ADMIN_SECRET = "test-only-admin-jwt-secret-long-enough-for-hs512-0123456789abcdef"
ADMIN_SUBJECT = "admin-42"


def token_for(
    role: str = "admin",
    *,
    subject: str = ADMIN_SUBJECT,
    ttl_seconds: int = 600,
    secret: str = TEST_ADMIN_SECRET,
    **claims: Any,
) -> str:
    return issue_token(secret, role=role, subject=subject, ttl_seconds=ttl_seconds, **claims)


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
    """Invoke the handler; returns the status, the parsed body and the raw result.

    ``token`` defaults to a valid admin's; pass ``headers={}`` with ``token=None`` to
    send no Authorization header at all.
    """
    all_headers = {"Authorization": f"Bearer {token or token_for()}"}
    if headers is not None:
        all_headers = headers
    result = function.lambda_handler(
        rest_event(method, path, body, headers=all_headers, query=query), FakeLambdaContext()
    )
    return result["statusCode"], json.loads(result["body"]), result


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
        ids += [item["id"] for item in page["items"]]
        totals.append(page["total"])
        cursor = page["nextCursor"]
        if cursor is None:
            return ids, totals
