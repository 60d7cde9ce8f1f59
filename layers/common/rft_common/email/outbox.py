"""The email outbox: messages written with the event that causes them, sent afterwards.

**Enqueue** (``enqueue``, ``enqueue_booking_email``) runs in the caller's transaction:
a rolled-back booking or password change leaves no message, a committed one leaves
exactly one, because the outbox is unique on (kind, dedupe key) and a second enqueue of
the same event (the browser and Stripe's webhook, a redelivered event) does nothing.
Nothing here talks to SES, so the caller's transaction never waits for it.

**Drain** (``drain``, the email sender function): claim up to ``BATCH_SIZE`` due messages
(``FOR UPDATE SKIP LOCKED``, so concurrent senders take different rows) and, in the same
short transaction, push their ``next_attempt_at`` on by ``LEASE`` and count the attempt.
The claim commits before anything is sent: a sender that dies mid-batch leaves its
unsent messages to be claimed again once the lease ends, and each message is marked
``sent`` in its own statement right after SES accepts it, so only a crash between SES's
answer and that mark (one message, at most) could send a message twice.

A message to a suppressed address (``email_suppressions``) is marked ``suppressed`` and
never sent. A failed send is tried again after ``backoff(attempts)``; after
``MAX_ATTEMPTS`` tries, or at once for an error SES will always give (a rejected
message), it is ``dead``: counted by the ``EmailsDead`` metric, which has an alarm.
A message that is sent, dead or suppressed loses its payload (it may hold a reset link).

Sends are paced to ``Settings.ses_send_rate`` a second (``Pace``): SES refuses
(throttles) faster sending, and the daily renewal reminders queue thousands at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rft_common.core.emails import EMAIL_WHITESPACE, normalized_email_sql
from rft_common.core.settings import get_settings
from rft_common.db.postgres import Connection, run_transaction

BATCH_SIZE = 50
MAX_ATTEMPTS = 6
LEASE = timedelta(minutes=5)
"""How long a claimed message stays invisible to other senders (a send takes well under)."""


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` failed ones: 1, 2, 4, 8, 16 minutes."""
    return timedelta(minutes=2 ** max(attempts - 1, 0))


ENQUEUE = """
    INSERT INTO email_outbox (kind, dedupe_key, recipient, payload)
    VALUES (:kind, :dedupe_key, :recipient, CAST(:payload AS jsonb))
    ON CONFLICT (kind, dedupe_key) DO NOTHING
"""
ENQUEUE_BOOKING_EMAIL = "SELECT rft_enqueue_booking_email(CAST(:booking_id AS integer))"
"""The customer's email for a paid booking: its confirmation, or (no seat) the "staff
will contact you" message. A database function (migration 0026) so that PostgreSQL plans
it once per connection rather than for every paid booking."""
BOOKING_EMAIL_KINDS = ("booking_confirmation", "booking_unplaced")
"""The kinds of the emails ``ENQUEUE_BOOKING_EMAIL`` queues, each keyed by its booking's id
(the dedupe key): what erasure looks for among a person's bookings."""

CLAIM = f"""
    WITH due AS (
        SELECT id FROM email_outbox
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE email_outbox AS o
    SET attempts = o.attempts + 1, next_attempt_at = now() + CAST(:lease AS interval)
    FROM due WHERE o.id = due.id
    RETURNING o.id, o.kind, o.recipient, o.payload, o.attempts,
              EXISTS (SELECT FROM email_suppressions AS s
                      WHERE s.email_normalized = {normalized_email_sql("o.recipient")})
                  AS suppressed
"""
MARK_SENT = """
    UPDATE email_outbox
    SET status = 'sent', sent_at = now(), ses_message_id = :message_id, payload = NULL,
        last_error = NULL
    WHERE id = :id
"""
MARK_SUPPRESSED = """
    UPDATE email_outbox SET status = 'suppressed', payload = NULL WHERE id = ANY(:ids)
"""
MARK_FAILED = """
    UPDATE email_outbox
    SET last_error = :error,
        status = CASE WHEN :give_up THEN 'dead' ELSE 'pending' END,
        payload = CASE WHEN :give_up THEN NULL ELSE payload END,
        next_attempt_at = now() + CAST(:wait AS interval)
    WHERE id = :id
"""
PENDING_COUNT = "SELECT count(*) FROM email_outbox WHERE status = 'pending'"


