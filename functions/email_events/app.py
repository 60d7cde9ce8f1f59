"""SES bounce and complaint events (EventBridge, from the configuration set): the
addresses go on the suppression list, and nothing is sent to them again."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.core.observability import logger, metrics
from rft_common.email.suppression import handle_notification


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    suppressed = handle_notification(event)
    metrics.add_metric(name="EmailAddressesSuppressed", unit=MetricUnit.Count, value=suppressed)
    logger.info("ses event", extra={"detail_type": event.get("detail-type"), "named": suppressed})
    return {"suppressed": suppressed}
