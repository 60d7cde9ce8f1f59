"""Requests contract fuzzing found answered with 500: each now gets a documented 4xx.

Powertools raised on them before any route ran (a multipart type without a boundary,
a base64 body that is not UTF-8), or found no route for a path parameter its route
pattern refuses, or PostgreSQL refused an offset beyond a bigint; the catch-all
turned each into a 500.
"""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import text

from tests.admin_helpers import call, token_for
from tests.conftest import load_function, rest_event
from tests.factories import add_session, booking_body

pytestmark = pytest.mark.usefixtures("db", "customer_accounts_on")


@pytest.fixture(scope="module")
def create_booking():
    return load_function("create_booking")


def post(function, context, event) -> tuple[int, dict]:
    result = function.lambda_handler(event, context)
    return result["statusCode"], json.loads(result["body"])


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=x", "multipart/mixed"]
)
def test_a_multipart_body_is_415_like_any_other_body_that_is_not_json(
    create_booking, lambda_context, content_type
):
    event = rest_event(
        "POST", "/api/bookings", booking_body(1), headers={"Content-Type": content_type}
    )

    status, body = post(create_booking, lambda_context, event)

    assert status == 415
    assert body["errors"] == [{"field": "body", "message": "send the body as application/json"}]


@pytest.mark.parametrize("raw", [b"W\xff\xfe", b'{"email": "\xe9"}'], ids=["bytes", "latin-1"])
def test_a_body_that_is_not_utf8_is_422_naming_the_body(db, create_booking, lambda_context, raw):
    event = rest_event("POST", "/api/bookings")
    event["body"] = base64.b64encode(raw).decode()
    event["isBase64Encoded"] = True

    status, body = post(create_booking, lambda_context, event)

    assert status == 422
    assert body["errors"] == [{"field": "body", "message": "the body is not UTF-8 text"}]
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM bookings")).scalar_one() == 0


def test_a_base64_json_body_is_still_read(create_booking, lambda_context):
    event = rest_event("POST", "/api/bookings", booking_body(987654))
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True

    status, body = post(create_booking, lambda_context, event)

    assert (status, body["errors"][0]["field"]) == (404, "courseSessionId")


@pytest.mark.usefixtures("signed_in_admin", "export_bucket")
@pytest.mark.parametrize("user_id", ["\x07\u00dd", "\U000eee49", "1\x00"], ids=repr)
def test_a_user_id_with_characters_no_route_takes_is_404_not_500(admin_users_function, user_id):
    status, body, _ = call(
        admin_users_function, "GET", f"/api/admin/users/{user_id}", token=token_for()
    )

    assert status == 404
    assert body == {"message": "nothing exists at this path", "errors": []}


@pytest.mark.usefixtures("signed_in_admin", "export_bucket")
def test_an_offset_beyond_what_postgresql_takes_is_422_naming_offset(admin_users_function):
    status, body, _ = call(
        admin_users_function,
        "GET",
        "/api/admin/users",
        query={"offset": "1869324195847928124532861390387412992"},
    )

    assert status == 422
    assert [error["field"] for error in body["errors"]] == ["offset"]


@pytest.fixture(scope="module")
def admin_auth():
    return load_function("admin_auth")


UNSTORABLE = "contains a character that cannot be stored (NUL or an unpaired surrogate)"
NUL = "\u0000"
LONE_SURROGATE = "\ud800"
"""Half of a UTF-16 pair: valid in JSON (``"\\ud800"``), but it has no UTF-8 form."""


@pytest.mark.parametrize("bad", [NUL, LONE_SURROGATE])
def test_text_postgresql_cannot_store_is_422_naming_the_field(
    db, create_booking, admin_auth, lambda_context, bad
):
    """Stress fuzzing found sign-in answering 500 for a NUL in the email: PostgreSQL
    refuses NUL in text, and a lone surrogate cannot even be encoded to send."""
    with db.begin() as connection:
        session_id = add_session(connection)
    intent = {
        "courseSessionId": session_id,
        "amount": 7500,
        "bookingData": {
            "firstName": "Sam",
            "lastName": "Patel",
            "email": "sam@example.com",
            "numberOfParticipants": 1,
            "specialRequirements": ["ok", bad],
        },
    }
    requests = {
        "firstName": (
            create_booking,
            rest_event("POST", "/api/bookings", booking_body(session_id, firstName=f"Sam{bad}")),
        ),
        "email": (
            admin_auth,
            rest_event(
                "POST", "/api/admin/auth/login", {"email": f"a{bad}@example.com", "password": "x"}
            ),
        ),
        "bookingData.specialRequirements.1": (
            create_booking,
            rest_event("POST", "/api/bookings/create-payment-intent", intent),
        ),
        "course": (
            create_booking,
            rest_event("GET", "/api/courses/sessions/available", query={"course": f"EF{bad}"}),
        ),
    }

    for field, (function, event) in requests.items():
        status, body = post(function, lambda_context, event)
        assert (status, body["message"], body["errors"]) == (
            422,
            "invalid request",
            [{"field": field, "message": UNSTORABLE}],
        ), field
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM bookings")).scalar_one() == 0


HUGE_NUMBER = "9" * 5000
"""Longer than Python converts to an int (``sys.get_int_max_str_digits``): json.loads raised."""


@pytest.mark.parametrize("sign", ["", "-"])
def test_a_number_too_long_to_convert_is_422_naming_its_field(create_booking, lambda_context, sign):
    body = json.dumps(booking_body(1)).replace(
        '"numberOfParticipants": 1', f'"numberOfParticipants": {sign}{HUGE_NUMBER}'
    )

    status, answer = post(create_booking, lambda_context, rest_event("POST", "/api/bookings", body))

    assert status == 422
    assert [error["field"] for error in answer["errors"]] == ["numberOfParticipants"]


@pytest.mark.usefixtures("admin_secret", "export_bucket")
def test_a_number_too_long_to_convert_is_422_on_admin_routes_too(
    admin_users_function, signed_in_admin
):
    status, answer, _ = call(
        admin_users_function,
        "POST",
        "/api/admin/users/1/merge",
        body=f'{{"duplicate_id": {HUGE_NUMBER}}}',
    )

    assert status == 422
    assert [error["field"] for error in answer["errors"]] == ["duplicate_id"]
