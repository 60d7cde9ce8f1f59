"""The booking site's checkout: GET /api/courses/sessions/available,
POST /api/bookings/create-payment-intent, POST /api/bookings; and GET /api/health.

The routes are in ``rft_common.routes.checkout`` and ``rft_common.routes.bookings`` so
the API document can include them.
"""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.api import create_resolver
from rft_common.observability import logger, metrics
from rft_common.routes import bookings, checkout

app = create_resolver()
app.include_router(checkout.router)
app.include_router(bookings.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
