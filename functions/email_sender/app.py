"""Email sender: every minute, send what the outbox holds (README "Email").

Drains until nothing is due, the invocation nears its end, or ``RUN_SECONDS`` have
passed: sends are paced to ``SES_SEND_RATE``, so a run ends within its minute and the
next minute's run does not add its own pace to it. Concurrent runs (a manual invoke)
take different messages (``FOR UPDATE SKIP LOCKED``). ``EmailsDead`` (alarmed) counts
messages given up on; ``EmailsSent``, ``EmailsRetried`` and ``EmailsSuppressed`` the rest.
A run that found nothing due says nothing (no log line, no metric; the alarm treats
missing data as not breaching): most runs do, every minute.
"""

import time

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.core.observability import logger, metrics
from rft_common.core.settings import get_settings
from rft_common.db.postgres import socket_timeout_seconds
from rft_common.email.outbox import BATCH_SIZE, drain

SECONDS_PER_BATCH = 10
"""Headroom for one more batch (50 sends at SES's usual 0.1 s) before the timeout."""
RUN_SECONDS = 45
"""No batch starts after this: with batches of at most ``PACED_BATCH_SECONDS`` of sends,
a run ends within the minute before the schedule's next one."""
PACED_BATCH_SECONDS = 5


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    headroom_ms = 1000 * (socket_timeout_seconds() + SECONDS_PER_BATCH)
    started = time.monotonic()
    result = drain(
        limit=max(1, min(BATCH_SIZE, int(get_settings().ses_send_rate * PACED_BATCH_SECONDS))),
        keep_going=lambda: (
            context.get_remaining_time_in_millis() > headroom_ms
            and time.monotonic() - started < RUN_SECONDS
        ),
    )
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
