"""Every call this system makes to Stripe, and the only module that imports ``stripe``.

The SDK is imported on first use, so functions and paths that never talk to Stripe
never load it. Keys come from Secrets Manager through ``rft_common.aws.secrets``
(``STRIPE_SECRET_KEY_ARN``, ``STRIPE_WEBHOOK_SECRET_ARN``); the local stack and the
tests set the keys themselves (``STRIPE_SECRET_KEY``, ``STRIPE_WEBHOOK_SECRET``) and
point the SDK at localstripe with ``STRIPE_API_BASE``.

Failures of Stripe itself (unreachable, 5xx, rate limited, a rejected key) become
``PaymentProviderUnavailable`` (502). Nothing here logs a client secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rft_common.core.errors import BadSignature, PaymentProviderUnavailable
from rft_common.core.settings import get_settings

if TYPE_CHECKING:
    from stripe import StripeClient

CURRENCY = "gbp"
NETWORK_RETRIES = 2
"""The SDK retries connection errors and 409/429/5xx answers, with Idempotency-Keys."""
SIGNATURE_TOLERANCE_SECONDS = 300
"""Stripe's default: an event signed longer ago than this is refused (replay defence)."""


@dataclass(frozen=True)
class PaymentIntent:
    """The fields of a Stripe PaymentIntent this system reads."""

    id: str
    status: str
    amount: int
    """In pence."""
    currency: str
    metadata: dict[str, str]
    client_secret: str | None = None

    @classmethod
    def from_stripe(cls, data: dict[str, Any]) -> PaymentIntent:
        amount = data.get("amount")
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        return cls(
            id=str(data["id"]),
            status=str(data.get("status")),
            amount=amount if isinstance(amount, int) else 0,
            currency=str(data.get("currency") or "").lower(),
            metadata={str(k): str(v) for k, v in metadata.items()},
            client_secret=data.get("client_secret"),
        )


def load_sdk() -> None:
    """Import Stripe's SDK, as the first call to Stripe would: a SnapStart warm-up step
    (``rft_common.core.snapstart.warm``) for the functions that call Stripe."""
    import stripe  # noqa: F401


def _secret_key() -> str:
    settings = get_settings()
    if settings.stripe_secret_key_arn:
        from rft_common.aws.secrets import secret_string

        return secret_string(settings.stripe_secret_key_arn)
    if settings.stripe_secret_key:
        return settings.stripe_secret_key
    raise PaymentProviderUnavailable("payments are not configured (no Stripe key)")


def webhook_secret() -> str:
    settings = get_settings()
    if settings.stripe_webhook_secret_arn:
        from rft_common.aws.secrets import secret_string

        return secret_string(settings.stripe_webhook_secret_arn)
    if settings.stripe_webhook_secret:
        return settings.stripe_webhook_secret
    raise PaymentProviderUnavailable("the Stripe webhook is not configured (no signing secret)")


@lru_cache(maxsize=2)
def _client(api_key: str, api_base: str | None) -> StripeClient:
    """One client per key: a rotated key (``secret_string`` re-reads it) gets a new one."""
    import stripe

    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=NETWORK_RETRIES,
    )


def client() -> StripeClient:
    return _client(_secret_key(), get_settings().stripe_api_base)


def _provider_error(error: Exception) -> PaymentProviderUnavailable:
    return PaymentProviderUnavailable(
        f"the payment provider failed ({type(error).__name__}); try again shortly"
    )


def create_payment_intent(
    amount_pence: int, metadata: dict[str, str], *, idempotency_key: str
) -> PaymentIntent:
    """A GBP PaymentIntent; Stripe replays the first for a repeated ``idempotency_key``."""
    import stripe

    try:
        created = client().v1.payment_intents.create(
            params={"amount": amount_pence, "currency": CURRENCY, "metadata": metadata},
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _provider_error(error) from None
    return PaymentIntent.from_stripe(created.to_dict())


def retrieve_payment_intent(intent_id: str) -> PaymentIntent | None:
    """The intent as Stripe holds it now, or ``None`` if Stripe knows no such intent."""
    import stripe

    try:
        found = client().v1.payment_intents.retrieve(intent_id)
    except stripe.InvalidRequestError as error:
        if error.http_status in (400, 404):
            return None
        raise _provider_error(error) from None
    except stripe.StripeError as error:
        raise _provider_error(error) from None
    return PaymentIntent.from_stripe(found.to_dict())


def verified_event(payload: str, signature_header: str | None) -> dict[str, Any]:
    """The event in ``payload`` if ``Stripe-Signature`` proves Stripe sent it, else
    ``BadSignature``. Stripe's scheme: ``t=<unix time>,v1=<hex HMAC-SHA256 of
    "<t>.<payload>" with the endpoint's secret>``, within the tolerance."""
    import stripe

    if not signature_header:
        raise BadSignature("no Stripe-Signature header", field="Stripe-Signature")
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature_header, webhook_secret(), SIGNATURE_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError:
        raise BadSignature(
            "the Stripe-Signature does not match this payload", field="Stripe-Signature"
        ) from None
    try:
        event = json.loads(payload)
    except ValueError:
        raise BadSignature("the signed payload is not JSON", field="body") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise BadSignature("the signed payload is not a Stripe event", field="body")
    return event
