"""Contract fuzzing in CI: schemathesis against the local stack's own API document.

``rft_tools.checks.contract`` tries every operation of ``GET /api/openapi.json`` on the real
local stack (``stack``, in this package's conftest) with valid and invalid input, and
an admin token for the admin routes: no 5xx, and every status, header and body as
documented. ``make stress`` runs the same with many more examples.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from rft_common.consent.tokens import unsubscribe_token
from rft_common.core.settings import get_settings
from rft_common.core.vocabulary import RENEWAL_REMINDERS
from rft_tools.checks.contract import NOT_FUZZED, ContractReport, check_contract
from rft_tools.local.stack import LOCAL_UNSUBSCRIBE_SECRET
from tests.conftest import EMAIL, PROJECT_ROOT, UK_PHONE
from tests.payment_helpers import signature, stripe_event

MAX_EXAMPLES = 25
"""Per operation and generation mode (valid, invalid): about 1,000 requests in ~15 s."""


def _admin_token(staff_id: int) -> str:
    """The stack's admin's token, as ``rft dev token`` prints it (/me needs a real staff id)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "rft_tools.cli",
            "dev",
            "token",
            "--role",
            "admin",
            "--id",
            str(staff_id),
        ],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def report(stack) -> ContractReport:
    return check_contract(stack.api, _admin_token(stack.staff_id), max_examples=MAX_EXAMPLES)


def documented_operations(api: str) -> set[str]:
    with urllib.request.urlopen(f"{api}/api/openapi.json", timeout=10) as response:
        document = json.loads(response.read())
    return {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }


def test_every_operation_in_the_document_is_fuzzed(stack, report):
    assert set(report.cases) == documented_operations(stack.api) - {f"POST {NOT_FUZZED}"}
    assert min(report.cases.values()) >= 5, report.cases


def test_no_response_is_a_server_error_or_differs_from_the_document(report):
    assert dict(report.failures) == {}, report.describe_failures()


def test_schemathesis_could_test_everything_it_tried(report):
    assert report.errors == []


SIGNED_ONLY = "POST /api/stripe/webhook"
"""Only Stripe can sign its events, so fuzzing gets 400 there by design; the signed
path is covered over HTTP below."""

NEEDS_A_SIGN_IN_COOKIE = {"POST /api/admin/auth/refresh"}
"""Succeeds only with the cookie a sign-in sets, which fuzzing never holds;
``test_admin_sign_in_over_http`` walks it."""

NEEDS_A_SECRET = {"POST /api/admin/auth/change-password", "POST /api/admin/auth/reset-password"}
"""Succeed only with the staff member's current password or an emailed reset token, which
fuzzing never holds (and a fuzzed password change would end the stack's other sessions);
``tests/staff/test_staff_passwords.py`` walks both."""


NEEDS_A_SIGNED_LINK = {"GET /api/unsubscribe/{token}", "POST /api/unsubscribe/{token}"}
"""Succeed only with a token signed with the stack's unsubscribe key, which fuzzing never
makes; the signed link is walked over HTTP below."""


def test_every_operation_succeeds_at_least_once_so_fuzzing_got_past_auth_and_validation(report):
    never_succeeded = {
        operation: dict(statuses)
        for operation, statuses in report.statuses.items()
        if not any(200 <= status < 300 for status in statuses) and operation != SIGNED_ONLY
    }

    assert set(never_succeeded) <= (
        NEEDS_A_SIGN_IN_COOKIE | NEEDS_A_SECRET | NEEDS_A_SIGNED_LINK
    ), never_succeeded


def test_the_stacks_webhook_takes_an_event_signed_with_its_local_secret(stack):
    payload = stripe_event("customer.created", {"id": "cus_contract", "object": "customer"})
    request = urllib.request.Request(
        f"{stack.api}/api/stripe/webhook",
        data=payload.encode(),
        headers={"Content-Type": "application/json", "Stripe-Signature": signature(payload)},
    )

    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"received": True, "outcome": "ignored"}


def test_the_stacks_unsubscribe_link_shows_its_page_and_unsubscribes(stack, monkeypatch):
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", LOCAL_UNSUBSCRIBE_SECRET)
    get_settings.cache_clear()
    link = f"{stack.api}/api/unsubscribe/{unsubscribe_token(1, RENEWAL_REMINDERS)}"

    with urllib.request.urlopen(link, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
    one_click = urllib.request.Request(
        link,
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(one_click, timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"unsubscribed": True, "purpose": RENEWAL_REMINDERS}


def test_the_stack_logged_no_email_or_phone_number_while_fuzzed(stack, report):
    lines = stack.log.read_text().splitlines()

    leaks = [line for line in lines if EMAIL.search(line) or UK_PHONE.search(line)]

    assert leaks == []
