"""``make run`` end to end: the stack serves the template's routes and stops cleanly."""

from __future__ import annotations

import json
import signal
import urllib.request

import pytest

from rft_common.checkout.bookings import CHECKOUT_EXAMPLE
from rft_tools.local.process import stack_process as local_stack
from tests.conftest import scratch_database


@pytest.fixture
def running_stack(postgres_server_url, tmp_path):
    url = scratch_database(postgres_server_url, "rft_stack_test")
    with local_stack(url, tmp_path / "stack.log") as (process, api):
        yield process, api


def request(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    call = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_booking_sites_sample_body_creates_a_linked_booking_then_sigterm_stops(
    running_stack,
):
    process, api = running_stack

    health = request(f"{api}/api/health")
    created = request(f"{api}/api/bookings", CHECKOUT_EXAMPLE)
    process.send_signal(signal.SIGTERM)
    exit_code = process.wait(timeout=20)

    assert health == (200, {"status": "ok", "database": "reachable"})
    assert created[0] == 201
    assert created[1]["customerId"] is not None
    assert created[1]["amount"] == "150.00"
    assert exit_code == 0
