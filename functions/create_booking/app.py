"""The booking site's checkout: GET /api/courses/sessions/available,
POST /api/bookings/create-payment-intent, POST /api/bookings; and GET /api/health.

The routes are in ``rft_common.routes.checkout`` and ``rft_common.routes.bookings`` so
the API document can include them.
"""

from rft_common.api import api_function
from rft_common.routes import bookings, checkout

app, lambda_handler = api_function(checkout.router, bookings.router)
