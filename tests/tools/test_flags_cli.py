"""``rft flags show | set``: editing the local flag document the functions read."""

from __future__ import annotations

import json

import pytest

from rft_common.aws.flags import (
    ADMIN_USERS_API,
    BACKFILL,
    CUSTOMER_ACCOUNTS,
    customer_accounts_enabled,
    is_enabled,
)
from rft_common.core.emails import rollout_bucket
from rft_tools.checks import flag_document
from rft_tools.cli.main import main
from tests.conftest import load_safe_default_flags, reset_flag_caches

MAX_AGE = 5


@pytest.fixture
def flags_file(tmp_path, monkeypatch, flag_clock):
    """The safe defaults in a file that both ``rft flags`` and the app read."""
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(load_safe_default_flags()))
    monkeypatch.setenv("RFT_FLAGS_FILE", str(path))
    monkeypatch.setenv("FLAGS_MAX_AGE_SECONDS", str(MAX_AGE))
    reset_flag_caches()
    yield path
    reset_flag_caches()


def rft_flags(capsys, *arguments: str) -> tuple[int, dict | None, str]:
    status = main(["flags", *arguments])
    out, err = capsys.readouterr()
    return status, json.loads(out) if out else None, err


def settings(shown: dict, name: str) -> dict:
    """A flag's state as ``rft flags set`` words it, without the explanations."""
    return {k: v for k, v in shown["flags"][name].items() if k in ("default", "percent", "allow")}


def stored(path) -> dict:
    return json.loads(path.read_text())


class TestShow:
    def test_show_describes_every_flag_of_the_file(self, flags_file, capsys):
        status, shown, _ = rft_flags(capsys, "show")

        assert status == 0
        assert shown == {
            "file": str(flags_file),
            "flags": {
                CUSTOMER_ACCOUNTS: {
                    "default": "off",
                    "means": "legacy flow: a booking is stored without a customer",
                    "on": "bookings find or create their customer and link to them",
                    "off": "legacy flow: a booking is stored without a customer",
                    "safe_value": "off",
                    "percent": 0,
                    "allow": [],
                },
                ADMIN_USERS_API: {
                    "default": "on",
                    "means": "the admin routes answer",
                    "on": "the admin routes answer",
                    "off": "kill switch: the admin routes (not sign-in) answer 503",
                    "safe_value": "on",
                },
                BACKFILL: {
                    "default": "off",
                    "means": "backfill paused: its batches wait in the queue",
                    "on": "the backfill worker links historical bookings",
                    "off": "backfill paused: its batches wait in the queue",
                    "safe_value": "off",
                },
            },
        }

    def test_show_explains_a_partial_rollout_of_customer_accounts(self, flags_file, capsys):
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--allow", "reactfast.co.uk")
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--percent", "10")

        _, shown, _ = rft_flags(capsys, "show")

        assert shown["flags"][CUSTOMER_ACCOUNTS]["means"] == (
            "on for 10% of customers and the allow-listed reactfast.co.uk; legacy flow for the rest"
        )

    def test_show_reports_an_invalid_file_and_that_safe_values_apply(self, flags_file, capsys):
        flags_file.write_text('{"customer_accounts": {"default": true}}')

        status, shown, err = rft_flags(capsys, "show")

        assert status == 1 and shown is None
        assert "backfill" in err and "safe values" in err

    def test_without_rft_flags_file_the_local_stacks_file_is_created_from_the_local_defaults(
        self, tmp_path, monkeypatch, capsys
    ):
        local = tmp_path / ".local" / "flags.json"
        monkeypatch.delenv("RFT_FLAGS_FILE", raising=False)
        monkeypatch.setattr(flag_document, "LOCAL_FLAGS_FILE", local)

        status, shown, _ = rft_flags(capsys, "show")

        assert status == 0 and shown["file"] == str(local)
        assert stored(local) == json.loads(flag_document.LOCAL_DEFAULTS_FILE.read_text())


class TestOnAndOff:
    @pytest.mark.parametrize(("name", "state"), [(BACKFILL, "on"), (ADMIN_USERS_API, "off")])
    def test_a_flag_switched_by_the_cli_is_what_the_app_reads(
        self, flags_file, capsys, name, state
    ):
        status, shown, _ = rft_flags(capsys, "set", name, state)

        assert status == 0 and settings(shown, name) == {"default": state}
        assert is_enabled(name) is (state == "on")

    def test_off_turns_customer_accounts_off_for_everyone_allow_lists_and_percentage_included(
        self, flags_file, capsys
    ):
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--percent", "50")
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--allow", "reactfast.co.uk")

        status, _, _ = rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "off")

        assert status == 0
        assert stored(flags_file)[CUSTOMER_ACCOUNTS] == {"default": False}

    def test_the_running_app_sees_a_change_within_the_cache_max_age(
        self, flags_file, capsys, flag_clock
    ):
        assert not is_enabled(BACKFILL)
        rft_flags(capsys, "set", BACKFILL, "on")

        flag_clock.advance(MAX_AGE - 0.1)
        before = is_enabled(BACKFILL)
        flag_clock.advance(0.1)
        after = is_enabled(BACKFILL)

        assert (before, after) == (False, True)


