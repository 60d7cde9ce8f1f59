"""Operating the backfill: enqueue batches of unlinked bookings, report progress.

Enqueue partitions the bookings still to do by customer with one SQL statement:
ranges of email keys (``rft_backfill_email_key``, a hash of the normalised email),
each holding about ``batch_size`` bookings, a key never split between two ranges
(window functions over the keys, never OFFSET). It records each range in
``backfill_batches`` and sends it as a version 2 message, all in one transaction
under an advisory lock. So every customer's bookings are in exactly one batch, and
no two batches of an enqueue share a customer:

- "still to do" means unlinked, not recorded as unlinkable, and not inside a range
  that is queued and not yet done (a version 2 range of keys, or a version 1 range
  of booking ids). So a second enqueue, or one while workers run, sends only what no
  queued batch covers: no double work. New ranges never span a queued range of keys
  (they are cut where it starts).
- Rows are recorded before sending and committed after: if sending fails the rows
  are dropped for the messages SQS refused (or rolled back entirely), so a recorded
  batch always has a message. A message whose row did not commit (a crash between
  send and commit) is still processed: the worker records the batch itself.
- Batches recorded as queued whose messages were lost (a purged queue, a restarted
  local stack) are sent again with ``resend_queued``; the worker is idempotent, so a
  duplicate costs a little work and changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from rft_common.aws.queues import send_messages
from rft_common.backfill.service import AnyMessage, BookingRangeMessage, EmailKeyRangeMessage
from rft_common.db.locks import LOCK_BACKFILL_ENQUEUE

RATE_WINDOW_SECONDS = 60

PLAN = """
    WITH queued AS (
        SELECT range_agg(int4range(first_booking_id, last_booking_id, '[]'))
                   FILTER (WHERE first_booking_id IS NOT NULL) AS id_ranges,
               range_agg(int4range(first_email_key, last_email_key, '[]'))
                   FILTER (WHERE first_email_key IS NOT NULL) AS key_ranges
        FROM backfill_batches WHERE status = 'queued'
    ), keys AS (
        SELECT k.key, count(*) AS bookings
        FROM bookings AS b
        CROSS JOIN queued AS q
        CROSS JOIN LATERAL (
            SELECT rft_backfill_email_key(b.contact_details ->> 'email') AS key
        ) AS k
        WHERE b.user_id IS NULL
          AND NOT EXISTS (SELECT 1 FROM backfill_unlinkable AS u WHERE u.booking_id = b.id)
          AND NOT coalesce(q.id_ranges @> b.id, false)
          AND NOT coalesce(q.key_ranges @> k.key, false)
        GROUP BY k.key
    ), points AS (
        SELECT key, bookings, false AS fence FROM keys
        UNION ALL
        -- where a queued range of keys starts: no new range may span it
        SELECT lower(r), 0, true FROM queued CROSS JOIN unnest(queued.key_ranges) AS r
    ), stretches AS (
        SELECT key, bookings, fence,
               count(*) FILTER (WHERE fence) OVER (ORDER BY key, fence) AS stretch
        FROM points
    ), numbered AS (
        -- a key's bookings all go to one batch: cut by the bookings before the key
        SELECT key, bookings, stretch,
               (sum(bookings) OVER (PARTITION BY stretch ORDER BY key) - bookings)::bigint
                   / :batch_size AS batch
        FROM stretches WHERE NOT fence
    )
    SELECT min(key) AS first_email_key, max(key) AS last_email_key,
           sum(bookings)::integer AS bookings
    FROM numbered
    GROUP BY stretch, batch
"""
"""Ranges of email keys over the bookings still to do, about ``batch_size`` bookings
each. Still to do: unlinked, not recorded as unlinkable, not in a queued batch (a
version 1 batch's ids, or a version 2 batch's keys)."""
RECORD_PLAN = text(f"""
    INSERT INTO backfill_batches (id, first_email_key, last_email_key, planned_bookings)
    SELECT gen_random_uuid()::text, first_email_key, last_email_key, bookings
    FROM ({PLAN}) AS plan
    ORDER BY first_email_key
    RETURNING id, NULL::integer AS first_booking_id, NULL::integer AS last_booking_id,
              first_email_key, last_email_key, planned_bookings
""")
DRY_RUN_PLAN = text(f"""
    SELECT 'dry-run' AS id, first_email_key, last_email_key, bookings AS planned_bookings
    FROM ({PLAN}) AS plan ORDER BY first_email_key
""")
QUEUED_BATCHES = text("""
    SELECT id, first_booking_id, last_booking_id, first_email_key, last_email_key,
           planned_bookings
    FROM backfill_batches WHERE status = 'queued' ORDER BY enqueued_at, id
