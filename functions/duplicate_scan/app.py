"""Duplicate scan: every 5 minutes, find the duplicate candidates of the customers
written since (queued in ``duplicate_scan_queue`` by a trigger, migration 0009).

Checkouts, edits and backfill batches only queue; this scores. Runs until the queue
is empty or another chunk might outlast the invocation (a chunk may take up to the
socket timeout); the next run continues. A run with nothing queued says nothing (no
log line, no metric): most runs are, every five minutes.
"""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.core.observability import logger, metrics
from rft_common.db.postgres import socket_timeout_seconds
from rft_common.users.duplicates import scan_queued


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    budget_seconds = context.get_remaining_time_in_millis() / 1000 - socket_timeout_seconds()
    scanned, remaining = scan_queued(budget_seconds=budget_seconds)
    if scanned == remaining == 0:
        return {"scanned": 0, "stillQueued": 0}
    logger.info("duplicate scan", extra={"scanned": scanned, "still_queued": remaining})
    metrics.add_metric(name="DuplicateScanCustomers", unit=MetricUnit.Count, value=scanned)
    return {"scanned": scanned, "stillQueued": remaining}
