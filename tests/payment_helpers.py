"""The browser's and Stripe's side of a checkout, against localstripe: pay an intent
as Stripe.js would, and sign webhook events with Stripe's documented scheme."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from rft_tools.local.stripe import LOCAL_STRIPE_SECRET_KEY, LOCAL_STRIPE_WEBHOOK_SECRET
from tests.conftest import rest_event


def stripe_client(api_base: str) -> Any:
    import stripe

    return stripe.StripeClient(LOCAL_STRIPE_SECRET_KEY, base_addresses={"api": api_base})


def pay(api_base: str, intent_id: str) -> dict[str, Any]:
    """Confirm the intent with the test card 4242..., as the site's Stripe.js does.

    localstripe answers 500 to ``confirm`` with a payment method, so the method is
    attached with ``update`` first (toolchain.md)."""
    client = stripe_client(api_base)
    method = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        }
    )
    client.v1.payment_intents.update(intent_id, params={"payment_method": method.id})
    return client.v1.payment_intents.confirm(intent_id).to_dict()


def intent(api_base: str, intent_id: str) -> dict[str, Any]:
    return stripe_client(api_base).v1.payment_intents.retrieve(intent_id).to_dict()


def signature(
    payload: str, secret: str = LOCAL_STRIPE_WEBHOOK_SECRET, at: int | None = None
) -> str:
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def stripe_event(event_type: str, data_object: dict[str, Any], event_id: str | None = None) -> str:
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": data_object},
        }
    )


def webhook_event(payload: str, signature_header: str | None = None) -> dict[str, Any]:
    """The API Gateway event of Stripe posting ``payload`` (signed unless told otherwise)."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signature_header
        if signature_header is not None
        else signature(payload),
    }
    return rest_event("POST", "/api/stripe/webhook", payload, headers=headers)


def refund_event(intent_id: str, amount: int, refunded: int) -> str:
    charge = {
        "id": f"ch_{uuid.uuid4().hex[:14]}",
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded,
        "refunded": refunded == amount,
        "payment_intent": intent_id,
        "currency": "gbp",
    }
    return stripe_event("charge.refunded", charge)
