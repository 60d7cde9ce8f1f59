"""Retention: erase customers with no booking for RETENTION_YEARS (README "Data protection").

Invoked by the stack's EventBridge Scheduler schedule (nightly, disabled by default).
The event may be ``{"dry_run": true}`` to count without erasing. Each batch of
customers is its own transaction, so a run cut short by the timeout keeps what it
committed and the next night carries on.
"""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.core.observability import logger, metrics
from rft_common.core.settings import get_settings
from rft_common.privacy.service import run_retention


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    dry_run = (event or {}).get("dry_run") is True
    report = run_retention(years=get_settings().retention_years, dry_run=dry_run)
    logger.info("retention run", extra=report.as_dict())
    if not dry_run:
        metrics.add_metric(name="CustomersErased", unit=MetricUnit.Count, value=report.customers)
    return report.as_dict()
