"""A completed five-place group booking with certificates, made through the real checkout
and Stripe's webhook (localstripe), for the tests of attendees in the admin detail,
subject access, erasure, merges and retention."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sqlalchemy import text

from rft_common.certificates.service import issue_certificates
from tests.admin_helpers import ADMIN_EMAIL, ADMIN_ID
from tests.checkout.test_payments import call, rows, succeeded_event
from tests.customers.test_attendees import group_intent
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
