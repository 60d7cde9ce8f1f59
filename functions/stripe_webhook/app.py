"""POST /api/stripe/webhook: Stripe's payment events (signature-verified, no authoriser).

The route is in ``rft_common.checkout.webhook_routes`` so the API document can include it.
"""

from rft_common.checkout.stripe_api import load_sdk as load_stripe_sdk
from rft_common.checkout.webhook_routes import router
from rft_common.core import snapstart
from rft_common.http.api import api_function

snapstart.warm(load_stripe_sdk)  # it verifies each event's signature with Stripe's SDK

app, lambda_handler = api_function(router)
