"""Sending to SQS ten messages per call (``SendMessageBatch``), saying which failed.

boto3 is imported on first use: the Lambda runtime ships it, and only the paths that
send (the backfill worker while paused, the operators' CLI) need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SEND_BATCH_LIMIT = 10
"""SQS accepts at most ten entries per ``SendMessageBatch``."""


def sqs_client() -> Any:
    import boto3

    return boto3.client("sqs")


def send_messages(
    queue_url: str, bodies: Sequence[str], *, delay_seconds: int = 0, client: Any = None
) -> list[int]:
    """Send every body; return the indexes of the ones SQS did not accept."""
    client = client or sqs_client()
    failed: list[int] = []
    for start in range(0, len(bodies), SEND_BATCH_LIMIT):
        entries = [
            {"Id": str(index), "MessageBody": bodies[index], "DelaySeconds": delay_seconds}
            for index in range(start, min(start + SEND_BATCH_LIMIT, len(bodies)))
        ]
        response = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        failed += [int(entry["Id"]) for entry in response.get("Failed", [])]
    return failed
