"""The checkout's first booking, in a fresh interpreter as Lambda runs it, reaches
PostgreSQL through pg8000, creates its customer, and never imports SQLAlchemy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT, rest_event
from tests.factories import add_session, booking_body, customer_of

pytestmark = pytest.mark.usefixtures("customer_accounts_on")

FIRST_BOOKING = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
class Context:
    function_name = "create_booking"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-2:123456789012:function:create_booking"
    aws_request_id = "first-booking"
response = module.lambda_handler(json.loads(sys.argv[2]), Context())
print(json.dumps({
    "status": response["statusCode"],
    "booking": json.loads(response["body"]),
    "modules": sorted(sys.modules),
}))
"""


def test_the_first_booking_is_made_without_importing_sqlalchemy(db):
    with db.begin() as connection:
        session_id = add_session(connection)
    handler = PROJECT_ROOT / "functions" / "create_booking" / "app.py"
    event = rest_event("POST", "/api/bookings", booking_body(session_id))

    completed = subprocess.run(
        [sys.executable, "-c", FIRST_BOOKING, str(handler), json.dumps(event)],
        env=os.environ | {"PYTHONPATH": str(handler.parent)},
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(completed.stdout.strip().splitlines()[-1])

    assert answer["status"] == 201
    assert customer_of(db, answer["booking"]) is not None  # the rendered upsert made it
    assert "pg8000" in answer["modules"]
    assert [module for module in answer["modules"] if module.startswith("sqlalchemy")] == []
