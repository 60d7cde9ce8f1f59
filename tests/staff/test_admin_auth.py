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

from rft_common.staff.tokens import Staff, issue_refresh_token
from rft_common.users.merges import merge_users
from tests.admin_helpers import (
    ADMIN_EMAIL,
    ADMIN_ID,
    TEST_ADMIN_SECRET,
    TEST_REFRESH_SECRET,
    add_user,
    call,
    token_for,
)
from tests.factories import add_session, legacy_insert_booking

pytestmark = pytest.mark.usefixtures("db", "signed_in_admin", "export_bucket")

ROUTES = [
    ("GET", "/api/admin/users", None),
    ("GET", "/api/admin/users/export", None),
    ("GET", "/api/admin/users/{id}", None),
    ("GET", "/api/admin/users/{id}/bookings", None),
    ("PATCH", "/api/admin/users/{id}", {"city": "Leeds"}),
    ("GET", "/api/admin/payments/unplaced", None),
    ("GET", "/api/admin/users/{id}/data-export", None),
    ("POST", "/api/admin/users/{id}/erase", {"reason": "ticket 1", "force": True}),
    ("POST", "/api/admin/attendees/{id}/erase", {"reason": "ticket 1"}),
    ("GET", "/api/admin/renewals", None),
    ("GET", "/api/admin/renewals/export", None),
    ("GET", "/api/admin/users/duplicates", None),
    ("POST", "/api/admin/users/{id}/merge", {"duplicate_id": 2}),
    ("POST", "/api/admin/users/{id}/unmerge", {"duplicate_id": 2}),
    ("POST", "/api/admin/users/{id}/not-duplicate", {"duplicate_id": 2}),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]


def _segment(document: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def _claims(**changes: object) -> dict:
    """The admin login's access-token claims, with some changed (``None`` removes one)."""
    claims = {
        "id": ADMIN_ID,
        "email": ADMIN_EMAIL,
        "role": "admin",
        "ver": 0,
        "iss": "reactfasttraining.co.uk",
        "aud": "admin",
        "exp": int(time.time()) + 600,
    } | changes
    return {name: value for name, value in claims.items() if value is not None}


def _signed(claims: dict, *, secret: str = TEST_ADMIN_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _unsigned_token() -> str:
    """``alg: none``: an admin's claims and no signature at all."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(_claims())}."


def _refresh_token(secret: str) -> str:
    return issue_refresh_token(secret, user_id=ADMIN_ID, token_version=0)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


UNAUTHENTICATED = {
    "no Authorization header": {},
    "another scheme": {"Authorization": f"Basic {token_for()}"},
    "Bearer without a token": {"Authorization": "Bearer "},
    "malformed token": _bearer("not.a.jwt"),
    "bad signature": _bearer(token_for(secret="some-other-secret-" * 3)),
    "alg none": _bearer(_unsigned_token()),
    "HS512 with the right secret": _bearer(_signed(_claims(), algorithm="HS512")),
    "expired": _bearer(token_for(ttl_seconds=-300)),
    "not valid yet": _bearer(token_for(nbf=int(time.time()) + 24 * 3600)),
    "no exp": _bearer(_signed(_claims(exp=None))),
    "no id": _bearer(_signed(_claims(id=None))),
    "id not a number": _bearer(_signed(_claims(id="42"))),
    "no email": _bearer(_signed(_claims(email=None))),
    "no role": _bearer(_signed(_claims(role=None))),
    "no iss": _bearer(_signed(_claims(iss=None))),
    "another iss": _bearer(_signed(_claims(iss="evil.example"))),
    "no aud": _bearer(_signed(_claims(aud=None))),
    "another aud": _bearer(_signed(_claims(aud="customer"))),
    "the old sub-only format": _bearer(
        _signed({"sub": "admin-1", "role": "admin", "exp": int(time.time()) + 600})
    ),
    "a refresh token": _bearer(_refresh_token(TEST_REFRESH_SECRET)),
    "a refresh token signed with the access secret": _bearer(_refresh_token(TEST_ADMIN_SECRET)),
    "an access token typed refresh": _bearer(_signed(_claims(type="refresh"))),
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
def test_an_admin_token_in_the_login_format_is_served(
    db, admin_users_function, user_id, method, path, body
):
    token = token_for()
    assert "sub" not in jwt.decode(token, options={"verify_signature": False})
    if body and "duplicate_id" in body:
        with db.begin() as connection:
            body = {"duplicate_id": add_user(connection, "sam.patel@gmial.com", name="Sam Patel")}
        if path.endswith("/unmerge"):
            merge_users(
                user_id,
                body["duplicate_id"],
                actor=Staff(id=ADMIN_ID, email=ADMIN_EMAIL, role="admin"),
            )

    target_id = user_id
    if path.startswith("/api/admin/attendees/"):
        with db.begin() as connection:  # a participant the customer named on their booking
            target_id = connection.execute(
                text(
                    "INSERT INTO booking_attendees (booking_id, position, first_name) "
                    "SELECT id, 2, 'Dan' FROM bookings RETURNING id"
                )
            ).scalar_one()

    status, response, _ = call(
        admin_users_function, method, _path(path, target_id), body=body, token=token
    )

    assert status == 200, response
    assert "message" not in response


def test_a_configured_issuer_and_audience_replace_the_defaults(
    admin_users_function, user_id, monkeypatch
):
    from rft_common.core import settings

    monkeypatch.setenv("ADMIN_JWT_ISSUER", "staging.reactfasttraining.co.uk")
    monkeypatch.setenv("ADMIN_JWT_AUDIENCE", "staging-admin")
    settings.get_settings.cache_clear()
    staging = _claims(iss="staging.reactfasttraining.co.uk", aud="staging-admin")

    accepted = call(admin_users_function, "GET", "/api/admin/users", token=_signed(staging))
    default = call(admin_users_function, "GET", "/api/admin/users", token=_signed(_claims()))

    assert (accepted[0], default[0]) == (200, 401)


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
    from rft_common.core import settings

    monkeypatch.delenv("ADMIN_JWT_SECRET")
    settings.get_settings.cache_clear()

    status, response, _ = call(admin_users_function, "GET", "/api/admin/users")

    assert status == 503
    assert "not configured" in response["message"]


def test_in_aws_the_secret_comes_through_the_secrets_extension(
    admin_users_function, user_id, monkeypatch, secrets_extension
):
    from rft_common.core import settings

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
    from rft_common.core import settings

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
    from rft_common.core import settings

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
    from rft_common.core import settings

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
