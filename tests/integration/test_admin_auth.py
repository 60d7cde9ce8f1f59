"""Every admin route needs an admin's bearer token; the flag switches the API off.

Each route is called through the real handler with every kind of credential. Refusals
carry the error shape and nothing else: no user data, whatever the route.
"""

from __future__ import annotations

import base64
import json
import time

import boto3
import jwt
import pytest
from moto import mock_aws
from sqlalchemy import text

from tests.admin_helpers import TEST_ADMIN_SECRET, call, token_for
from tests.factories import add_session, legacy_insert_booking

pytestmark = pytest.mark.usefixtures("db", "admin_secret", "export_bucket")

ROUTES = [
    ("GET", "/api/admin/users", None),
    ("GET", "/api/admin/users/export", None),
    ("GET", "/api/admin/users/{id}", None),
    ("GET", "/api/admin/users/{id}/bookings", None),
    ("PATCH", "/api/admin/users/{id}", {"city": "Leeds"}),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]


def _segment(document: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def _unsigned_token() -> str:
    """``alg: none``: an admin's claims and no signature at all."""
    claims = {"sub": "intruder", "role": "admin", "exp": int(time.time()) + 600}
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."


def _token_without(claim: str) -> str:
    claims = {"sub": "admin-1", "role": "admin", "exp": int(time.time()) + 600}
    del claims[claim]
    return jwt.encode(claims, TEST_ADMIN_SECRET, algorithm="HS256")


UNAUTHENTICATED = {
    "no Authorization header": {},
    "another scheme": {"Authorization": f"Basic {token_for()}"},
    "Bearer without a token": {"Authorization": "Bearer "},
    "malformed token": {"Authorization": "Bearer not.a.jwt"},
    "bad signature": {"Authorization": f"Bearer {token_for(secret='some-other-secret-' * 3)}"},
    "alg none": {"Authorization": f"Bearer {_unsigned_token()}"},
    "HS512 with the right secret": {
        "Authorization": "Bearer "
        + jwt.encode(
            {"sub": "a", "role": "admin", "exp": int(time.time()) + 600},
            TEST_ADMIN_SECRET,
            algorithm="HS512",
        )
    },
    "expired": {"Authorization": f"Bearer {token_for(ttl_seconds=-300)}"},
    "not valid yet": {"Authorization": f"Bearer {token_for(nbf=int(time.time()) + 300)}"},
    "no exp": {"Authorization": f"Bearer {_token_without('exp')}"},
    "no sub": {"Authorization": f"Bearer {_token_without('sub')}"},
    "no role": {"Authorization": f"Bearer {_token_without('role')}"},
}


@pytest.fixture
def user_id(db) -> int:
    with db.begin() as connection:
        session_id = add_session(connection)
        user = connection.execute(
            text(
                "INSERT INTO users (email, name, role, password_hash, phone) "
                "VALUES ('sam@example.com', 'Sam Patel', 'customer', 'bcrypt$secret', "
                "'07700 900123') RETURNING id"
            )
        ).scalar_one()
        legacy_insert_booking(
            connection, session_id=session_id, email="sam@example.com", user_id=user, reference="R1"
        )
    return user


def _path(path: str, user_id: int) -> str:
    return path.replace("{id}", str(user_id))


def assert_refusal_carries_no_data(body: dict) -> None:
    assert set(body) == {"message", "errors"}
    assert "sam" not in json.dumps(body).lower()


@pytest.mark.parametrize("credentials", UNAUTHENTICATED.values(), ids=UNAUTHENTICATED.keys())
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_requests_without_a_valid_admin_token_are_401_with_no_data(
    admin_users_function, user_id, method, path, body, credentials
):
    status, response, raw = call(
        admin_users_function, method, _path(path, user_id), body=body, headers=credentials
    )

    assert status == 401
    assert_refusal_carries_no_data(response)
    assert raw["multiValueHeaders"]["WWW-Authenticate"] == ['Bearer realm="rft-admin"']


@pytest.mark.parametrize("role", ["instructor", "customer"])
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_valid_tokens_of_other_roles_are_403_with_no_data(
    admin_users_function, user_id, method, path, body, role
):
    status, response, _ = call(
        admin_users_function, method, _path(path, user_id), body=body, token=token_for(role)
    )

    assert status == 403
    assert_refusal_carries_no_data(response)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_an_admin_token_is_served(admin_users_function, user_id, method, path, body):
    status, response, _ = call(admin_users_function, method, _path(path, user_id), body=body)

    assert status == 200, response
    assert "message" not in response


def test_an_anonymous_request_with_invalid_parameters_gets_401_not_a_validation_error(
    admin_users_function,
):
    status, response, _ = call(
        admin_users_function, "GET", "/api/admin/users", query={"limit": "5000"}, headers={}
    )

    assert status == 401
    assert response["errors"] == []


def test_without_a_configured_secret_no_token_is_accepted(
    admin_users_function, user_id, monkeypatch
):
    from rft_common import settings

    monkeypatch.delenv("ADMIN_JWT_SECRET")
    settings.get_settings.cache_clear()

    status, response, _ = call(admin_users_function, "GET", "/api/admin/users")

    assert status == 503
    assert "not configured" in response["message"]


def test_in_aws_the_secret_comes_through_the_secrets_extension(
    admin_users_function, user_id, monkeypatch, secrets_extension
):
    from rft_common import settings

    arn = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:rft/admin-jwt-AbCdEf"
    secrets_extension.secrets[arn] = "secret-from-the-secrets-extension-0123456789"
    monkeypatch.setenv("ADMIN_JWT_SECRET_ARN", arn)
    settings.get_settings.cache_clear()

    signed_with_it = call(
        admin_users_function,
        "GET",
        "/api/admin/users",
        token=token_for(secret="secret-from-the-secrets-extension-0123456789"),
    )
    signed_by_local_setting = call(
        admin_users_function, "GET", "/api/admin/users", token=token_for()
    )

    assert signed_with_it[0] == 200
    assert signed_by_local_setting[0] == 401


def test_a_secret_the_extension_cannot_read_is_503_not_a_crash(
    admin_users_function, user_id, monkeypatch, secrets_extension
):
    from rft_common import settings

    monkeypatch.setenv(
        "ADMIN_JWT_SECRET_ARN",
        "arn:aws:secretsmanager:eu-west-2:123456789012:secret:rft/missing-AbCdEf",
    )
    settings.get_settings.cache_clear()

    status, response, _ = call(admin_users_function, "GET", "/api/admin/users")

    assert status == 503
    assert "cannot be read" in response["message"]


def test_without_the_extension_the_secret_comes_from_secrets_manager(
    admin_users_function, user_id, monkeypatch
):
    from rft_common import settings

    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="rft/admin-jwt", SecretString="secret-from-secrets-manager-0123456789"
        )["ARN"]
        monkeypatch.setenv("ADMIN_JWT_SECRET_ARN", arn)
        settings.get_settings.cache_clear()

        signed_by_manager = call(
            admin_users_function,
            "GET",
            "/api/admin/users",
            token=token_for(secret="secret-from-secrets-manager-0123456789"),
        )
        signed_by_local_setting = call(
            admin_users_function, "GET", "/api/admin/users", token=token_for()
        )

    assert signed_by_manager[0] == 200
    assert signed_by_local_setting[0] == 401


def test_an_unreadable_secret_is_503_not_a_crash(admin_users_function, user_id, monkeypatch):
    from rft_common import settings

    with mock_aws():
        monkeypatch.setenv(
            "ADMIN_JWT_SECRET_ARN",
            "arn:aws:secretsmanager:eu-west-2:123456789012:secret:rft/missing-AbCdEf",
        )
        settings.get_settings.cache_clear()
        status, response, _ = call(admin_users_function, "GET", "/api/admin/users")

    assert status == 503
    assert "cannot be read" in response["message"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_with_the_flag_off_every_route_is_503_saying_so(
    admin_users_function, user_id, set_flags, method, path, body
):
    set_flags({"admin_users_api": {"default": False}})

    status, response, _ = call(admin_users_function, method, _path(path, user_id), body=body)

    assert status == 503
    assert "admin_users_api" in response["message"]
    assert_refusal_carries_no_data(response)
