"""The backfill worker behind SQS (moto, queues created from the template's settings),
invoked the way Lambda's event source mapping does by the local poller."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from sqlalchemy import text

from rft_common.aws.queues import send_messages
from rft_common.backfill.service import MAX_EMAIL_KEY, MIN_EMAIL_KEY
from rft_tools.local.sqs import LocalQueue, SqsPoller, sqs_event
from tests.backfill_helpers import (
    MAX_RECEIVE_COUNT,
    contact,
    insert_legacy_bookings,
    key_message,
    message,
    queue_depth,
    queues_in_moto,
    state,
    worker_poller,
)
from tests.conftest import FakeLambdaContext
from tests.factories import add_session, stats_mismatches

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def queues(monkeypatch) -> Iterator[dict[str, LocalQueue]]:
    with queues_in_moto(monkeypatch) as queues:
        yield queues


@pytest.fixture
def poller(queues) -> SqsPoller:
    return worker_poller(queues["BackfillQueue"])


@pytest.fixture
def backfill_on(set_flags) -> None:
    set_flags({"backfill": {"default": True}})


@pytest.fixture
def bookings(db) -> list[int]:
    """Three people, twelve bookings, one without an email."""
    with db.begin() as connection:
        session_id = add_session(connection)
        return insert_legacy_bookings(
            connection,
            session_id,
            [contact(f" Person{i % 3}@Example.com") for i in range(11)] + [contact(None)],
        )


def enqueue(queue: LocalQueue, bodies: list[str]) -> None:
    assert send_messages(queue.url, bodies) == []


@pytest.fixture(params=[2, 1], ids=["version 2", "version 1 left in the queue"])
def version(request) -> int:
    return request.param


def batches(ids: list[int], size: int, version: int) -> list[str]:
    """Messages of about ``size`` bookings: version 2 cuts the key space into equal
    ranges, version 1 (as sent before the upgrade) the ids."""
    if version == 1:
        return [
            message(ids[start], ids[min(start + size, len(ids)) - 1], f"b{start}").to_json()
            for start in range(0, len(ids), size)
        ]
    count = -(-len(ids) // size)
    width = (MAX_EMAIL_KEY - MIN_EMAIL_KEY + 1) // count
    starts = [MIN_EMAIL_KEY + index * width for index in range(count)]
    ends = [start - 1 for start in starts[1:]] + [MAX_EMAIL_KEY]
    return [
        key_message(start, end, f"k{index}").to_json()
        for index, (start, end) in enumerate(zip(starts, ends, strict=True))
    ]


def dead_letters(queues) -> list[dict]:
    return (
        boto3.client("sqs")
        .receive_message(
            QueueUrl=queues["BackfillDeadLetterQueue"].url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
        )
        .get("Messages", [])
    )


def unlinked(db) -> int:
    with db.connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM bookings WHERE user_id IS NULL")
        ).scalar_one()


def test_the_worker_links_every_batch_in_the_queue(
    db, queues, poller, bookings, backfill_on, version
):
    enqueue(queues["BackfillQueue"], batches(bookings, 4, version))

    poller.drain()

    with db.connect() as connection:
        customers = connection.execute(text("SELECT count(*) FROM users")).scalar_one()
        assert stats_mismatches(connection) == []
    assert unlinked(db) == 1
    assert customers == 3
    assert queue_depth(queues["BackfillQueue"]) == 0
    assert dead_letters(queues) == []


def test_a_failed_record_is_reported_alone_with_real_sqs_event_shapes(
    queues, poller, bookings, backfill_on
):
    good = message(bookings[0], bookings[5], "good").to_json()
    enqueue(queues["BackfillQueue"], [good, '{"version": 1, "batchId": "no range"}'])
    received = poller.receive_batch(wait_seconds=0)
    event = sqs_event(received, queues["BackfillQueue"].arn)
    bad_id = next(m["MessageId"] for m in received if m["Body"] != good)

    result = poller.handlers[0](event, FakeLambdaContext("BackfillWorkerFunction"))

    assert result == {"batchItemFailures": [{"itemIdentifier": bad_id}]}
    assert set(event["Records"][0]) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1"


def test_poison_messages_reach_the_dead_letter_queue_after_max_receive_count(
    db, queues, poller, bookings, backfill_on, captured_logs
):
    poison = [
        "not json at all",
        json.dumps({"version": 2, "batchId": "future", "firstBookingId": 1, "lastBookingId": 2}),
        json.dumps({"version": 1, "batchId": "backwards", "firstBookingId": 9, "lastBookingId": 1}),
    ]
    enqueue(queues["BackfillQueue"], [*poison, *batches(bookings, 6, version=2)])

    poller.drain()

    rejections = [
        line["receive_count"]
        for line in map(json.loads, captured_logs.getvalue().splitlines())
        if line["message"] == "backfill message rejected: not a valid batch message"
    ]
    assert sorted(m["Body"] for m in dead_letters(queues)) == sorted(poison)
    assert sorted(rejections) == sorted(list(range(1, MAX_RECEIVE_COUNT + 1)) * len(poison))
    assert unlinked(db) == 1
    assert queue_depth(queues["BackfillQueue"]) == 0


def test_a_batch_that_keeps_failing_in_the_database_is_parked_in_the_dead_letter_queue(
    db, queues, poller, bookings, backfill_on
):
    enqueue(queues["BackfillQueue"], [message(bookings[0], bookings[1], "reused").to_json()])
    poller.drain()
    reused_with_other_range = message(bookings[0], bookings[-1], "reused").to_json()
    enqueue(queues["BackfillQueue"], [reused_with_other_range])

    poller.drain()

    assert [m["Body"] for m in dead_letters(queues)] == [reused_with_other_range]
    assert unlinked(db) == len(bookings) - 2


def test_while_paused_messages_are_kept_without_processing_or_dead_lettering(
    db, queues, poller, bookings, set_flags, version
):
    set_flags({"backfill": {"default": False}})
    bodies = batches(bookings, 4, version)
    enqueue(queues["BackfillQueue"], bodies)
    before = state(db)

    for _ in range(MAX_RECEIVE_COUNT + 2):
        received = poller.receive_batch(wait_seconds=0)
        assert sorted(m["Body"] for m in received) == sorted(bodies)
        assert {m["Attributes"]["ApproximateReceiveCount"] for m in received} == {"1"}
        assert poller.invoke(poller.handlers[0], received) == set()

    assert state(db) == before
    assert queue_depth(queues["BackfillQueue"]) == len(bodies)
    assert dead_letters(queues) == []


def test_processing_resumes_when_the_flag_is_on_again(
    db, queues, poller, bookings, set_flags, version
):
    set_flags({"backfill": {"default": False}})
    enqueue(queues["BackfillQueue"], batches(bookings, 4, version))
    poller.invoke(poller.handlers[0], poller.receive_batch(wait_seconds=0))

    set_flags({"backfill": {"default": True}})
    poller.drain()

    assert unlinked(db) == 1
    assert queue_depth(queues["BackfillQueue"]) == 0
    assert dead_letters(queues) == []


def test_each_batch_logs_its_id_counts_and_duration_and_never_an_email(
    queues, poller, bookings, backfill_on, captured_logs
):
    enqueue(queues["BackfillQueue"], [key_message(batch_id="logged").to_json()])

    poller.drain()

    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    (done,) = [line for line in lines if line["message"] == "backfill batch done"]
    assert done["batch_id"] == "logged"
    assert (done["bookings_linked"], done["customers_created"], done["unlinkable"]) == (11, 3, 1)
    assert done["duration_ms"] >= 0
    assert "@" not in captured_logs.getvalue()
