"""POST /api/stripe/webhook: Stripe's payment events (signature-verified, no authoriser).

The route is in ``rft_common.routes.stripe_webhook`` so the API document can include it.
"""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.api import create_resolver
from rft_common.observability import logger, metrics
from rft_common.routes.stripe_webhook import router

app = create_resolver()
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
