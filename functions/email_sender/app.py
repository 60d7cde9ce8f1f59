"""Email sender: every minute, send what the outbox holds (README "Email").

Drains until nothing is due or the invocation nears its end; concurrent runs take
different messages (``FOR UPDATE SKIP LOCKED``). ``EmailsDead`` (alarmed) counts
messages given up on; ``EmailsSent``, ``EmailsRetried`` and ``EmailsSuppressed`` the rest.
A run that found nothing due says nothing (no log line, no metric; the alarm treats
missing data as not breaching): most runs do, every minute.
"""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.core.observability import logger, metrics
from rft_common.db.postgres import socket_timeout_seconds
from rft_common.email.outbox import drain

SECONDS_PER_BATCH = 10
"""Headroom for one more batch (50 sends at SES's usual 0.1 s) before the timeout."""


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    headroom_ms = 1000 * (socket_timeout_seconds() + SECONDS_PER_BATCH)
    result = drain(keep_going=lambda: context.get_remaining_time_in_millis() > headroom_ms)
    if not any(vars(result).values()):
        return vars(result)
    for name, value in (
        ("EmailsSent", result.sent),
        ("EmailsRetried", result.failed),
        ("EmailsDead", result.dead),
        ("EmailsSuppressed", result.suppressed),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("email outbox drained", extra=vars(result))
    return vars(result)
