"""The admin users API: /api/admin/users and below, and /api/admin/renewals; admins only.

Routes are in ``rft_common.routes``: ``admin_users``, ``admin_duplicates``,
``admin_privacy`` and ``admin_renewals``. ``admit`` (the flag, then the bearer token)
runs before the resolver, so a refused request never reaches parameter validation or a
route.
"""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.api import create_resolver, domain_error_response, proxy_result
from rft_common.errors import DomainError
from rft_common.observability import logger, metrics
from rft_common.routes import admin_duplicates, admin_payments, admin_privacy, admin_renewals
from rft_common.routes.admin_users import admit, router

app = create_resolver()
app.include_router(router)
app.include_router(admin_payments.router)
app.include_router(admin_duplicates.router)
app.include_router(admin_privacy.router)
app.include_router(admin_renewals.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    try:
        admitted = admit(event)
    except DomainError as refusal:
        logger.info("admin request refused", extra={"reason": refusal.message})
        metrics.add_metric(name="AdminRequestsRefused", unit=MetricUnit.Count, value=1)
        return proxy_result(domain_error_response(refusal))
    return app.resolve(admitted, context)