def enqueue(
    connection: Connection, *, kind: str, dedupe_key: str, recipient: str, payload: dict
) -> None:
    connection.execute(
        ENQUEUE,
        {
            "kind": kind,
            "dedupe_key": dedupe_key,
            "recipient": recipient,
            "payload": json.dumps(payload, default=str),
        },
    )


def enqueue_booking_email(connection: Connection, booking_id: int) -> None:
    """Queue the paid booking's confirmation (or unplaced notice); no-op if already queued
    or if the booking is not paid."""
    connection.execute(ENQUEUE_BOOKING_EMAIL, {"booking_id": booking_id})


@dataclass
class DrainResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    suppressed: int = 0

    def add(self, other: DrainResult) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead
        self.suppressed += other.suppressed


class Pace:
    """At most ``rate`` sends a second: ``wait`` sleeps until the next send is due."""

    def __init__(self, rate: float) -> None:
        self.interval = 1 / rate
        self.next_at = time.monotonic()

    def wait(self) -> None:
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


Sender = Callable[[str, str, dict[str, Any]], str]
"""(kind, recipient, payload) -> SES message id; raises ``SendFailed``."""


def send_with_ses(kind: str, recipient: str, payload: dict[str, Any]) -> str:
    from rft_common.email import ses, templates

    return ses.send(recipient, templates.render(kind, payload), kind=kind)


def _claim(limit: int) -> list[Any]:
    return run_transaction(
        lambda connection: connection.execute(
            CLAIM, {"limit": limit, "lease": LEASE, "whitespace": EMAIL_WHITESPACE}
        ).all()
    )


def _execute(sql: str, parameters: dict[str, Any]) -> None:
    run_transaction(lambda connection: connection.execute(sql, parameters))


def drain_batch(
    send: Sender = send_with_ses, *, limit: int = BATCH_SIZE, pace: Pace | None = None
) -> DrainResult:
    """Claim and send one batch of due messages, paced (``SES_SEND_RATE``)."""
    from rft_common.email.ses import SendFailed

    pace = pace or Pace(get_settings().ses_send_rate)
    result = DrainResult()
    claimed = _claim(limit)
    suppressed = [row.id for row in claimed if row.suppressed]
    if suppressed:
        _execute(MARK_SUPPRESSED, {"ids": suppressed})
        result.suppressed = len(suppressed)
    for row in claimed:
        if row.suppressed:
            continue
        pace.wait()
        try:
            message_id = send(row.kind, row.recipient, row.payload)
        except SendFailed as failure:
            give_up = failure.permanent or row.attempts >= MAX_ATTEMPTS
            _mark_failed(row.id, failure.code, give_up=give_up, attempts=row.attempts)
            result.dead += give_up
            result.failed += not give_up
            continue
        except (KeyError, ValueError, TypeError) as broken:  # the message cannot be built
            _mark_failed(row.id, type(broken).__name__, give_up=True, attempts=row.attempts)
            result.dead += 1
            continue
        _execute(MARK_SENT, {"id": row.id, "message_id": message_id})
        result.sent += 1
    return result


def _mark_failed(message_id: int, error: str, *, give_up: bool, attempts: int) -> None:
    _execute(
        MARK_FAILED,
        {"id": message_id, "error": error, "give_up": give_up, "wait": backoff(attempts)},
    )


def drain(
    send: Sender = send_with_ses,
    *,
    limit: int = BATCH_SIZE,
    keep_going: Callable[[], bool] = lambda: True,
) -> DrainResult:
    """Send batches until none is due (or ``keep_going`` says stop: the Lambda's time)."""
    total = DrainResult()
    pace = Pace(get_settings().ses_send_rate)
    while keep_going():
        batch = drain_batch(send, limit=limit, pace=pace)
        total.add(batch)
        if batch.sent + batch.failed + batch.dead + batch.suppressed < limit:
            return total
    return total
