"""``rft backfill enqueue`` and ``status``: batches by customer recorded and sent once,
progress read from the database and the queues (moto)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from rft_common.aws.queues import sqs_client
from rft_common.backfill.service import EMAIL_RULE_PARAMETERS, email_key, normalized_email_or_reason
from rft_tools.cli.main import main
from rft_tools.data.legacy import seed_legacy
from rft_tools.local.sqs import LocalQueue, SqsPoller
from rft_tools.operations.backfill import enqueue, read_status
from tests.backfill_helpers import (
    contact,
    insert_legacy_bookings,
    queue_depth,
    queues_in_moto,
    received_bodies,
    worker_poller,
)
from tests.factories import add_session, add_staff_user, stats_mismatches

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def queues(monkeypatch) -> Iterator[dict[str, LocalQueue]]:
    with queues_in_moto(monkeypatch) as queues:
        yield queues


@pytest.fixture
def queue(queues) -> LocalQueue:
    return queues["BackfillQueue"]


@pytest.fixture
def poller(queue, set_flags) -> SqsPoller:
    set_flags({"backfill": {"default": True}})
    return worker_poller(queue)


@pytest.fixture
def session_id(db) -> int:
    with db.begin() as connection:
        return add_session(connection)


def add_bookings(db, session_id, contacts) -> list[int]:
    with db.begin() as connection:
        return insert_legacy_bookings(connection, session_id, contacts)


def people(count: int, start: int = 0) -> list[dict]:
    return [contact(f"person{(start + i) % 7}@example.com") for i in range(count)]


def run_enqueue(db, queue: LocalQueue | None, **options):
    with db.begin() as connection:
        return enqueue(connection, queue.url if queue else None, **options)


def distinct_people(count: int, start: int = 0) -> list[dict]:
    """One booking per customer, so every email key holds exactly one booking."""
    return [contact(f"customer{start + i}@example.com") for i in range(count)]


def sorted_keys(contacts: list[dict]) -> list[int]:
    return sorted(email_key(item["email"]) for item in contacts)


def recorded_batches(db) -> list[tuple]:
    with db.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT first_email_key, last_email_key, planned_bookings, status "
                    "FROM backfill_batches WHERE first_email_key IS NOT NULL "
                    "ORDER BY first_email_key"
                )
            )
        ]


def test_unlinked_bookings_are_sent_as_ranges_of_email_keys_of_the_batch_size(
    db, queue, session_id
):
    customers = distinct_people(25)
    add_bookings(db, session_id, customers)
    keys = sorted_keys(customers)

    result = run_enqueue(db, queue, batch_size=10)

    assert (result.batches, result.bookings) == (3, 25)
    assert recorded_batches(db) == [
        (keys[0], keys[9], 10, "queued"),
        (keys[10], keys[19], 10, "queued"),
        (keys[20], keys[24], 5, "queued"),
    ]
    sent = sorted(received_bodies(queue), key=lambda body: body["firstEmailKey"])
    assert [(body["firstEmailKey"], body["lastEmailKey"]) for body in sent] == [
        (keys[0], keys[9]),
        (keys[10], keys[19]),
        (keys[20], keys[24]),
    ]
    assert {body["version"] for body in sent} == {2}


def test_the_sql_email_key_is_the_python_one_for_every_spelling(db, session_id):
    spellings = [" Ann@Example.COM\t", "ann@example.com", "\u00a0ANN@example.com\v", "", None]
    add_bookings(db, session_id, [contact(email) for email in spellings])

    with db.connect() as connection:
        in_sql = connection.execute(
            text(
                "SELECT rft_backfill_email_key(contact_details ->> 'email') "
                "FROM bookings ORDER BY id"
            )
        ).scalars()

        assert list(in_sql) == [email_key(email) for email in spellings]
    assert len({email_key(email) for email in spellings[:3]}) == 1


def test_no_two_batches_of_one_enqueue_share_a_customer(db, queue):
    with db.begin() as connection:
        seed_legacy(connection, bookings=3000, customers=700)

    result = run_enqueue(db, queue, batch_size=100)

    with db.connect() as connection:
        batches_per_customer = connection.execute(
            text("""
                SELECT lower(btrim(b.contact_details ->> 'email', :whitespace)) AS email,
                       count(DISTINCT batch.id) AS batches, count(*) AS bookings
                FROM bookings AS b
                LEFT JOIN backfill_batches AS batch
                  ON rft_backfill_email_key(b.contact_details ->> 'email')
                     BETWEEN batch.first_email_key AND batch.last_email_key
                WHERE b.user_id IS NULL
                  AND b.id NOT IN (SELECT booking_id FROM backfill_unlinkable)
                GROUP BY 1
            """),
            EMAIL_RULE_PARAMETERS,
        ).all()
        ranges = connection.execute(
            text("SELECT first_email_key, last_email_key FROM backfill_batches ORDER BY 1")
        ).all()
    assert result.batches > 20
    assert {row.batches for row in batches_per_customer} == {1}
    assert sum(row.bookings for row in batches_per_customer) == result.bookings == 3000
    assert max(row.bookings for row in batches_per_customer) > 1
    assert all(previous[1] < later[0] for previous, later in itertools.pairwise(ranges))


def test_enqueueing_twice_sends_nothing_the_second_time(db, queue, session_id):
    add_bookings(db, session_id, distinct_people(25))
    run_enqueue(db, queue, batch_size=10)

    again = run_enqueue(db, queue, batch_size=10)

    assert (again.batches, again.bookings) == (0, 0)
    assert queue_depth(queue) == 3
    assert len(recorded_batches(db)) == 3


def test_a_dry_run_records_and_sends_nothing(db, queue, session_id):
    add_bookings(db, session_id, distinct_people(25))

    result = run_enqueue(db, None, batch_size=10, dry_run=True)

    assert (result.batches, result.bookings) == (3, 25)
    assert recorded_batches(db) == []
    assert queue_depth(queue) == 0


def test_new_ranges_stop_where_a_queued_range_of_keys_starts(db, queue, session_id):
    customers = distinct_people(30)
    add_bookings(db, session_id, customers)
    keys = sorted_keys(customers)
    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO backfill_batches (id, first_email_key, last_email_key) "
                "VALUES ('operator-sent', :first, :last)"
            ),
            {"first": keys[10], "last": keys[19]},
        )

    run_enqueue(db, queue, batch_size=100)

    assert [row[:3] for row in recorded_batches(db)] == [
        (keys[0], keys[9], 10),
        (keys[10], keys[19], None),
        (keys[20], keys[29], 10),
    ]


def test_bookings_of_a_queued_version_1_batch_are_not_enqueued_again(db, queue, session_id):
    ids = add_bookings(db, session_id, distinct_people(30))
    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO backfill_batches (id, first_booking_id, last_booking_id) "
                "VALUES ('sent-before-the-upgrade', :first, :last)"
            ),
            {"first": ids[0], "last": ids[11]},
        )

    result = run_enqueue(db, queue, batch_size=100)

    assert (result.batches, result.bookings) == (1, 18)


def test_enqueue_while_workers_run_sends_only_bookings_no_batch_covers(
    db, queue, poller, session_id
):
    add_bookings(db, session_id, distinct_people(20))
    run_enqueue(db, queue, batch_size=10)
    poller.invoke(poller.handlers[0], poller.receive_batch(wait_seconds=0)[:1])
    with db.connect() as connection:
        (still_queued,) = connection.execute(
            text(
                "SELECT first_email_key, last_email_key FROM backfill_batches "
                "WHERE status = 'queued'"
            )
        ).all()
    later = distinct_people(40, start=20)
    add_bookings(db, session_id, later)
    uncovered = [
        key
        for key in sorted_keys(later)
        if not still_queued.first_email_key <= key <= still_queued.last_email_key
    ]

    result = run_enqueue(db, queue, batch_size=100)

    assert 0 < len(uncovered) < len(later)
    assert (result.batches, result.bookings) == (
        len({key < still_queued.first_email_key for key in uncovered}),
        len(uncovered),
    )
    assert len(recorded_batches(db)) == 2 + result.batches


def test_bookings_inserted_during_the_backfill_are_linked_by_the_next_enqueue(
    db, queue, poller, session_id
):
    add_bookings(db, session_id, people(30))
    run_enqueue(db, queue, batch_size=10)
    poller.drain()
    add_bookings(db, session_id, [*people(12, start=5), contact("new.person@example.com")])
    with db.connect() as connection:
        assert read_status(connection).remaining_linkable == 13

    run_enqueue(db, queue, batch_size=10)
    poller.drain()

    with db.connect() as connection:
        status = read_status(connection)
        assert stats_mismatches(connection) == []
    assert (status.remaining_linkable, status.bookings_unlinked) == (0, 0)
    assert status.customers_created == 8


def test_unlinkable_bookings_are_not_enqueued_again(db, queue, poller, session_id):
    add_bookings(db, session_id, [contact(None), contact("bad@"), *people(3)])
    run_enqueue(db, queue, batch_size=10)
    poller.drain()

    again = run_enqueue(db, queue, batch_size=10)

    assert again.batches == 0


def test_batches_whose_messages_sqs_refused_are_not_recorded(db, session_id):
    add_bookings(db, session_id, distinct_people(30))

    class RefusesTheSecond:
        def send_message_batch(self, QueueUrl, Entries):
            return {"Failed": [{"Id": "1", "Code": "InternalError", "SenderFault": False}]}

    result = run_enqueue(
        db,
        LocalQueue("BackfillQueue", "https://sqs.invalid/q", "arn"),
        batch_size=10,
        client=RefusesTheSecond(),
    )

    assert (result.batches, result.failed) == (2, 1)
    assert [row[2] for row in recorded_batches(db)] == [10, 10]
    assert run_enqueue(db, None, batch_size=10, dry_run=True).bookings == 10


def test_resend_queued_sends_the_recorded_batches_again_with_their_ids(db, queue, session_id):
    add_bookings(db, session_id, distinct_people(15))
    run_enqueue(db, queue, batch_size=10)
    lost = received_bodies(queue)
    sqs_client().purge_queue(QueueUrl=queue.url)

    result = run_enqueue(db, queue, batch_size=10, resend_queued=True)

    assert (result.resent, result.batches) == (2, 0)
    assert sorted(received_bodies(queue), key=str) == sorted(lost, key=str)


def test_status_reports_progress_unlinkable_reasons_and_customers_created(
    db, queue, poller, session_id
):
    with db.begin() as connection:
        add_staff_user(connection, "trainer@reactfast.co.uk", role="instructor")
    add_bookings(
        db,
        session_id,
        [*people(14), contact(None), contact("x at y.com"), contact("Trainer@ReactFast.co.uk")],
    )
    run_enqueue(db, queue, batch_size=5)
    poller.drain()

    with db.connect() as connection:
        status = read_status(connection)

    assert (status.bookings_total, status.bookings_linked, status.bookings_unlinked) == (17, 15, 2)
    assert status.unlinkable == {"malformed_email": 1, "missing_email": 1}
    assert (status.remaining_linkable, status.progress_percent) == (0, 100.0)
    assert (status.customers_created, status.batches_queued) == (7, 0)
    assert status.batches_done == len(recorded_batches(db))


def test_status_check_fails_while_linkable_bookings_remain_and_passes_after(
    db, queue, poller, session_id, capsys
):
    add_bookings(db, session_id, distinct_people(8))
    assert main(["backfill", "status", "--check"]) == 1

    assert main(["backfill", "enqueue", "--batch-size", "3"]) == 0
    poller.drain()

    assert main(["backfill", "status", "--check", "--json"]) == 0
    printed = capsys.readouterr().out
    status = json.loads(printed[printed.index("{\n") :])
    assert (status["remaining_linkable"], status["queue"]["dead_letter_visible"]) == (0, 0)
    assert "enqueued 3 batches (8 bookings, batch size 3)" in printed


def test_a_dry_run_of_one_batch_says_batch(db, session_id, capsys):
    add_bookings(db, session_id, distinct_people(1))

    assert main(["backfill", "enqueue", "--dry-run"]) == 0
    assert "would enqueue 1 batch (1 booking, batch size" in capsys.readouterr().out


def test_status_says_paused_while_the_backfill_flag_holds_queued_batches(
    db, queue, session_id, set_flags, capsys
):
    add_bookings(db, session_id, distinct_people(4))
    set_flags({"backfill": {"default": False}})
    assert main(["backfill", "enqueue", "--batch-size", "2"]) == 0
    capsys.readouterr()

    assert main(["backfill", "status"]) == 0
    assert "state               paused (flag backfill off)" in capsys.readouterr().out
    assert main(["backfill", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["paused"], status["state"]) == (True, "paused (flag backfill off)")


def test_a_seeded_legacy_database_ends_linked_with_exact_statistics(db, queue, poller):
    with db.begin() as connection:
        seed_legacy(connection, bookings=3000, customers=1000)
    with db.connect() as connection:
        raw = connection.execute(text("SELECT contact_details ->> 'email' FROM bookings")).scalars()
        emails = {email for email, _ in map(normalized_email_or_reason, raw) if email}

    assert main(["backfill", "enqueue", "--batch-size", "500"]) == 0
    poller.drain()

    with db.connect() as connection:
        status = read_status(connection)
        linked_to = connection.execute(
            text(
                "SELECT DISTINCT u.email_normalized "
                "FROM users AS u JOIN bookings AS b ON b.user_id = u.id"
            )
        ).scalars()
        assert stats_mismatches(connection) == []
    assert set(linked_to) == emails
    assert status.remaining_linkable == 0
    assert status.bookings_linked + sum(status.unlinkable.values()) == 3000
