"""Logs name a customer by a keyed fingerprint: without the key, nobody holding a list
of addresses can match them against the logs (a plain SHA-256 allowed exactly that)."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from rft_common.aws import fingerprints
from rft_common.core import settings
from tests.checkout.test_payments import create_intent, intent_body, new_session
from tests.conftest import load_function

EMAIL = "sam.patel@example.com"
KEY = "test-only-log-fingerprint-key-0123456789abcdef"


@pytest.fixture
def fingerprint_key(monkeypatch):
    monkeypatch.setenv("LOG_FINGERPRINT_KEY", KEY)
    settings.get_settings.cache_clear()
    yield KEY
    monkeypatch.delenv("LOG_FINGERPRINT_KEY")
    settings.get_settings.cache_clear()


def test_the_fingerprint_is_an_hmac_under_the_configured_key(fingerprint_key):
    expected = hmac.new(KEY.encode(), EMAIL.encode(), hashlib.sha256).hexdigest()[:16]

    assert fingerprints.email_log_fingerprint(EMAIL) == expected
    assert expected != hashlib.sha256(EMAIL.encode()).hexdigest()[:16]


def test_without_a_configured_key_one_is_generated_and_kept_for_the_process(monkeypatch):
    monkeypatch.delenv("LOG_FINGERPRINT_KEY", raising=False)
    settings.get_settings.cache_clear()

    first = fingerprints.email_log_fingerprint(EMAIL)

    assert first == fingerprints.email_log_fingerprint(EMAIL)
    assert first != hashlib.sha256(EMAIL.encode()).hexdigest()[:16]


@pytest.mark.usefixtures("stripe_keys", "customer_accounts_on")
def test_the_checkouts_logs_carry_the_keyed_fingerprint_not_the_plain_hash(
    db, fingerprint_key, lambda_context, caplog
):
    checkout = load_function("create_booking", "payments")
    caplog.set_level(logging.INFO)

    status, _ = create_intent(checkout, lambda_context, intent_body(new_session(db)))

    assert status == 200
    logged = [getattr(record, "email_fingerprint", None) for record in caplog.records]
    assert fingerprints.email_log_fingerprint(EMAIL) in logged
    assert hashlib.sha256(EMAIL.encode()).hexdigest()[:16] not in logged
