"""Backfill faults all at once: the end state is the one a clean run leaves.

Two operators enqueue at the same moment, SQS delivers every message three times,
and the legacy app keeps inserting bookings during the run. Compared with a clean
run (one enqueue, each message once) on the same generated data: the same customers
with the same details and statistics, the same links, the same unlinkable bookings,
and nothing in the dead-letter queue.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from sqlalchemy import Engine, text

from rft_tools.data.legacy import seed_legacy
from rft_tools.operations.backfill import enqueue
from tests.backfill_helpers import message, queue_depth, queues_in_moto, worker_poller
from tests.conftest import ALL_TABLES
from tests.factories import stats_mismatches

pytestmark = pytest.mark.usefixtures("db")

BATCH_SIZE = 250
LATE_BOOKINGS = text("""
    INSERT INTO bookings (booking_reference, course_schedule_id, status, payment_status,
                          payment_amount, number_of_attendees, created_at, contact_details)
    SELECT 'RFT-LATE-' || i, (SELECT min(id) FROM course_schedules), 'confirmed', 'paid', 75, 1,
           timestamptz '2026-11-01 09:00Z' + i * interval '1 minute',
           json_build_object('name', 'Late ' || i,
                             'email', CASE WHEN i % 2 = 0 THEN ' ' || upper(earlier.email)
                                          ELSE 'late' || i || '@example.com' END)
    FROM generate_series(1, 40) AS i
    JOIN LATERAL (SELECT contact_details ->> 'email' AS email FROM bookings
                  WHERE booking_reference NOT LIKE 'RFT-LATE-%'
                  ORDER BY id OFFSET i * 7 LIMIT 1) AS earlier ON true
""")
"""Forty bookings the legacy app writes during the run: half by returning customers
(their email from an earlier booking, shouted and padded), half by new ones."""


def seed(db: Engine) -> None:
    with db.begin() as connection:
        connection.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))
        seed_legacy(connection, bookings=2_000, customers=600)


def outcome(db: Engine) -> dict[str, Any]:
    """What the backfill decides, keyed by email and booking id (user ids may differ)."""
    with db.connect() as connection:
        users = connection.execute(
            text(
                "SELECT email_normalized, role, name, phone, company_name, customer_type, "
                "total_bookings, total_spent, first_booking_at, last_booking_at FROM users"
            )
        ).all()
        links = connection.execute(
            text(
                "SELECT b.id, u.email_normalized FROM bookings AS b "
                "LEFT JOIN users AS u ON u.id = b.user_id"
            )
        ).all()
        unlinkable = connection.execute(
            text("SELECT booking_id, reason FROM backfill_unlinkable")
        ).all()
        assert stats_mismatches(connection) == []
    return {"users": set(users), "links": set(links), "unlinkable": set(unlinkable)}


def enqueue_once(db: Engine, queue_url: str) -> int:
    with db.begin() as connection:
        return enqueue(connection, queue_url, batch_size=BATCH_SIZE).batches


def deliver_each_message(queue_url: str, times: int) -> int:
    """Take every message off the queue and put it back ``times`` times (redelivery)."""
    sqs = boto3.client("sqs")
    bodies = []
    while messages := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages", []):
        for received in messages:
            bodies.append(received["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=received["ReceiptHandle"])
    for body in bodies:
        for _ in range(times):
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    return len(bodies)


def dead_letter_depth(queues) -> int:
    return queue_depth(queues["BackfillDeadLetterQueue"])


LEFTOVER = {"first": 1, "last": 300}
"""A version 1 batch still queued from before the upgrade: booking ids 1..300."""


def leave_a_version_1_batch(db: Engine, queue_url: str) -> None:
    """What an enqueue before the upgrade left: its batch recorded and its message sent."""
    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO backfill_batches (id, first_booking_id, last_booking_id) "
                "VALUES ('before-upgrade', :first, :last)"
            ),
            LEFTOVER,
        )
    body = message(LEFTOVER["first"], LEFTOVER["last"], "before-upgrade").to_json()
    boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)


@pytest.mark.parametrize("version_1_left", [False, True], ids=["", "version 1 left in queue"])
def test_redelivery_concurrent_enqueues_and_late_bookings_end_as_a_clean_run(
    db, monkeypatch, set_flags, version_1_left
):
    set_flags({"backfill": {"default": True}})
    with queues_in_moto(monkeypatch) as queues:
        queue = queues["BackfillQueue"]
        poller = worker_poller(queue)

        seed(db)
        with db.begin() as connection:
            connection.execute(LATE_BOOKINGS)
        enqueue_once(db, queue.url)
        poller.drain()
        clean = outcome(db)
        assert dead_letter_depth(queues) == 0

        seed(db)
        if version_1_left:
            leave_a_version_1_batch(db, queue.url)
        start = threading.Barrier(2)
        sent: list[int] = []

        def operator() -> None:
            start.wait()
            sent.append(enqueue_once(db, queue.url))

        operators = [threading.Thread(target=operator) for _ in range(2)]
        for thread in operators:
            thread.start()
        for thread in operators:
            thread.join()
        messages = deliver_each_message(queue.url, times=3)
        poller.drain()
        with db.begin() as connection:
            connection.execute(LATE_BOOKINGS)
        late_messages = enqueue_once(db, queue.url)
        deliver_each_message(queue.url, times=3)
        poller.drain()

        assert sorted(sent)[0] == 0 and messages == sum(sent) + version_1_left
        assert late_messages >= 1
        assert outcome(db) == clean
        assert dead_letter_depth(queues) == 0
        with db.connect() as connection:
            assert connection.execute(
                text("SELECT count(*) FROM bookings WHERE user_id IS NULL")
            ).scalar_one() == len(clean["unlinkable"])
