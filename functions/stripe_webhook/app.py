"""POST /api/stripe/webhook: Stripe's payment events (signature-verified, no authoriser).

The route is in ``rft_common.checkout.webhook_routes`` so the API document can include it.
"""

from rft_common.checkout.webhook_routes import router
from rft_common.http.api import api_function

app, lambda_handler = api_function(router)
