"""POST /api/stripe/webhook: Stripe's payment events (signature-verified, no authoriser).

The route is in ``rft_common.routes.stripe_webhook`` so the API document can include it.
"""

from rft_common.api import api_function
from rft_common.routes.stripe_webhook import router

app, lambda_handler = api_function(router)
