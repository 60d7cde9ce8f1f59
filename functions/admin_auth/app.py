"""Staff sign-in for the admin dashboard: /api/admin/auth/login, /me, /refresh, /logout.

Routes are in ``rft_common.routes.admin_auth``; the logic in ``rft_common.staff``.
"""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.api import create_resolver
from rft_common.observability import logger, metrics
from rft_common.routes.admin_auth import router

app = create_resolver()
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
