"""Backfill worker: each SQS record is one batch of bookings to link to customers.

Records fail alone (``ReportBatchItemFailures``): a failed batch goes back to the
queue and, after the queue's ``maxReceiveCount`` receives, to the dead-letter queue.

While the ``backfill`` flag is off (paused), nothing is processed: each message is
sent again to the queue with a delay and the received copy is deleted, so the pause
costs no receive count and sends nothing to the dead-letter queue. Processing
resumes by itself once the flag is on again.
"""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json, ValidationError

from rft_common.aws import flags
from rft_common.aws.queues import send_messages
from rft_common.backfill.service import BackfillMessage, process_batch
from rft_common.core import snapstart
from rft_common.core.emails import load_email_validator
from rft_common.core.observability import logger, metrics
from rft_common.db.postgres import sqlstate

snapstart.warm(load_email_validator)  # its requests check email addresses

PAUSE_DELAY_SECONDS = int(os.environ.get("BACKFILL_PAUSE_DELAY_SECONDS", "60"))
"""How long a message deferred by the pause waits before it is received again."""


class BackfillRecord(SqsRecordModel):
    body: Json[BackfillMessage]


# A batch whose records all fail is answered like any other: raising would put every
# record's error text (which can quote the message body) into the invocation error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    """Validate and process one batch; raising fails this record only."""
    delivery = {
        "message_id": record.message_id,
        "receive_count": int(record.attributes.approximate_receive_count),
    }
    try:
        message = BackfillRecord.model_validate(record.raw_event).body
    except ValidationError as error:
        logger.error(
            "backfill message rejected: not a valid batch message",
            extra=delivery
            | {
                "errors": [
                    {"loc": issue["loc"], "type": issue["type"], "msg": issue["msg"]}
                    for issue in error.errors(include_input=False, include_url=False)
                ]
            },
        )
        raise
    try:
        result = process_batch(message)
    except Exception as error:
        # The type and SQLSTATE only: a database message can quote row values.
        logger.error(
            "backfill batch failed",
            extra=delivery
            | {
                "batch_id": message.batch_id,
                "error": type(error).__name__,
                "sqlstate": sqlstate(error),
            },
        )
        raise
    logger.info(
        "backfill batch done",
        extra=delivery
        | {
            "batch_id": result.batch_id,
            "version": message.version,
            "range_first": message.range[0],
            "range_last": message.range[1],
            "bookings_linked": result.bookings_linked,
            "customers_created": result.customers_created,
            "unlinkable": result.unlinkable,
            "duration_ms": result.duration_ms,
        },
    )
    metrics.add_metric(name="BookingsLinked", unit=MetricUnit.Count, value=result.bookings_linked)
    metrics.add_metric(
        name="CustomersCreated", unit=MetricUnit.Count, value=result.customers_created
    )
    metrics.add_metric(name="Unlinkable", unit=MetricUnit.Count, value=result.unlinkable)
    metrics.add_metric(name="BatchDuration", unit=MetricUnit.Milliseconds, value=result.duration_ms)


def defer_while_paused(event: dict) -> dict:
    """Put every record back on the queue as a new, delayed message.

    A record whose copy SQS did not accept is reported as failed, so it stays on the
    queue: nothing is lost either way.
    """
    records = event["Records"]
    failed = send_messages(
        os.environ["BACKFILL_QUEUE_URL"],
        [record["body"] for record in records],
        delay_seconds=PAUSE_DELAY_SECONDS,
    )
    logger.info(
        "backfill paused: messages deferred",
        extra={"deferred": len(records) - len(failed), "not_deferred": len(failed)},
    )
    metrics.add_metric(
        name="BatchesDeferred", unit=MetricUnit.Count, value=len(records) - len(failed)
    )
    return {"batchItemFailures": [{"itemIdentifier": records[i]["messageId"]} for i in failed]}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if not flags.is_enabled(flags.BACKFILL):
        return defer_while_paused(event)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
