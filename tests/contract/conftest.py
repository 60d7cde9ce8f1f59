"""One real local stack (``rft run``) for the HTTP-level tests in this package.

It serves from a scratch database of its own, holding the demo sessions,
``CUSTOMERS`` customers made through checkout (users 1..3), so the admin routes'
smallest ids find someone, and one admin who signs in with the API document's
login example. Its output goes to ``log``.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rft_common.checkout.bookings import CHECKOUT_EXAMPLE
from rft_common.db.postgres import transaction_at
from rft_common.staff.routes import LOGIN_EXAMPLE
from rft_common.staff.service import save_staff_member
from rft_tools.local.admin import local_staff
from rft_tools.local.process import stack_process as local_stack
from rft_tools.operations.migrations import upgrade
from tests.conftest import scratch_database

CUSTOMERS = 3
NAMED_PARTICIPANT = """
    INSERT INTO booking_attendees (booking_id, position, first_name, last_name)
    SELECT min(id), 2, 'Named', 'Participant' FROM bookings
"""
"""The second place of the first booking, known by name only (as the site's
``participantDetails`` record it): the attendee erasure has someone to erase."""
LOCAL_STAFF_HIGH_ID = 900_000_001
"""Where this stack's own staff go, so that fuzzing's smallest ids (1, 2) are customers it
can merge."""


@dataclass(frozen=True)
class Stack:
    api: str
    log: Path
    customer_emails: tuple[str, ...]
    staff_id: int
    """The admin who signs in with ``LOGIN_EXAMPLE``."""


def _checkout(api: str, body: dict) -> int:
    request = urllib.request.Request(
        f"{api}/api/bookings",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.fixture(scope="package")
def stack(postgres_server_url, tmp_path_factory) -> Iterator[Stack]:
    url = scratch_database(postgres_server_url, "rft_contract_test")
    log = tmp_path_factory.mktemp("contract") / "stack.log"
    emails = tuple(f"contract{number}@example.com" for number in range(CUSTOMERS))
    upgrade(url, configure_logging=False)  # the stack's own upgrade then finds it done
    with transaction_at(url) as connection:  # before the stack makes them with ids 1 and 2
        local_staff(connection, first_id=LOCAL_STAFF_HIGH_ID)
    with local_stack(url, log, {"RFT_LOCAL_DIR": str(log.parent)}) as (_, api):
        for number, email in enumerate(emails):
            assert _checkout(api, CHECKOUT_EXAMPLE | {"email": email}) == 201
            if number == 0:  # attendee 2: someone the first booker named, erasable alone
                with transaction_at(url) as connection:
                    connection.execute(NAMED_PARTICIPANT)
        with transaction_at(url) as connection:
            staff_id, _ = save_staff_member(
                connection, name="Contract Admin", role="admin", **LOGIN_EXAMPLE
            )
        yield Stack(api, log, emails, staff_id)