""")
DROP_UNSENT = text("DELETE FROM backfill_batches WHERE id = ANY(:ids)")


def batch_message(row: Any) -> AnyMessage:
    """The message of a recorded batch: version 2, or 1 for a range of booking ids."""
    if row.first_email_key is not None:
        return EmailKeyRangeMessage(
            version=2,
            batchId=row.id,
            firstEmailKey=row.first_email_key,
            lastEmailKey=row.last_email_key,
        )
    return BookingRangeMessage(
        version=1,
        batchId=row.id,
        firstBookingId=row.first_booking_id,
        lastBookingId=row.last_booking_id,
    )


@dataclass(frozen=True)
class EnqueueResult:
    batches: int
    bookings: int
    resent: int = 0
    failed: int = 0
    dry_run: bool = False


def enqueue(
    connection: Connection,
    queue_url: str | None,
    *,
    batch_size: int,
    dry_run: bool = False,
    resend_queued: bool = False,
    client: Any = None,
) -> EnqueueResult:
    """Plan, record and send the batches, in the caller's transaction (commit after)."""
    connection.execute(text(LOCK_BACKFILL_ENQUEUE))
    parameters = {"batch_size": batch_size}
    if dry_run:
        planned = connection.execute(DRY_RUN_PLAN, parameters).all()
        return EnqueueResult(
            batches=len(planned),
            bookings=sum(row.planned_bookings for row in planned),
            dry_run=True,
        )
    assert queue_url is not None
    resent = connection.execute(QUEUED_BATCHES).all() if resend_queued else []
    planned = connection.execute(RECORD_PLAN, parameters).all()
    bodies = [batch_message(row).to_json() for row in resent + planned]
    failed = set(send_messages(queue_url, bodies, client=client))
    sent_plan = [row for index, row in enumerate(planned, len(resent)) if index not in failed]
    if len(sent_plan) < len(planned):
        unsent = {row.id for row in planned} - {row.id for row in sent_plan}
        connection.execute(DROP_UNSENT, {"ids": sorted(unsent)})
    return EnqueueResult(
        batches=len(sent_plan),
        bookings=sum(row.planned_bookings for row in sent_plan),
        resent=sum(1 for index in range(len(resent)) if index not in failed),
        failed=len(failed),
    )


# --- status -------------------------------------------------------------------------

BOOKING_COUNTS = text("""
    SELECT (SELECT count(*) FROM bookings) AS total,
           (SELECT count(*) FROM bookings WHERE user_id IS NULL) AS unlinked
""")
UNLINKABLE_BY_REASON = text("""
    SELECT u.reason, count(*) AS bookings
    FROM backfill_unlinkable AS u JOIN bookings AS b ON b.id = u.booking_id
    WHERE b.user_id IS NULL
    GROUP BY u.reason ORDER BY u.reason
""")
BATCH_COUNTS = text("""
    SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
           count(*) FILTER (WHERE status = 'done') AS done,
           coalesce(sum(customers_created), 0) AS customers_created
    FROM backfill_batches
""")
# Bookings linked per second over the last minute, measured from the start of that
# minute or from when the batches finished in it were enqueued, whichever is later.
RECENT_RATE = text(f"""
    SELECT coalesce(sum(bookings_linked), 0) AS linked,
           extract(epoch FROM now() - greatest(
               now() - interval '{RATE_WINDOW_SECONDS} seconds', min(enqueued_at))) AS seconds
    FROM backfill_batches
    WHERE completed_at > now() - interval '{RATE_WINDOW_SECONDS} seconds'
""")


@dataclass
class QueueDepth:
    url: str
    visible: int
    in_flight: int
    delayed: int
    dead_letter_url: str | None
    dead_letter_visible: int | None


@dataclass
class BackfillStatus:
    bookings_total: int
    bookings_linked: int
    bookings_unlinked: int
    unlinkable: dict[str, int]
    remaining_linkable: int
    customers_created: int
    progress_percent: float
    batches_queued: int
    batches_done: int
    rate_per_second: float | None
    eta_seconds: float | None
    queue: QueueDepth | None = None
    paused: bool = False
    """The ``backfill`` flag is off: the workers put every message back untouched."""
    as_of: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def running(self) -> bool:
        return self.batches_queued > 0 or bool(self.queue and self.queue.in_flight)

    @property
    def state(self) -> str:
        if self.running:
            return "paused (flag backfill off)" if self.paused else "running"
        return "done" if not self.remaining_linkable else "idle"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"running": self.running, "state": self.state}


def read_status(connection: Connection) -> BackfillStatus:
    counts = connection.execute(BOOKING_COUNTS).one()
    unlinkable = {row.reason: row.bookings for row in connection.execute(UNLINKABLE_BY_REASON)}
    batches = connection.execute(BATCH_COUNTS).one()
    recent = connection.execute(RECENT_RATE).one()
    linked = counts.total - counts.unlinked
    remaining = counts.unlinked - sum(unlinkable.values())
    linkable = counts.total - sum(unlinkable.values())
    rate = (
        float(recent.linked) / float(recent.seconds)
        if recent.linked and recent.seconds and recent.seconds > 0
        else None
    )
    return BackfillStatus(
        bookings_total=counts.total,
        bookings_linked=linked,
        bookings_unlinked=counts.unlinked,
        unlinkable=unlinkable,
        remaining_linkable=remaining,
        customers_created=batches.customers_created,
        progress_percent=round(100.0 * linked / linkable, 2) if linkable else 100.0,
        batches_queued=batches.queued,
        batches_done=batches.done,
        rate_per_second=round(rate, 1) if rate else None,
        eta_seconds=round(remaining / rate, 1) if rate and batches.queued else None,
    )


def queue_depth(queue_url: str, client: Any) -> QueueDepth:
    """Depth of the queue and of the dead-letter queue its redrive policy names."""
    attributes = client.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
            "RedrivePolicy",
        ],
    )["Attributes"]
    dead_letter_url = dead_letter_visible = None
    if "RedrivePolicy" in attributes:
        target = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
        *_, account, name = target.split(":")
        dead_letter_url = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)[
            "QueueUrl"
        ]
        dead_letter_visible = int(
            client.get_queue_attributes(
                QueueUrl=dead_letter_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
    return QueueDepth(
        url=queue_url,
        visible=int(attributes["ApproximateNumberOfMessages"]),
        in_flight=int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        delayed=int(attributes["ApproximateNumberOfMessagesDelayed"]),
        dead_letter_url=dead_letter_url,
        dead_letter_visible=dead_letter_visible,
    )
