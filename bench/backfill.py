"""Backfill at scale: our pipeline end to end, the floor and the legacy baseline.

The legacy data is generated once (``rft seed legacy``'s generator) into a template
database; each measurement runs on its own copy (``CREATE DATABASE ... TEMPLATE``), so
all three start from the same rows.

- **Pipeline**: ``rft backfill enqueue``'s function sends the batches to SQS (moto),
  the worker handler takes them through ``SqsPoller`` with the template's batch size
  and maximum concurrency, until ``read_status`` finds no linkable booking left
  (what ``rft backfill status --check`` checks); then the certificates job's statement
  issues history's certificates (timed as part of the pipeline).
- **Floor**: the fastest plain SQL doing the same in one transaction (``FLOOR``):
  customers, links, each booker's attendee row and the certificates.
- **Baseline**: the legacy per-row algorithm on a sample, extrapolated per booking.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, create_engine, text

from bench.environment import fresh_database, use_database
from rft_common.backfill.service import (
    CANDIDATES,
    EMAIL_RULE_PARAMETERS,
    MAX_BOOKING_ID,
    normalized_email_or_reason,
)
from rft_common.certificates.service import ISSUE_CERTIFICATES
from rft_common.core.vocabulary import BUSINESS_TIME_ZONE
from rft_tools.cfn_template import load_template
from rft_tools.checks.integrity import stats_mismatches
from rft_tools.cli.commands.backfill import DEFAULT_BATCH_SIZE
from rft_tools.data.legacy import seed_legacy
from rft_tools.local.aws import LOCAL_CREDENTIALS, start_moto_server
from rft_tools.local.sqs import create_queues, sqs_event_sources, start_sqs_pollers
from rft_tools.operations.backfill import enqueue, queue_depth, read_status
from rft_tools.paths import LOCAL_DIR, PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "template.yaml"
LEGACY_DATABASE = "bench_legacy"
WORKER_LOG = LOCAL_DIR / "bench-backfill-worker.log"
STALL_SECONDS = 30
"""No batch finished for this long: a stall, reported with the queue's state."""
CONCURRENCY = os.environ.get("BENCH_BACKFILL_CONCURRENCY")
"""Replaces the template's MaximumConcurrency for the pipeline (to compare several)."""
BOOKINGS = os.environ.get("BENCH_BACKFILL_BOOKINGS")
"""Replaces the data set's size (customers stay 35% of it), for a mid-size run."""


@dataclass(frozen=True)
class Sizes:
    bookings: int
    customers: int
    baseline_sample: int
    deadline_s: float
    """The pipeline gives up after this long (a failed batch waits out the visibility
    timeout, 6 minutes, before it is received again)."""


FULL = Sizes(bookings=1_000_000, customers=350_000, baseline_sample=20_000, deadline_s=900)
QUICK = Sizes(bookings=50_000, customers=18_000, baseline_sample=2_000, deadline_s=480)


