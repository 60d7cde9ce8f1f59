"""Staff sign-in (/api/admin/auth/*): the dashboard's login, /me, refresh and logout.

Handlers are called the way API Gateway calls them; the failed-login limit is also
driven from many threads at once, each on its own database connection (handlers of
one process must not run concurrently: Powertools keeps the event on the class).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import bcrypt
import jwt
import pytest
from sqlalchemy import text

from rft_common.core.errors import TooManyRequests, Unauthorized
from rft_common.staff import service as staff
from tests.admin_helpers import TEST_ADMIN_SECRET, TEST_REFRESH_SECRET, add_user
from tests.admin_helpers import call as admin_call
from tests.conftest import FakeLambdaContext, load_function, rest_event

pytestmark = pytest.mark.usefixtures("admin_secret", "export_bucket")

PASSWORD = "Correct-Horse-9-Battery"
EMAIL = "alex.admin@reactfasttraining.co.uk"
FAST_ROUNDS = 4
"""Test hashes are cheap; the dummy hash keeps the legacy cost (12)."""


@pytest.fixture(scope="module")
def auth_function() -> ModuleType:
    return load_function("admin_auth")


@pytest.fixture
def admin_id(db) -> int:
    with db.begin() as connection:
        return add_user(
            connection,
            EMAIL,
            name="Alex Admin",
            role="admin",
            password_hash=staff.hash_password(PASSWORD, rounds=FAST_ROUNDS),
        )


def call(
    function: ModuleType,
    method: str,
    path: str,
    *,
    body: Any = None,
    token: str | None = None,
    cookie: str | None = None,
) -> tuple[int, Any, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = f"theme=dark; refreshToken={cookie}"
    result = function.lambda_handler(
        rest_event(method, path, body, headers=headers), FakeLambdaContext()
    )
    return result["statusCode"], json.loads(result["body"]), result


def login(
    function: ModuleType,
    email: str = EMAIL,
    password: str = PASSWORD,
    *,
    source_ip: str = "127.0.0.1",
):
    event = rest_event("POST", "/api/admin/auth/login", {"email": email, "password": password})
    event["requestContext"]["identity"]["sourceIp"] = source_ip
    result = function.lambda_handler(event, FakeLambdaContext())
    return result["statusCode"], json.loads(result["body"]), result


def set_cookie(result: dict[str, Any]) -> dict[str, str]:
    """The ``refreshToken`` Set-Cookie header: its value and its attributes."""
    [header] = [
        value
        for name, values in result["multiValueHeaders"].items()
        if name.lower() == "set-cookie"
        for value in values
    ]
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    assert name == "refreshToken"
    parsed = {"value": value}
    for attribute in attributes:
        key, _, setting = attribute.partition("=")
        parsed[key.lower()] = setting
    return parsed


def failures_recorded(db, email: str = EMAIL) -> int:
    with db.connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM admin_login_failures WHERE email_normalized = :email"),
            {"email": email},
        ).scalar_one()


# --- sign-in --------------------------------------------------------------------------


def test_a_staff_member_signs_in_with_the_dashboards_shapes(auth_function, admin_id):
    status, body, _ = login(auth_function)

    assert status == 200
    assert set(body) == {"accessToken", "user", "expiresIn"}
    assert body["user"] == {"id": admin_id, "email": EMAIL, "name": "Alex Admin", "role": "admin"}
    assert body["expiresIn"] == 900
    claims = jwt.decode(
        body["accessToken"],
        TEST_ADMIN_SECRET,
        algorithms=["HS256"],
        audience="admin",
        issuer="reactfasttraining.co.uk",
    )
    assert (claims["id"], claims["email"], claims["role"]) == (admin_id, EMAIL, "admin")
    assert claims["exp"] - claims["iat"] == 900
    assert "sub" not in claims


def test_the_refresh_token_is_a_strict_http_only_cookie_for_seven_days(auth_function, admin_id):
    _, body, result = login(auth_function)

    cookie = set_cookie(result)
    assert cookie["path"] == "/api/admin/auth"
    assert cookie["max-age"] == str(7 * 24 * 3600)
    assert {"httponly", "secure"} <= set(cookie)
    assert cookie["samesite"] == "Strict"
    refresh = jwt.decode(
        cookie["value"],
        TEST_REFRESH_SECRET,
        algorithms=["HS256"],
        audience="admin",
        issuer="reactfasttraining.co.uk",
    )
    assert (refresh["id"], refresh["type"]) == (admin_id, "refresh")
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 3600
    assert cookie["value"] not in json.dumps(body)
    with pytest.raises(jwt.InvalidSignatureError):  # a secret of its own
        jwt.decode(cookie["value"], TEST_ADMIN_SECRET, algorithms=["HS256"], audience="admin")


def test_the_email_is_normalised_and_sign_in_is_recorded(auth_function, admin_id, db):
    status, body, _ = login(auth_function, email="  Alex.Admin@ReactFastTraining.CO.UK ")

    assert (status, body["user"]["id"]) == (200, admin_id)
    with db.connect() as connection:
        last_login = connection.execute(
            text("SELECT last_login_at FROM users WHERE id = :id"), {"id": admin_id}
        ).scalar_one()
    assert last_login is not None


def test_a_hash_written_by_the_legacy_node_backend_signs_in(auth_function, db):
    legacy_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(FAST_ROUNDS)).replace(
        b"$2b$", b"$2a$", 1
    )
    with db.begin() as connection:
        add_user(
            connection,
            "ivy@reactfasttraining.co.uk",
            name="Ivy",
            role="instructor",
            password_hash=legacy_hash.decode(),
        )

    status, body, _ = login(auth_function, email="ivy@reactfasttraining.co.uk")

    assert (status, body["user"]["role"]) == (200, "instructor")


@pytest.mark.parametrize(
    ("email", "password"),
    [
        (EMAIL, "wrong-password"),
        ("nobody@reactfasttraining.co.uk", PASSWORD),
        ("sam@example.com", PASSWORD),  # a customer with the same password
        ("nohash@reactfasttraining.co.uk", PASSWORD),  # staff without a password
        ("badhash@reactfasttraining.co.uk", PASSWORD),  # not a bcrypt hash
    ],
)
def test_bad_credentials_and_customers_get_the_same_401(
    auth_function, admin_id, db, email, password
):
    with db.begin() as connection:
        add_user(
            connection,
            "sam@example.com",
            name="Sam",
            password_hash=staff.hash_password(PASSWORD, rounds=FAST_ROUNDS),
        )
        add_user(connection, "nohash@reactfasttraining.co.uk", role="admin")
        add_user(connection, "badhash@reactfasttraining.co.uk", role="admin", password_hash="md5$x")

    status, body, result = login(auth_function, email=email, password=password)

    assert status == 401
    assert body == {"message": "invalid email or password", "errors": []}
    assert not any(name.lower() == "set-cookie" for name in result["multiValueHeaders"])


def test_every_attempt_checks_one_bcrypt_hash_even_without_an_account(
    auth_function, admin_id, monkeypatch
):
    checked: list[bytes] = []
    real_check = bcrypt.checkpw
    monkeypatch.setattr(
        bcrypt,
        "checkpw",
        lambda password, hashed: checked.append(hashed) or real_check(password, hashed),
    )

    login(auth_function, email="nobody@reactfasttraining.co.uk")
    login(auth_function, password="wrong")

    assert checked[0] == staff.DUMMY_HASH
    assert checked[1] != staff.DUMMY_HASH
    assert len(checked) == 2
    assert staff.DUMMY_HASH.startswith(f"$2b${staff.BCRYPT_ROUNDS}$".encode())


def test_a_deactivated_account_is_403_with_the_right_password_and_401_without(
    auth_function, admin_id, db
):
    with db.begin() as connection:
        connection.execute(
            text("UPDATE users SET is_active = false WHERE id = :id"), {"id": admin_id}
        )

    right = login(auth_function)
    wrong = login(auth_function, password="wrong")

    assert (right[0], wrong[0]) == (403, 401)
    assert failures_recorded(db) == 1  # only the wrong password counts


@pytest.mark.parametrize(
    "body",
    [{}, {"email": EMAIL}, {"password": PASSWORD}, {"email": "", "password": "x"},
     {"email": EMAIL, "password": "x" * 1025}, "not json"],
)  # fmt: skip
def test_a_malformed_login_is_422(auth_function, db, body):
    status, response, _ = call(auth_function, "POST", "/api/admin/auth/login", body=body)

    assert status == 422
    assert response["errors"]


def test_the_forms_extra_captcha_field_is_ignored(auth_function, admin_id):
    status, _, _ = call(
        auth_function,
        "POST",
        "/api/admin/auth/login",
        body={"email": EMAIL, "password": PASSWORD, "captcha": "abc"},
    )

    assert status == 200


# --- the failed-login limit --------------------------------------------------------------


def test_five_failures_in_fifteen_minutes_refuse_even_the_right_password(
    auth_function, admin_id, db
):
    statuses = [login(auth_function, password=f"wrong-{n}")[0] for n in range(5)]

    refused = login(auth_function)

    assert statuses == [401] * 5
    assert refused[0] == 429
    assert refused[2]["multiValueHeaders"]["Retry-After"] == ["900"]
    assert failures_recorded(db) == 5


def test_the_limit_is_per_normalised_email(auth_function, admin_id, db):
    for number in range(5):
        login(
            auth_function, email=f" ALEX.admin@reactfasttraining.co.uk{' ' * number}", password="x"
        )

    other = login(auth_function, email="someone.else@reactfasttraining.co.uk", password="x")

    assert login(auth_function)[0] == 429
    assert other[0] == 401


def test_a_strangers_failures_lock_out_the_stranger_not_the_admins_own_client(
    auth_function, admin_id, db
):
    stranger = [
        login(auth_function, password=f"guess-{n}", source_ip="203.0.113.66")[0] for n in range(6)
    ]

    admin = login(auth_function, source_ip="198.51.100.10")
    still_refused = login(auth_function, source_ip="203.0.113.66")

    assert stranger == [401] * 5 + [429]
    assert admin[0] == 200
    assert still_refused[0] == 429  # the admin's success cleared only their own failures
    assert failures_recorded(db) == 5
    with db.connect() as connection:
        keys = connection.execute(text("SELECT DISTINCT client_key FROM admin_login_failures"))
        assert [key for (key,) in keys] == [staff.login_client("203.0.113.66")]
        assert "203.0.113.66" not in staff.login_client("203.0.113.66")


def test_addresses_of_one_ipv6_64_are_one_client(auth_function, admin_id, db):
    statuses = [
        login(auth_function, password="x", source_ip=f"2001:db8:1:2::{n + 1:x}")[0]
        for n in range(6)
    ]

    assert statuses == [401] * 5 + [429]
    assert login(auth_function, source_ip="2001:db8:1:3::1")[0] == 200


def test_the_accounts_ceiling_refuses_every_client_once_reached(auth_function, admin_id, db):
    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO admin_login_failures (email_normalized, client_key) "
                "SELECT CAST(:email AS text), 'client-' || mod(n, 25) "
                "FROM generate_series(1, CAST(:count AS integer)) AS n"
            ),
            {"email": EMAIL, "count": staff.MAX_ACCOUNT_FAILURES - 1},
        )

    last_guess = login(auth_function, password="x", source_ip="192.0.2.1")
    admin = login(auth_function, source_ip="198.51.100.10")

    assert last_guess[0] == 401
    assert admin[0] == 429
    assert staff.MAX_ACCOUNT_FAILURES // staff.MAX_FAILURES >= 20  # twenty addresses at least


def test_failures_older_than_fifteen_minutes_no_longer_count(auth_function, admin_id, db):
    for number in range(5):
        login(auth_function, password=f"wrong-{number}")
    with db.begin() as connection:
        connection.execute(
            text("UPDATE admin_login_failures SET attempted_at = now() - interval '16 minutes'")
        )

    assert login(auth_function)[0] == 200


def test_a_successful_sign_in_clears_the_failures(auth_function, admin_id, db):
    for number in range(4):
        login(auth_function, password=f"wrong-{number}")

    assert login(auth_function)[0] == 200
    assert failures_recorded(db) == 0
    assert [login(auth_function, password="x")[0] for _ in range(5)] == [401] * 5


def test_concurrent_failed_sign_ins_from_many_lambdas_check_at_most_five(admin_id, db):
    """Twelve attempts at once, each on its own connection, as twelve Lambdas would be."""
    attempts = 12
    start = threading.Barrier(attempts)

    def attempt(number: int) -> str:
        start.wait()
        try:
            staff.sign_in(EMAIL, f"wrong-{number}")
        except Unauthorized:
            return "401"
        except TooManyRequests:
            return "429"
        return "200"

    with ThreadPoolExecutor(attempts) as pool:
        outcomes = sorted(pool.map(attempt, range(attempts)))

    assert outcomes == ["401"] * 5 + ["429"] * 7
    assert failures_recorded(db) == 5
    with pytest.raises(TooManyRequests):
        staff.sign_in(EMAIL, PASSWORD)


# --- /me, refresh and logout -------------------------------------------------------------


def test_me_answers_who_is_signed_in_with_their_permissions(auth_function, admin_id):
    _, signed_in, _ = login(auth_function)

    status, body, _ = call(
        auth_function, "GET", "/api/admin/auth/me", token=signed_in["accessToken"]
    )

    assert status == 200
    assert set(body) == {"id", "email", "name", "role", "lastLogin", "permissions"}
    assert (body["id"], body["email"], body["name"], body["role"]) == (
        admin_id,
        EMAIL,
        "Alex Admin",
        "admin",
    )
    assert body["lastLogin"] is not None
    assert "users.manage" in body["permissions"]


def test_an_instructor_has_me_but_not_the_admin_api(auth_function, admin_users_function, db):
    with db.begin() as connection:
        add_user(
            connection,
            "ivy@reactfasttraining.co.uk",
            name="Ivy",
            role="instructor",
            password_hash=staff.hash_password(PASSWORD, rounds=FAST_ROUNDS),
        )
    _, signed_in, _ = login(auth_function, email="ivy@reactfasttraining.co.uk")
    token = signed_in["accessToken"]

    me = call(auth_function, "GET", "/api/admin/auth/me", token=token)
    users = admin_call(admin_users_function, "GET", "/api/admin/users", token=token)

    assert (me[0], me[1]["role"], me[1]["permissions"]) == (
        200,
        "instructor",
        staff.PERMISSIONS["instructor"],
    )
    assert users[0] == 403


@pytest.mark.parametrize("token", [None, "not.a.jwt"])
def test_me_without_a_valid_token_is_401(auth_function, db, token):
    status, _, _ = call(auth_function, "GET", "/api/admin/auth/me", token=token)

    assert status == 401


def test_refresh_reads_the_cookie_and_the_new_token_opens_the_admin_api(
    auth_function, admin_users_function, admin_id
):
    _, _, result = login(auth_function)

    status, body, _ = call(
        auth_function,
        "POST",
        "/api/admin/auth/refresh",
        body={},
        cookie=set_cookie(result)["value"],
    )
    listed = admin_call(admin_users_function, "GET", "/api/admin/users", token=body["accessToken"])

    assert (status, set(body), body["expiresIn"]) == (200, {"accessToken", "expiresIn"}, 900)
    assert listed[0] == 200


def test_refresh_refuses_what_is_not_a_live_refresh_cookie(auth_function, admin_id):
    _, signed_in, result = login(auth_function)
    refresh_token = set_cookie(result)["value"]

    no_cookie = call(auth_function, "POST", "/api/admin/auth/refresh", body={})
    as_bearer = call(auth_function, "POST", "/api/admin/auth/refresh", body={}, token=refresh_token)
    access_as_cookie = call(
        auth_function, "POST", "/api/admin/auth/refresh", body={}, cookie=signed_in["accessToken"]
    )

    assert (no_cookie[0], as_bearer[0], access_as_cookie[0]) == (401, 401, 401)


def test_logout_clears_the_cookie_and_revokes_that_session_only(auth_function, admin_id):
    _, first, first_result = login(auth_function)
    _, _, second_result = login(auth_function)
    first_cookie = set_cookie(first_result)["value"]

    status, body, result = call(
        auth_function,
        "POST",
        "/api/admin/auth/logout",
        token=first["accessToken"],
        cookie=first_cookie,
    )

    cleared = set_cookie(result)
    assert (status, body["success"]) == (200, True)
    assert (cleared["value"], cleared["max-age"], cleared["path"]) == ("", "0", "/api/admin/auth")
    revoked = call(auth_function, "POST", "/api/admin/auth/refresh", body={}, cookie=first_cookie)
    other = call(
        auth_function,
        "POST",
        "/api/admin/auth/refresh",
        body={},
        cookie=set_cookie(second_result)["value"],
    )
    assert (revoked[0], other[0]) == (401, 200)


def test_logout_without_a_session_still_succeeds(auth_function, db):
    status, body, _ = call(auth_function, "POST", "/api/admin/auth/logout", cookie="garbage")

    assert (status, body["success"]) == (200, True)


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE users SET password_hash = 'changed' WHERE id = :id",
        "UPDATE users SET is_active = false WHERE id = :id",
        "UPDATE users SET role = 'customer' WHERE id = :id",
    ],
    ids=["password changed", "deactivated", "no longer staff"],
)
def test_a_password_change_or_deactivation_revokes_every_session(
    auth_function, admin_id, db, change
):
    cookies = [set_cookie(login(auth_function)[2])["value"] for _ in range(2)]
    with db.begin() as connection:
        connection.execute(text(change), {"id": admin_id})

    statuses = [
        call(auth_function, "POST", "/api/admin/auth/refresh", body={}, cookie=cookie)[0]
        for cookie in cookies
    ]

    assert statuses == [401, 401]


@pytest.mark.usefixtures("signed_in_admin")
def test_a_deactivation_through_the_admin_api_revokes_the_instructors_sessions(
    auth_function, admin_users_function, db
):
    with db.begin() as connection:
        instructor = add_user(
            connection,
            "ivy@reactfasttraining.co.uk",
            name="Ivy",
            role="instructor",
            password_hash=staff.hash_password(PASSWORD, rounds=FAST_ROUNDS),
        )
    cookie = set_cookie(login(auth_function, email="ivy@reactfasttraining.co.uk")[2])["value"]

    patched = admin_call(
        admin_users_function, "PATCH", f"/api/admin/users/{instructor}", body={"is_active": False}
    )
    refreshed = call(auth_function, "POST", "/api/admin/auth/refresh", body={}, cookie=cookie)
    again = login(auth_function, email="ivy@reactfasttraining.co.uk")

    assert (patched[0], refreshed[0], again[0]) == (200, 401, 403)


def test_refused_sign_ins_are_counted_in_a_metric_and_successes_are_not(
    auth_function, admin_id, capsys, monkeypatch
):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    login(auth_function, password="wrong password")
    refused = capsys.readouterr().out
    login(auth_function)
    signed_in = capsys.readouterr().out

    assert '"StaffSignInsRefused"' in refused
    assert '"StaffSignInsRefused"' not in signed_in
