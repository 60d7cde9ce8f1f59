"""Flags read through the AppConfig agent's HTTP protocol (a local server speaking it),
evaluated by Powertools FeatureFlags, as in AWS."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from rft_common.aws.flags import (
    ADMIN_USERS_API,
    BACKFILL,
    CUSTOMER_ACCOUNTS,
    SAFE_VALUES,
    customer_accounts_enabled,
    is_enabled,
)
from rft_common.core.emails import rollout_bucket
from tests.conftest import load_safe_default_flags, reset_flag_caches
from tests.extension_servers import APPCONFIG_ENVIRONMENT_VARIABLES

MAX_AGE = 5  # FLAGS_MAX_AGE_SECONDS set by the appconfig fixture


def document(**flags_by_name: dict) -> dict:
    return load_safe_default_flags() | flags_by_name


def customer_accounts(*, percent: int = 0, emails=(), domains=(), default=False) -> dict:
    rules = {}
    if emails:
        rules["allow-listed emails"] = {
            "when_match": True,
            "conditions": [{"action": "IN", "key": "email", "value": list(emails)}],
        }
    if domains:
        rules["allow-listed domains"] = {
            "when_match": True,
            "conditions": [{"action": "IN", "key": "domain", "value": list(domains)}],
        }
    if percent:
        rules["percentage rollout"] = {
            "when_match": True,
            "conditions": [
                {
                    "action": "MODULO_RANGE",
                    "key": "bucket",
                    "value": {"BASE": 100, "START": 0, "END": percent - 1},
                }
            ],
        }
    return {"default": default, "rules": rules} if rules else {"default": default}


def current_values() -> dict[str, bool]:
    return {name: is_enabled(name) for name in SAFE_VALUES}


def warnings_logged(captured_logs) -> list[dict]:
    records = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    return [record for record in records if record["level"] == "WARNING"]


EMAILS = [f"customer{number}@example{number % 37}.com" for number in range(10_000)]


class TestFlagsFromAppConfig:
    def test_each_flag_takes_the_value_deployed_in_appconfig(self, appconfig):
        appconfig.serve(
            document(
                customer_accounts={"default": True},
                admin_users_api={"default": False},
                backfill={"default": True},
            )
        )

        values = current_values()

        assert values == {CUSTOMER_ACCOUNTS: True, ADMIN_USERS_API: False, BACKFILL: True}
        assert appconfig.requests == 1

    def test_a_flag_switched_off_is_off_for_every_customer(self, appconfig):
        appconfig.serve(document(customer_accounts={"default": False}))

        assert not any(customer_accounts_enabled(email) for email in EMAILS[:500])

    def test_a_flag_switched_on_is_on_for_every_customer(self, appconfig):
        appconfig.serve(document(customer_accounts={"default": True}))

        assert all(customer_accounts_enabled(email) for email in EMAILS[:500])


class TestPercentageRollout:
    def test_ten_percent_reaches_about_a_tenth_of_customers(self, appconfig):
        appconfig.serve(document(customer_accounts=customer_accounts(percent=10)))

        share = sum(customer_accounts_enabled(email) for email in EMAILS) / len(EMAILS)

        assert 0.09 <= share <= 0.11

    def test_a_customer_is_in_the_rollout_exactly_when_their_bucket_is_below_the_percentage(
        self, appconfig
    ):
        appconfig.serve(document(customer_accounts=customer_accounts(percent=50)))

        enabled = {email for email in EMAILS if customer_accounts_enabled(email)}

        assert enabled == {email for email in EMAILS if rollout_bucket(email) < 50}

    def test_a_customer_gets_the_same_answer_on_every_evaluation_and_refetch(
        self, appconfig, flag_clock
    ):
        appconfig.serve(document(customer_accounts=customer_accounts(percent=30)))
        first = [customer_accounts_enabled(email) for email in EMAILS[:2_000]]
        flag_clock.advance(MAX_AGE)

        again = [customer_accounts_enabled(email) for email in EMAILS[:2_000]]

        assert again == first
        assert appconfig.requests == 2

    def test_raising_the_percentage_keeps_every_customer_already_in(self, appconfig, flag_clock):
        appconfig.serve(document(customer_accounts=customer_accounts(percent=10)))
        at_ten = {email for email in EMAILS if customer_accounts_enabled(email)}
        flag_clock.advance(MAX_AGE)
        appconfig.serve(document(customer_accounts=customer_accounts(percent=50)))

        at_fifty = {email for email in EMAILS if customer_accounts_enabled(email)}

        assert at_ten < at_fifty
        assert 0.45 <= len(at_fifty) / len(EMAILS) <= 0.55


class TestAllowLists:
    def test_an_allow_listed_email_is_on_while_everyone_else_is_off(self, appconfig):
        appconfig.serve(document(customer_accounts=customer_accounts(emails=["jo@example.com"])))

        assert customer_accounts_enabled("jo@example.com")
        assert not customer_accounts_enabled("sam@example.com")

    def test_everyone_at_an_allow_listed_domain_is_on(self, appconfig):
        appconfig.serve(document(customer_accounts=customer_accounts(domains=["reactfast.co.uk"])))

        assert customer_accounts_enabled("trainer@reactfast.co.uk")
        assert customer_accounts_enabled("office@reactfast.co.uk")
        assert not customer_accounts_enabled("trainer@reactfast.com")

    def test_allow_lists_add_to_the_percentage(self, appconfig):
        outside = next(email for email in EMAILS if rollout_bucket(email) >= 10)
        appconfig.serve(document(customer_accounts=customer_accounts(percent=10, emails=[outside])))

        assert customer_accounts_enabled(outside)


class TestSafeValues:
    def test_appconfig_failing_gives_every_flag_its_safe_value(self, appconfig, captured_logs):
        appconfig.fail(502, "InternalServerException")

        assert current_values() == SAFE_VALUES
        [warning] = warnings_logged(captured_logs)
        assert warning["message"] == "feature flags unavailable; using safe values"
        assert "InternalServerException" in warning["reason"]

    def test_access_denied_gives_safe_values_and_says_so(self, appconfig, captured_logs):
        appconfig.fail(502, "AccessDeniedException: not authorized to GetLatestConfiguration")

        assert current_values() == SAFE_VALUES
        [warning] = warnings_logged(captured_logs)
        assert warning["reason"].startswith("access denied")

    @pytest.mark.parametrize(
        ("name", "broken"),
        [
            ("not JSON", "{customer_accounts: on"),
            ("not flags", json.dumps(["jo@example.com"])),
            (
                "a default that is not a boolean",
                json.dumps(
                    document(
                        customer_accounts=customer_accounts(emails=["jo@example.com"]),
                        backfill={"default": "yes"},
                    )
                ),
            ),
            (
                "a percentage beyond the buckets",
                json.dumps(
                    document(
                        customer_accounts={
                            "default": False,
                            "rules": {
                                "percentage rollout": {
                                    "when_match": True,
                                    "conditions": [
                                        {
                                            "action": "MODULO_RANGE",
                                            "key": "bucket",
                                            "value": {"BASE": 100, "START": 0, "END": 100},
                                        }
                                    ],
                                }
                            },
                        }
                    )
                ),
            ),
            (
                "a flag missing",
                json.dumps({"customer_accounts": {"default": True}, "backfill": {"default": True}}),
            ),
        ],
    )
    def test_an_invalid_document_gives_every_flag_its_safe_value(
        self, appconfig, captured_logs, name, broken
    ):
        appconfig.serve(broken)

        assert current_values() == SAFE_VALUES
        assert len(warnings_logged(captured_logs)) == 1
        assert "jo@example.com" not in captured_logs.getvalue()

    def test_the_warning_is_logged_once_per_cache_period_and_the_agent_asked_once(
        self, appconfig, flag_clock, captured_logs
    ):
        appconfig.fail()
        for _ in range(50):
            customer_accounts_enabled("sam@example.com")
        flag_clock.advance(MAX_AGE - 0.1)
        for _ in range(50):
            customer_accounts_enabled("sam@example.com")
        assert len(warnings_logged(captured_logs)) == 1
        assert appconfig.requests == 1

        flag_clock.advance(0.1)
        customer_accounts_enabled("sam@example.com")

        assert len(warnings_logged(captured_logs)) == 2
        assert appconfig.requests == 2

    def test_flags_recover_at_the_first_fetch_after_appconfig_returns(
        self, appconfig, flag_clock, captured_logs
    ):
        appconfig.serve(document(customer_accounts={"default": True}))
        assert is_enabled(CUSTOMER_ACCOUNTS)
        flag_clock.advance(MAX_AGE)
        appconfig.fail()
        assert not is_enabled(CUSTOMER_ACCOUNTS)
        flag_clock.advance(MAX_AGE)
        appconfig.serve(document(customer_accounts={"default": True}))

        assert is_enabled(CUSTOMER_ACCOUNTS)
        assert '"message":"feature flags available again"' in captured_logs.getvalue()


class TestCacheMaxAge:
    def test_a_changed_document_is_picked_up_only_after_the_max_age(self, appconfig, flag_clock):
        appconfig.serve(document(backfill={"default": False}))
        assert not is_enabled(BACKFILL)
        appconfig.serve(document(backfill={"default": True}))

        flag_clock.advance(MAX_AGE - 0.1)
        before = is_enabled(BACKFILL)
        flag_clock.advance(0.1)
        after = is_enabled(BACKFILL)

        assert (before, after) == (False, True)
        assert appconfig.requests == 2


@pytest.fixture
def agent_not_running(monkeypatch, flag_clock):
    """The agent's address with nothing listening (the extension failed to start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("APPCONFIG_AGENT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("RFT_FLAGS_FILE", raising=False)
    for name, value in APPCONFIG_ENVIRONMENT_VARIABLES.items():
        monkeypatch.setenv(name, value)
    reset_flag_caches()
    yield
    reset_flag_caches()


def test_an_agent_that_is_not_running_gives_safe_values_and_one_warning(
    agent_not_running, captured_logs
):
    values = [current_values() for _ in range(3)]

    assert values == [SAFE_VALUES] * 3
    [warning] = warnings_logged(captured_logs)
    assert "the AppConfig agent at 127.0.0.1" in warning["reason"]
    assert "not reachable" in warning["reason"]


def test_reading_flags_never_imports_boto3_or_botocore_clients(appconfig):
    """The agent is plain HTTP: evaluating a flag loads no AWS SDK (a fresh interpreter)."""
    appconfig.serve(document(customer_accounts={"default": True}))
    script = (
        "import sys\n"
        "from rft_common.aws.flags import CUSTOMER_ACCOUNTS, is_enabled\n"
        "assert is_enabled(CUSTOMER_ACCOUNTS)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('boto3', 'botocore.'))))\n"
    )

    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout

    assert loaded.strip() == "[]"