class TestPercentage:
    def test_percent_sets_a_rollout_over_the_first_buckets(self, flags_file, capsys):
        status, shown, _ = rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--percent", "10")

        assert status == 0 and shown["flags"][CUSTOMER_ACCOUNTS]["percent"] == 10
        rule = stored(flags_file)[CUSTOMER_ACCOUNTS]["rules"]["percentage rollout"]
        assert rule["conditions"] == [
            {
                "action": "MODULO_RANGE",
                "key": "bucket",
                "value": {"BASE": 100, "START": 0, "END": 9},
            }
        ]

    def test_the_app_turns_on_exactly_the_customers_in_the_percentage(self, flags_file, capsys):
        emails = [f"customer{number}@example.com" for number in range(1_000)]
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--percent", "25")

        enabled = {email for email in emails if customer_accounts_enabled(email)}

        assert enabled == {email for email in emails if rollout_bucket(email) < 25}

    def test_percent_zero_removes_the_rollout(self, flags_file, capsys):
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--percent", "10")

        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--percent", "0")

        assert stored(flags_file)[CUSTOMER_ACCOUNTS] == {"default": False}

    def test_a_percentage_after_on_means_that_percentage_not_everyone(self, flags_file, capsys):
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "on")

        _, shown, _ = rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--percent", "50")

        assert settings(shown, CUSTOMER_ACCOUNTS) == {"default": "off", "percent": 50, "allow": []}

    @pytest.mark.parametrize("percent", ["-1", "101"])
    def test_a_percentage_outside_0_to_100_is_refused_and_nothing_written(
        self, flags_file, capsys, percent
    ):
        before = flags_file.read_text()

        status, _, err = rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--percent", percent)

        assert status == 1 and "0..100" in err
        assert flags_file.read_text() == before

    def test_a_percentage_for_a_switch_flag_is_refused_and_nothing_written(
        self, flags_file, capsys
    ):
        before = flags_file.read_text()

        status, _, err = rft_flags(capsys, "set", BACKFILL, "--percent", "10")

        assert status == 1 and "customer_accounts only" in err
        assert flags_file.read_text() == before


class TestAllowLists:
    def test_an_allowed_email_is_stored_normalised_and_the_app_lets_it_in(self, flags_file, capsys):
        status, shown, _ = rft_flags(
            capsys, "set", CUSTOMER_ACCOUNTS, "--allow", " Jo@Example.COM "
        )

        assert status == 0 and shown["flags"][CUSTOMER_ACCOUNTS]["allow"] == ["jo@example.com"]
        assert customer_accounts_enabled("jo@example.com")
        assert not customer_accounts_enabled("sam@example.com")

    def test_an_allowed_domain_lets_in_everyone_there(self, flags_file, capsys):
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--allow", "@ReactFast.co.uk")

        assert stored(flags_file)[CUSTOMER_ACCOUNTS]["rules"]["allow-listed domains"]["conditions"][
            0
        ]["value"] == ["reactfast.co.uk"]
        assert customer_accounts_enabled("trainer@reactfast.co.uk")

    def test_allowing_twice_lists_once(self, flags_file, capsys):
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--allow", "jo@example.com")

        _, shown, _ = rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--allow", "JO@example.com")

        assert shown["flags"][CUSTOMER_ACCOUNTS]["allow"] == ["jo@example.com"]

    def test_allow_lists_and_percentage_live_side_by_side(self, flags_file, capsys):
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--percent", "10")
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--allow", "jo@example.com")

        _, shown, _ = rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--allow", "reactfast.co.uk")

        assert settings(shown, CUSTOMER_ACCOUNTS) == {
            "default": "off",
            "percent": 10,
            "allow": ["jo@example.com", "reactfast.co.uk"],
        }

    def test_disallow_removes_an_entry_and_the_rule_once_empty(self, flags_file, capsys):
        rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--allow", "jo@example.com")

        status, _, _ = rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--disallow", "Jo@Example.com")

        assert status == 0
        assert stored(flags_file)[CUSTOMER_ACCOUNTS] == {"default": False}
        assert not customer_accounts_enabled("jo@example.com")

    def test_disallowing_an_entry_not_listed_is_refused(self, flags_file, capsys):
        status, _, err = rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--disallow", "jo@example.com")

        assert status == 1 and "not allow-listed" in err

    def test_something_neither_email_nor_domain_is_refused_and_nothing_written(
        self, flags_file, capsys
    ):
        before = flags_file.read_text()

        status, _, err = rft_flags(capsys, "set", CUSTOMER_ACCOUNTS, "--allow", "not a domain")

        assert status == 1 and "neither an email nor a domain" in err
        assert flags_file.read_text() == before


class TestWriting:
    def test_the_file_is_replaced_whole_so_a_reader_never_sees_half_a_document(
        self, flags_file, capsys
    ):
        with flags_file.open() as open_before:
            rft_flags(capsys, "set", BACKFILL, "on")
            seen_by_earlier_reader = json.loads(open_before.read())

        assert seen_by_earlier_reader == load_safe_default_flags()
        assert stored(flags_file)[BACKFILL] == {"default": True}
        assert [path.name for path in flags_file.parent.iterdir()] == ["flags.json"]

    def test_an_invalid_file_is_not_edited(self, flags_file, capsys):
        broken = '{"customer_accounts": {"default": "yes"}}'
        flags_file.write_text(broken)

        status, _, err = rft_flags(capsys, "set", BACKFILL, "on")

        assert status == 1 and "invalid flag document" in err
        assert flags_file.read_text() == broken

    def test_a_missing_file_is_reported(self, tmp_path, monkeypatch, capsys):
        monkeypatch.setenv("RFT_FLAGS_FILE", str(tmp_path / "missing.json"))

        status, _, err = rft_flags(capsys, "set", BACKFILL, "on")

        assert status == 1 and "no flag document at" in err

    def test_save_refuses_an_invalid_document_and_leaves_the_file_as_it_was(self, flags_file):
        before = flags_file.read_text()
        invalid = load_safe_default_flags() | {"backfill": {"default": "paused"}}

        with pytest.raises(flag_document.FlagDocumentError, match="backfill"):
            flag_document.save(flags_file, invalid)

        assert flags_file.read_text() == before
