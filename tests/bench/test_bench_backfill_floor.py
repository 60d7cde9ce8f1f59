"""The backfill bench's floor writes what the pipeline (worker, then the certificates
job) writes: the same users, links, attendees and certificates, so that comparing their
times is fair."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from bench.backfill import link_everything, outcome
from rft_common.certificates.service import issue_certificates
from rft_tools.data.legacy import seed_legacy
from rft_tools.local.sqs import LocalQueue
from rft_tools.operations.backfill import enqueue
from tests.backfill_helpers import queues_in_moto, worker_poller
from tests.conftest import ALL_TABLES


@pytest.fixture
def queue(monkeypatch) -> Iterator[LocalQueue]:
    with queues_in_moto(monkeypatch) as queues:
        yield queues["BackfillQueue"]


def seed(db) -> None:
    with db.begin() as connection:
        connection.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))
        seed_legacy(connection, bookings=1500, customers=500)


def test_the_floor_writes_the_pipelines_users_links_attendees_and_certificates(
    db, queue, set_flags
):
    set_flags({"backfill": {"default": True}})
    seed(db)
    with db.begin() as connection:
        enqueue(connection, queue.url, batch_size=500)
    worker_poller(queue).drain()
    issue_certificates()
    pipeline = outcome(db)

    seed(db)
    with db.begin() as connection:
        link_everything(connection)
    floor = outcome(db)

    assert pipeline["attendees"] > 0
    assert pipeline["certificates"] > 0
    # Every digest but the users', which holds the staff rows' creation times (each seed
    # here makes its staff anew; the bench copies one seeded template for both).
    assert {key: value for key, value in floor.items() if key != "users_digest"} == {
        key: value for key, value in pipeline.items() if key != "users_digest"
    }
