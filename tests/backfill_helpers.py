"""Legacy bookings and state snapshots for the backfill tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import Connection, Engine, text

from rft_common.backfill.service import (
    MAX_EMAIL_KEY,
    MIN_EMAIL_KEY,
    BookingRangeMessage,
    EmailKeyRangeMessage,
)
from rft_tools.cfn_template import load_template
from rft_tools.local.sqs import (
    LocalQueue,
    SqsPoller,
    create_queues,
    messages_on_queue,
    sqs_event_sources,
)
from tests.conftest import PROJECT_ROOT

TEMPLATE = load_template(PROJECT_ROOT / "template.yaml")
MAX_RECEIVE_COUNT = TEMPLATE["Resources"]["BackfillQueue"]["Properties"]["RedrivePolicy"][
    "maxReceiveCount"
]

INSERT_LEGACY_BOOKINGS = text("""
    INSERT INTO bookings (booking_reference, course_schedule_id, status, payment_status,
                          payment_amount, number_of_attendees, contact_details, created_at)
    SELECT 'RFT-TEST-' || (:offset + n), :session_id,
           coalesce(item ->> 'status', 'completed'),
           coalesce(item ->> 'payment_status', 'paid'),
           coalesce((item ->> 'amount')::numeric, 75.00), 1,
           item -> 'contact',
           timestamptz '2024-01-01' + n * interval '1 hour'
    FROM json_array_elements(CAST(:items AS json)) WITH ORDINALITY AS items(item, n)
    ORDER BY n
    RETURNING id
""")


def insert_legacy_bookings(
    connection: Connection, session_id: int, contacts: list[dict[str, Any] | None], **fields: Any
) -> list[int]:
    """Bookings as the legacy app stored them, one per contact document, ids in order.

    ``fields`` (status, payment_status, amount) apply to every booking.
    """
    offset = connection.execute(text("SELECT coalesce(max(id), 0) FROM bookings")).scalar_one()
    items = [{"contact": contact, **fields} for contact in contacts]
    parameters = {"session_id": session_id, "items": json.dumps(items), "offset": offset}
    return list(connection.execute(INSERT_LEGACY_BOOKINGS, parameters).scalars())


def contact(email: str | None, name: str | None = "Legacy Person", **more: Any) -> dict[str, Any]:
    return {"name": name, "email": email, **more}


def message(first: int, last: int, batch_id: str = "batch-1") -> BookingRangeMessage:
    """A version 1 message: a range of booking ids (still accepted from the queue)."""
    return BookingRangeMessage(
        version=1, batchId=batch_id, firstBookingId=first, lastBookingId=last
    )


def key_message(
    first: int = MIN_EMAIL_KEY, last: int = MAX_EMAIL_KEY, batch_id: str = "batch-1"
) -> EmailKeyRangeMessage:
    """A version 2 message: a range of email keys (by default all of them)."""
    return EmailKeyRangeMessage(version=2, batchId=batch_id, firstEmailKey=first, lastEmailKey=last)


def state(engine: Engine) -> dict[str, list[tuple]]:
    """Everything the backfill may change, in a comparable form (no timestamps of runs)."""
    queries = {
        "users": "SELECT id, email_normalized, role, name, phone, company_name, customer_type, "
        "total_bookings, total_spent, first_booking_at, last_booking_at FROM users ORDER BY id",
        "links": "SELECT id, user_id FROM bookings ORDER BY id",
        "unlinkable": "SELECT booking_id, reason FROM backfill_unlinkable ORDER BY booking_id",
    }
    with engine.connect() as connection:
        return {
            name: [tuple(row) for row in connection.execute(text(query))]
            for name, query in queries.items()
        }


@contextmanager
def queues_in_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, LocalQueue]]:
    """The template's queues in moto; failures reappear after 1 s instead of six minutes."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        queues = create_queues(TEMPLATE)
        boto3.client("sqs").set_queue_attributes(
            QueueUrl=queues["BackfillQueue"].url, Attributes={"VisibilityTimeout": "1"}
        )
        monkeypatch.setenv("BACKFILL_QUEUE_URL", queues["BackfillQueue"].url)
        monkeypatch.setenv("BACKFILL_PAUSE_DELAY_SECONDS", "0")
        yield queues


def worker_poller(queue: LocalQueue) -> SqsPoller:
    """The worker's event source mapping, with the template's batch size and concurrency."""
    (source,) = [
        source
        for source in sqs_event_sources(TEMPLATE, PROJECT_ROOT)
        if source.function.function_id == "BackfillWorkerFunction"
    ]
    return SqsPoller(source, queue)


def queue_depth(queue: LocalQueue) -> int:
    return messages_on_queue(boto3.client("sqs"), queue.url)


def received_bodies(queue: LocalQueue) -> list[dict[str, Any]]:
    """Every message body on the queue (received once; they reappear after 1 s)."""
    client = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    while messages := client.receive_message(
        QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
    ).get("Messages", []):
        bodies += [json.loads(message["Body"]) for message in messages]
    return bodies
