"""The admin dashboard's whole session, over HTTP through the local stack.

Sign in, ask who is signed in, list, open a user, export, refresh, sign out: each
request sent as the dashboard sends it (``Content-Type: application/json`` on every
call, the query written by ``URLSearchParams``, the refresh token only as the cookie
the sign-in set), through the template-driven local API, so ``Set-Cookie`` and
``Cookie`` cross the emulated API Gateway as they cross the real one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from rft_common.staff.routes import LOGIN_EXAMPLE


def send(
    api: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    cookie: str | None = None,
    body: Any = None,
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = cookie
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{api}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, _headers(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _headers(error.headers), error.read()


def _headers(message: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in message.items()}


def refresh_cookie(set_cookie: str) -> str:
    """What a browser sends back for the ``refreshToken`` Set-Cookie header."""
    pair = set_cookie.split(";")[0].strip()
    assert pair.startswith("refreshToken=")
    return pair


def test_the_dashboards_session_from_sign_in_to_sign_out(stack):
    status, headers, body = send(stack.api, "POST", "/api/admin/auth/login", body=LOGIN_EXAMPLE)
    assert status == 200, body
    signed_in = json.loads(body)
    token, cookie = signed_in["accessToken"], refresh_cookie(headers["set-cookie"])
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]

    status, _, body = send(stack.api, "GET", "/api/admin/auth/me", token=token)
    assert (status, json.loads(body)["id"]) == (200, signed_in["user"]["id"])

    query = urllib.parse.urlencode(
        {"search": "Sam Patel", "role": "customer", "limit": "50", "offset": "0"}
    )
    assert "search=Sam+Patel" in query  # as URLSearchParams writes it
    status, _, body = send(stack.api, "GET", f"/api/admin/users?{query}", token=token)
    page = json.loads(body)
    assert (status, page["total"], len(page["data"])) == (200, 3, 3)

    user_id = page["data"][0]["id"]
    status, _, body = send(stack.api, "GET", f"/api/admin/users/{user_id}", token=token)
    detail = json.loads(body)
    assert (status, detail["id"], detail["is_active"]) == (200, user_id, True)
    assert detail["bookings"][0]["payment_amount"] == "150.00"

    status, headers, body = send(
        stack.api, "GET", "/api/admin/users/export?role=customer&format=csv", token=token
    )
    assert (status, headers["content-type"]) == (200, "text/csv; charset=utf-8")
    assert len(body.decode("utf-8-sig").splitlines()) == 4

    status, _, body = send(
        stack.api, "POST", "/api/admin/auth/refresh", cookie=f"theme=dark; {cookie}", body={}
    )
    assert status == 200, body
    refreshed = json.loads(body)["accessToken"]
    assert send(stack.api, "GET", "/api/admin/users", token=refreshed)[0] == 200

    status, headers, _ = send(
        stack.api, "POST", "/api/admin/auth/logout", token=refreshed, cookie=cookie
    )
    assert status == 200
    assert headers["set-cookie"].startswith("refreshToken=;")
    assert send(stack.api, "POST", "/api/admin/auth/refresh", cookie=cookie, body={})[0] == 401
