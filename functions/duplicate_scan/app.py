"""Duplicate scan: every 5 minutes, find the duplicate candidates of the customers
written since (queued in ``duplicate_scan_queue`` by a trigger, migration 0009).

Checkouts, edits and backfill batches only queue; this scores. Runs until the queue
is empty or its time budget is spent; the next run continues.
"""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.admin.duplicates import scan_queued
from rft_common.observability import logger, metrics

BUDGET_SECONDS = float(os.environ.get("DUPLICATE_SCAN_BUDGET_SECONDS", "240"))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    scanned, remaining = scan_queued(budget_seconds=BUDGET_SECONDS)
    logger.info("duplicate scan", extra={"scanned": scanned, "still_queued": remaining})
    metrics.add_metric(name="DuplicateScanCustomers", unit=MetricUnit.Count, value=scanned)
    return {"scanned": scanned, "stillQueued": remaining}
