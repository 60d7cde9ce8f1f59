"""The booking site's checkout: GET /api/courses/sessions/available,
POST /api/bookings/create-payment-intent, POST /api/bookings; GET /api/health; and the
emails' unsubscribe link, GET and POST /api/unsubscribe/{token} (public too).

The routes are in ``rft_common.checkout.routes``, ``rft_common.checkout.booking_routes`` and
``rft_common.consent.routes`` so the API document can include them.
"""

from rft_common.checkout import booking_routes as bookings
from rft_common.checkout import routes as checkout
from rft_common.checkout.stripe_api import load_sdk as load_stripe_sdk
from rft_common.consent import routes as unsubscribe
from rft_common.core import snapstart
from rft_common.core.emails import load_email_validator
from rft_common.http.api import api_function

snapstart.warm(load_email_validator)  # its requests check email addresses
snapstart.warm(load_stripe_sdk)  # a paid booking asks Stripe for its PaymentIntent

app, lambda_handler = api_function(checkout.router, bookings.router, unsubscribe.router)
