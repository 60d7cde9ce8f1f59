"""POST /api/bookings with its flag read through the AppConfig agent's protocol (a local
server), on real PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.conftest import load_function, load_safe_default_flags, rest_event
from tests.factories import add_session, booking_body, customer_of

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture(scope="module")
def create_booking():
    return load_function("create_booking", instance="flags")


def post(handler, context, body):
    response = handler.lambda_handler(rest_event("POST", "/api/bookings", body), context)
    return response["statusCode"], json.loads(response["body"])


def test_bookings_succeed_the_legacy_way_while_appconfig_is_unreachable(
    db, appconfig, create_booking, lambda_context, captured_logs
):
    appconfig.fail(502, "InternalServerException")
    with db.begin() as connection:
        first, second = add_session(connection), add_session(connection)

    answers = [
        post(create_booking, lambda_context, booking_body(session_id))
        for session_id in (first, second)
    ]

    assert [status for status, _ in answers] == [201, 201]
    assert [customer_of(db, body) for _, body in answers] == [None, None]
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
        unlinked = "SELECT count(*) FROM bookings WHERE user_id IS NULL"
        assert connection.execute(text(unlinked)).scalar_one() == 2
    warnings = [
        line for line in captured_logs.getvalue().splitlines() if '"level":"WARNING"' in line
    ]
    assert len(warnings) == 1
    assert "feature flags unavailable; using safe values" in warnings[0]


def test_a_customer_on_an_allow_listed_domain_is_linked(
    db, appconfig, create_booking, lambda_context
):
    appconfig.serve(
        load_safe_default_flags()
        | {
            "customer_accounts": {
                "default": False,
                "rules": {
                    "allow-listed domains": {
                        "when_match": True,
                        "conditions": [{"action": "IN", "key": "domain", "value": ["example.com"]}],
                    }
                },
            }
        }
    )
    with db.begin() as connection:
        first, second = add_session(connection), add_session(connection)

    _, staff = post(create_booking, lambda_context, booking_body(first, email="Sam@Example.com"))
    _, other = post(create_booking, lambda_context, booking_body(second, email="sam@example.org"))

    assert customer_of(db, staff) is not None
    assert customer_of(db, other) is None
