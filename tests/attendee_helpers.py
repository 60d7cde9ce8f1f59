"""A completed five-place group booking with certificates, made through the real checkout
and Stripe's webhook (localstripe), for the tests of attendees in the admin detail,
subject access, erasure, merges and retention: the ``completed_group`` fixture (a plugin
of ``tests/conftest.py``)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import text

from rft_common.certificates.service import issue_certificates
from tests.admin_helpers import ADMIN_EMAIL, ADMIN_ID
from tests.payment_helpers import webhook_event


def completed_group_booking(
    db: Any,
    checkout_function: ModuleType,
    webhook_function: ModuleType,
    lambda_context: Any,
    stripe_keys: str,
) -> dict[str, int]:
    """Sam Patel books five places (Ann, Bob and Cat with emails, Dan by name only); the
    booking is completed and its certificates issued; ``{email: user id}`` of the
    customers. The signed-in admin of ``tests.admin_helpers`` is stored too."""
    # Imported here: this module is a plugin, loaded before test modules are collected.
    from tests.checkout.test_payments import call, rows, succeeded_event
    from tests.customers.test_attendees import group_intent

    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, email, name, password_hash, role) "
                "VALUES (:id, :email, 'Admin', 'x', 'admin')"
            ),
            {"id": ADMIN_ID, "email": ADMIN_EMAIL},
        )
        connection.execute(text("SELECT setval('users_id_seq', 100)"))
    _, paid = group_intent(db, checkout_function, lambda_context, stripe_keys)
    event = webhook_event(succeeded_event(stripe_keys, paid))
    assert call(webhook_function, lambda_context, event)[1]["outcome"] == "booked"
    with db.begin() as connection:
        connection.execute(text("UPDATE bookings SET status = 'completed'"))
    assert issue_certificates().issued == 5
    return {u.email: u.id for u in rows(db, "SELECT id, email FROM users WHERE role = 'customer'")}


@pytest.fixture(scope="module")
def group_booking_functions(request: pytest.FixtureRequest) -> tuple[ModuleType, ModuleType]:
    """The checkout and Stripe webhook functions, loaded for the requesting test module
    alone (as its own Lambda environments)."""
    from tests.conftest import load_function

    instance = request.module.__name__.rsplit(".", 1)[-1]
    return load_function("create_booking", instance), load_function("stripe_webhook", instance)


@pytest.fixture
def completed_group(
    db: Any,
    group_booking_functions: tuple[ModuleType, ModuleType],
    lambda_context: Any,
    stripe_keys: str,
) -> dict[str, int]:
    """``completed_group_booking``: ``{email: user id}`` of its customers."""
    checkout_function, webhook_function = group_booking_functions
    return completed_group_booking(
        db, checkout_function, webhook_function, lambda_context, stripe_keys
    )