def legacy_database(
    server_url: str, name: str, *, bookings: int, customers: int, duplicate_share: float = 0.0
) -> tuple[str, float]:
    """A migrated database ``name`` holding generated legacy data: its URL, seconds taken."""
    url = fresh_database(server_url, name)
    engine = create_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        seed_legacy(
            connection, bookings=bookings, customers=customers, duplicate_share=duplicate_share
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return url, time.perf_counter() - started


# --- outcome: what linking produced, to compare the three ---------------------------

OUTCOME = text("""
    SELECT (SELECT count(*) FROM users) AS users,
           (SELECT count(*) FROM bookings WHERE user_id IS NOT NULL) AS linked,
           (SELECT md5(string_agg(concat_ws('|', email_normalized, role, customer_type, name,
                                            phone, company_name, total_bookings, total_spent,
                                            first_booking_at, last_booking_at, created_at),
                                  E'\\n' ORDER BY email_normalized))
            FROM users) AS users_digest,
           (SELECT md5(string_agg(b.id || ':' || u.email_normalized, ',' ORDER BY b.id))
            FROM bookings AS b JOIN users AS u ON u.id = b.user_id) AS links_digest,
           (SELECT count(*) FROM booking_attendees) AS attendees,
           (SELECT md5(string_agg(concat_ws('|', a.booking_id, a.position, a.first_name,
                                            a.last_name, a.email, u.email_normalized),
                                  ',' ORDER BY a.booking_id, a.position))
            FROM booking_attendees AS a LEFT JOIN users AS u ON u.id = a.user_id)
               AS attendees_digest,
           (SELECT count(*) FROM certificates) AS certificates,
           (SELECT md5(string_agg(concat_ws('|', c.booking_id, a.position, c.course_type,
                                            c.issued_on, c.expires_on, c.status),
                                  ',' ORDER BY c.booking_id, a.position))
            FROM certificates AS c JOIN booking_attendees AS a ON a.id = c.attendee_id)
               AS certificates_digest
""")
"""Counts, and digests of every user row, of which user each booking links to, of the
attendees (their user by email: ids differ between runs) and of the certificates (all
but the number, which holds the attendee's id)."""


def outcome(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(connection.execute(OUTCOME).one()._mapping)


USER_ROW_WRITES = text("""
    SELECT n_tup_ins + n_tup_upd AS written
    FROM pg_stat_user_tables WHERE relid = 'users'::regclass
""")
"""Rows of ``users`` inserted or rewritten in this database (each rewrite of a row is a
new row version, and updates its indexes unless it is HOT), as PostgreSQL's
statistics count them: read once every connection that wrote is closed."""


def user_row_writes(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(USER_ROW_WRITES).scalar_one()
    finally:
        engine.dispose()


# --- pipeline --------------------------------------------------------------------------

BATCH_PROGRESS = text("""
    SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
           count(*) FILTER (WHERE status = 'done') AS done
    FROM backfill_batches
""")
WORKER_SESSIONS = text("""
    SELECT count(*) FILTER (WHERE state = 'active' AND wait_event_type IS DISTINCT FROM 'Lock')
               AS running,
           count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock') AS waiting
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend'
""")
"""What the workers' connections do right now: run a statement, or wait for a lock."""


@contextlib.contextmanager
def _worker_output(log: IO[str]) -> Iterator[None]:
    """The worker's logs and metrics (stdout, as in Lambda) go to ``log``."""
    from rft_common.core.observability import logger

    handler = logger.registered_handler
    previous = handler.setStream(log)
    try:
        with contextlib.redirect_stdout(log):
            yield
    finally:
        handler.setStream(previous)


def _wait_until_linked(engine: Engine, queue_url: str, started: float, sizes: Sizes) -> dict:
    """Seconds from ``started`` until no batch is queued and no linkable booking is left.

    Polls the small ``backfill_batches`` table; ``read_status`` (which counts the
    bookings) confirms the end. A stall is recorded with the queue's state.
    """
    from rft_common.aws.queues import sqs_client

    stalls: list[dict[str, Any]] = []
    sessions = {"samples": 0, "running": 0, "waiting": 0}
    last_done, last_change = -1, time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        while True:
            progress = connection.execute(BATCH_PROGRESS).one()
            now = time.perf_counter()
            if progress.queued == 0:
                remaining = read_status(connection).remaining_linkable
                if remaining == 0:
                    return {"seconds": now - started, "stalls": stalls, "sessions": sessions}
                raise RuntimeError(f"every batch is done, yet {remaining} bookings remain")
            if progress.done != last_done:
                last_done, last_change = progress.done, now
            elif now - last_change > STALL_SECONDS:
                last_change = now
                status = read_status(connection)
                stall = {
                    "after_s": round(now - started, 1),
                    "batches_queued": progress.queued,
                    "batches_done": progress.done,
                    "remaining_linkable": status.remaining_linkable,
                    "queue": queue_depth(queue_url, sqs_client()).__dict__,
                }
                stalls.append(stall)
                print(f"backfill pipeline stalled: {json.dumps(stall)}", file=sys.stderr)
            if now - started > sizes.deadline_s:
                raise TimeoutError(f"backfill pipeline not done after {sizes.deadline_s} s")
            sample = connection.execute(WORKER_SESSIONS).one()
            sessions["samples"] += 1
            sessions["running"] += sample.running
            sessions["waiting"] += sample.waiting
            time.sleep(0.1)


def _worker_profile(log: Path) -> dict[str, Any]:
    """Per-batch durations and failures, from the worker's own log lines."""
    durations, failures = [], []
    for line in log.read_text().splitlines():
        if not line.startswith('{"level"'):
            continue
        record = json.loads(line)
        if record["message"] == "backfill batch done":
            durations.append(record["duration_ms"])
        elif record["level"] in ("WARNING", "ERROR"):
            failures.append(
                {key: record.get(key) for key in ("message", "error", "sqlstate", "batch_id")}
            )
    return {"batch_ms": durations, "failures": failures}


def _percent(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


@contextlib.contextmanager
def _environment_restored() -> Iterator[None]:
    """Undo what the stack's setup puts in ``os.environ`` (the worker's settings, the
    pool size, the SQS endpoint), so the sections after this one run as they would alone."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _pipeline(server_url: str, flags_file: Path, sizes: Sizes) -> dict[str, Any]:
    with _environment_restored():
        return _measure_pipeline(server_url, flags_file, sizes)


def _measure_pipeline(server_url: str, flags_file: Path, sizes: Sizes) -> dict[str, Any]:
    url = fresh_database(server_url, "bench_backfill_pipeline", template=LEGACY_DATABASE)
    use_database(url, str(flags_file))
    moto, endpoint = start_moto_server()
    aws = {"AWS_ENDPOINT_URL": endpoint, **LOCAL_CREDENTIALS}
    os.environ.update(aws)
    template = load_template(TEMPLATE)
    queue_url = create_queues(template)["BackfillQueue"].url
    (source,) = sqs_event_sources(template, PROJECT_ROOT)
    if CONCURRENCY:
        source = replace(source, maximum_concurrency=int(CONCURRENCY))
    environment = aws | {
        "DATABASE_URL": url,
        "RFT_FLAGS_FILE": str(flags_file),
        "BACKFILL_QUEUE_URL": queue_url,
    }
    os.environ.update(environment)
    engine = create_engine(url)
    try:
        with WORKER_LOG.open("w") as log, _worker_output(log):
            concurrency = int(CONCURRENCY) if CONCURRENCY else None
            pollers = start_sqs_pollers(TEMPLATE, environment, maximum_concurrency=concurrency)
            try:
                started = time.perf_counter()
                with engine.begin() as connection:
                    enqueued = enqueue(connection, queue_url, batch_size=DEFAULT_BATCH_SIZE)
                enqueue_seconds = time.perf_counter() - started
                done = _wait_until_linked(engine, queue_url, started, sizes)
            finally:
                pollers.stop()
        # Then the certificates job issues history's certificates (its statement, as
        # CertificatesFunction or `rft certificates issue` runs it once linking is done).
        certificates_started = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(text(ISSUE_CERTIFICATES), {"time_zone": BUSINESS_TIME_ZONE})
        certificates_seconds = time.perf_counter() - certificates_started
        with engine.connect() as connection:
            status = read_status(connection)
        result = outcome(engine)
    finally:
        engine.dispose()
        moto.stop()
        from rft_common.db.postgres import reset_pool

        reset_pool()
    user_rows_written = user_row_writes(url)
    profile = _worker_profile(WORKER_LOG)
    batch_ms = profile["batch_ms"]
    return {
        "seconds": done["seconds"] + certificates_seconds,
        "linking_seconds": done["seconds"],
        "certificates_seconds": certificates_seconds,
        "enqueue_seconds": enqueue_seconds,
        "batches": enqueued.batches,
        "batch_size": DEFAULT_BATCH_SIZE,
        "messages_per_invocation": source.batch_size,
        "concurrency": source.maximum_concurrency,
        "batch_ms_p50": round(statistics.median(batch_ms), 1),
        "batch_ms_max": round(max(batch_ms), 1),
        # Shares of the workers' wall time (concurrency x seconds): inside a batch's
        # transaction; and, sampled every 0.1 s, running a statement or waiting for a lock.
        "workers_in_batch_percent": _percent(
            sum(batch_ms) / 1000, done["seconds"] * source.maximum_concurrency
        ),
        "workers_running_sql_percent": _percent(
            done["sessions"]["running"], done["sessions"]["samples"] * source.maximum_concurrency
        ),
        "workers_waiting_for_locks_percent": _percent(
            done["sessions"]["waiting"], done["sessions"]["samples"] * source.maximum_concurrency
        ),
        "worker_warnings": profile["failures"],
        "stalls": done["stalls"],
        "user_rows_written": user_rows_written,
        "customers_created": status.customers_created,
        "unlinkable": sum(status.unlinkable.values()),
        "outcome": result,
    }


# --- floor -----------------------------------------------------------------------------

FLOOR = (
    # One bulk transaction may sort in memory what the per-batch statements never need to.
    "SET LOCAL work_mem = '256MB'",
    # Every unlinked booking once, with its normalised email and why it cannot link.
    f"CREATE TEMP TABLE candidates ON COMMIT DROP AS {CANDIDATES}",
    """INSERT INTO backfill_unlinkable (booking_id, reason, batch_id)
       SELECT id, reason, 'floor' FROM candidates WHERE reason IS NOT NULL""",
    # One customer per normalised email, dated from their first booking, each field its
    # first non-blank value; the staff rows that exist already are left as they are.
    # Ids follow the customers' first bookings, as checkouts would have created them
    # (in email order, a page walking the id order would meet each name in one place,
    # which no real data does).
    """INSERT INTO users (email, role, customer_type, name, phone, company_name, created_at)
       SELECT email, 'customer',
              CASE WHEN company_name IS NULL THEN 'individual' ELSE 'corporate' END,
              name, phone, company_name, created_at
       FROM (SELECT email, min(id) AS first_booking_id, min(created_at) AS created_at,
                    (array_agg(name ORDER BY id) FILTER (WHERE name IS NOT NULL))[1] AS name,
                    (array_agg(phone ORDER BY id) FILTER (WHERE phone IS NOT NULL))[1] AS phone,
                    (array_agg(company_name ORDER BY id)
                        FILTER (WHERE company_name IS NOT NULL))[1] AS company_name
             FROM candidates WHERE reason IS NULL GROUP BY email) AS merged
       ORDER BY first_booking_id
       ON CONFLICT (email_normalized) DO NOTHING""",
    # The statistics triggers fire once, set-based, for every customer linked.
    """UPDATE bookings AS b SET user_id = u.id
       FROM candidates AS c JOIN users AS u ON u.email_normalized = c.email
       WHERE b.id = c.id AND c.reason IS NULL""",
    # Each booker is their booking's one known attendee (by name only if unlinkable;
    # none for an erased person's booking), as the worker records them.
    """INSERT INTO booking_attendees (booking_id, position, first_name, last_name, email,
                                     user_id)
       SELECT c.id, 1, left(split_part(c.name, ' ', 1), 100),
              left(nullif(btrim(substr(c.name, length(split_part(c.name, ' ', 1)) + 1)), ''),
                   100),
              CASE WHEN c.reason IS NULL THEN c.email END, b.user_id
       FROM candidates AS c JOIN bookings AS b ON b.id = c.id
       WHERE c.reason IS DISTINCT FROM 'erased'
       ORDER BY c.id""",
    # History's certificates: the certificates job's own statement (it is one
    # set-based statement already, so it is its own floor).
    ISSUE_CERTIFICATES,
)
"""Link every unlinked booking, the floor's way: plain SQL in one transaction, with the
attendees and certificates the pipeline (the worker, then the certificates job) writes.

Written apart from the worker's statement, with the same identity rules (``CANDIDATES``
normalises and validates emails exactly as the worker does), so that its result
checks the pipeline's. On this data no customer exists beforehand, so inserting only
the new ones is the whole of the find-or-create.
"""


def link_everything(connection: Connection) -> None:
    """``FLOOR`` in the caller's transaction."""
    parameters = EMAIL_RULE_PARAMETERS | {
        "first": 1,
        "last": MAX_BOOKING_ID,
        "time_zone": BUSINESS_TIME_ZONE,
    }
    for statement in FLOOR:
        connection.execute(text(statement), parameters)


def _floor(server_url: str) -> dict[str, Any]:
    url = fresh_database(server_url, "bench_backfill_floor", template=LEGACY_DATABASE)
    engine = create_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        link_everything(connection)
    seconds = time.perf_counter() - started
    result = outcome(engine)
    engine.dispose()
    return {"seconds": seconds, "outcome": result, "user_rows_written": user_row_writes(url)}


# --- baseline --------------------------------------------------------------------------

SAMPLE = text("""
    SELECT id, contact_details ->> 'email' AS email, contact_details ->> 'name' AS name,
           contact_details ->> 'phone' AS phone, contact_details ->> 'company' AS company
    FROM bookings WHERE user_id IS NULL ORDER BY id LIMIT :sample
""")
FIND_CUSTOMER = text("SELECT id FROM users WHERE email_normalized = :email")
INSERT_CUSTOMER = text("""
    INSERT INTO users (email, role, customer_type, name, phone, company_name)
    VALUES (:email, 'customer', :customer_type, :name, :phone, :company)
    RETURNING id
""")
LINK_BOOKING = text("UPDATE bookings SET user_id = :user_id WHERE id = :booking_id")
UPDATE_STATISTICS = text("SELECT rft_refresh_user_stats(ARRAY[CAST(:user_id AS integer)])")
STATISTICS_TRIGGER = "rft_bookings_stats_update"


def _blank_to_none(value: str | None) -> str | None:
    return (value or "").strip() or None


def _legacy_link(connection: Connection, booking: Any) -> bool:
    """The legacy algorithm for one booking, in its own transaction; whether it linked."""
    email, reason = normalized_email_or_reason(booking.email)
    if reason is not None:
        return False
    with connection.begin():
        user_id = connection.execute(FIND_CUSTOMER, {"email": email}).scalar()
        if user_id is None:
            company = _blank_to_none(booking.company)
            user_id = connection.execute(
                INSERT_CUSTOMER,
                {
                    "email": email,
                    "customer_type": "corporate" if company else "individual",
                    "name": _blank_to_none(booking.name),
                    "phone": _blank_to_none(booking.phone),
                    "company": company,
                },
            ).scalar_one()
        connection.execute(LINK_BOOKING, {"user_id": user_id, "booking_id": booking.id})
        connection.execute(UPDATE_STATISTICS, {"user_id": user_id})
    return True


def _baseline(server_url: str, sample: int) -> dict[str, Any]:
    """Per booking: look up the customer, insert if missing, link, update their stats.

    The statistics trigger is disabled on this copy: the legacy algorithm updates the
    statistics itself, with the same definition (``rft_refresh_user_stats``).
    """
    url = fresh_database(server_url, "bench_backfill_baseline", template=LEGACY_DATABASE)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE bookings DISABLE TRIGGER {STATISTICS_TRIGGER}"))
    with engine.connect() as connection:
        started = time.perf_counter()
        bookings = connection.execute(SAMPLE, {"sample": sample}).all()
        connection.commit()
        linked = sum(_legacy_link(connection, booking) for booking in bookings)
        seconds = time.perf_counter() - started
        wrong_statistics = len(stats_mismatches(connection))
    engine.dispose()
    if wrong_statistics:
        raise RuntimeError(f"the baseline left {wrong_statistics} customers' statistics wrong")
    return {"seconds": seconds, "sample": len(bookings), "linked": linked}


# --- the section -----------------------------------------------------------------------


def run(server_url: str, flags_file: Path, *, quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    if BOOKINGS:
        bookings = int(BOOKINGS)
        sizes = replace(sizes, bookings=bookings, customers=bookings * 35 // 100)
    _, seed_seconds = legacy_database(
        server_url, LEGACY_DATABASE, bookings=sizes.bookings, customers=sizes.customers
    )
    pipeline = _pipeline(server_url, flags_file, sizes)
    floor = _floor(server_url)
    same = {
        key: pipeline["outcome"][key] == floor["outcome"][key]
        for key in (
            "users",
            "linked",
            "users_digest",
            "links_digest",
            "attendees",
            "attendees_digest",
            "certificates",
            "certificates_digest",
        )
    }
    if not (same["users"] and same["linked"] and same["attendees"] and same["certificates"]):
        raise RuntimeError(
            f"pipeline and floor disagree: {pipeline['outcome']} != {floor['outcome']}"
        )
    baseline = _baseline(server_url, sizes.baseline_sample)
    pipeline_rate = sizes.bookings / pipeline["seconds"]
    floor_rate = sizes.bookings / floor["seconds"]
    baseline_rate = baseline["sample"] / baseline["seconds"]
    return {
        "bookings": sizes.bookings,
        "pipeline_rows_per_s": round(pipeline_rate),
        "floor_rows_per_s": round(floor_rate),
        "baseline_rows_per_s": round(baseline_rate),
        "pipeline_vs_floor": round(pipeline["seconds"] / floor["seconds"], 2),
        "pipeline_vs_baseline": round(pipeline_rate / baseline_rate, 1),
        "generated_customers": sizes.customers,
        "seed_seconds": round(seed_seconds, 1),
        "pipeline_seconds": round(pipeline["seconds"], 1),
        "floor_seconds": round(floor["seconds"], 1),
        "baseline_seconds": round(baseline["seconds"], 1),
        "baseline_sample": baseline["sample"],
        "baseline_extrapolated_seconds": round(sizes.bookings / baseline_rate),
        "bookings_linked": pipeline["outcome"]["linked"],
        "attendees_written": pipeline["outcome"]["attendees"],
        "certificates_issued": pipeline["outcome"]["certificates"],
        "customers_created": pipeline["customers_created"],
        "floor_user_rows_written": floor["user_rows_written"],
        "unlinkable": pipeline["unlinkable"],
        "same_result_as_floor": all(same.values()),
        "pipeline": {
            key: value
            for key, value in pipeline.items()
            if key not in ("seconds", "outcome", "customers_created", "unlinkable")
        },
    }
