"""The printed table and ``docs/performance.md``, both from the results JSON."""

from __future__ import annotations

from typing import Any

from rft_tools.paths import PROJECT_ROOT


def _backfill_rows(backfill: dict[str, Any]) -> list[tuple[str, str, str]]:
    pipeline = backfill["pipeline"]
    written, floor_written = pipeline["user_rows_written"], backfill["floor_user_rows_written"]
    return [
        (
            f"backfill of {backfill['bookings']:,} bookings: pipeline / floor / baseline "
            "(bookings/s)",
            f"{backfill['pipeline_rows_per_s']:,} / {backfill['floor_rows_per_s']:,} / "
            f"{backfill['baseline_rows_per_s']:,}",
            "",
        ),
        ("  pipeline time / floor time", str(backfill["pipeline_vs_floor"]), "<= 1.3"),
        (
            "  pipeline speed / baseline speed (context only)",
            str(backfill["pipeline_vs_baseline"]),
            "",
        ),
        (
            "  seconds: pipeline / floor / baseline (extrapolated)",
            f"{backfill['pipeline_seconds']} / {backfill['floor_seconds']} / "
            f"{backfill['baseline_extrapolated_seconds']:,}",
            "",
        ),
        (
            "  same users and links as the floor",
            f"{'yes' if backfill['same_result_as_floor'] else 'NO'} "
            f"({backfill['bookings_linked']:,} linked, "
            f"{backfill['customers_created']:,} customers created)",
            "yes",
        ),
        (
            f"  customer rows written: {pipeline['batches']} batches / floor (x floor)",
            f"{written:,} / {floor_written:,} ({written / floor_written:.2f})",
            "<= 1.05",
        ),
        (
            f"  workers ({pipeline['concurrency']}): in a batch / running SQL (%)",
            f"{pipeline['workers_in_batch_percent']} / {pipeline['workers_running_sql_percent']}",
            "",
        ),
        (
            "  workers' time waiting for locks (%)",
            str(pipeline["workers_waiting_for_locks_percent"]),
            "< 5",
        ),
        (
            "  stalls (no batch done for 30 s) / worker warnings",
            f"{len(pipeline['stalls'])} / {len(pipeline['worker_warnings'])}",
            "0 / 0",
        ),
    ]


ADMIN_QUERIES = {
    "no_filter": "no filter",
    "email_prefix": "email prefix",
    "name_substring": "name substring",
    "sort_total_spent": "sorted by total spent",
    "deep_cursor_page": "page {deep_page} by cursor",
    "deep_offset_page": "page {deep_page} by offset",
    "name_substring_broad": "broad name substring (a surname)",
    "detail_200_bookings": "detail of a customer with {detail_bookings} bookings",
    "duplicates_first_page": "duplicate candidates, first page (of {duplicate_candidates} pairs)",
    "renewals_first_page": "renewals due in {days} days, first page (of {renewals})",
}
ADMIN_GOALS = {"duplicates_first_page": "p95 < 200", "renewals_first_page": "none set"}


def _admin_rows(admin: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = [
        (
            f"admin at {admin['customers']:,} customers, {admin['bookings']:,} bookings: "
            "p50 / p95 (ms)",
            "",
            "",
        )
    ]
    for key, label in ADMIN_QUERIES.items():
        if key not in admin["p50_ms"]:
            continue  # results from before the row existed
        name = label.format(
            deep_page=admin["deep_page"],
            detail_bookings=admin["detail_bookings"],
            duplicate_candidates=f"{admin.get('duplicate_candidates', 0):,}",
            renewals=f"{admin.get('renewals_due', 0):,}",
            days=admin.get("renewals_within_days"),
        )
        matches = admin["average_matches"].get(key)
        suffix = f" ({matches:,} matches on average)" if matches is not None else ""
        found.append(
            (
                f"  {name}{suffix}",
                f"{admin['p50_ms'][key]} / {admin['p95_ms'][key]}",
                ADMIN_GOALS.get(key, "p95 < 25"),
            )
        )
    found.append(
        (
            "  a sequential scan of users in any plan",
            "yes" if admin["plans"]["seq_scan_on_users"] else "no",
            "no",
        )
    )
    return found


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(measure, value, goal)`` for every figure present in ``results``."""
    found: list[tuple[str, str, str]] = []
    if results.get("backfill"):
        found += _backfill_rows(results["backfill"])
    email = results.get("email")
    if email:
        paid, drain = email["paid_booking"], email["drain"]
        found += [
            (
                "paid booking with its outbox write p50 / p95 / p99 (ms, in-process)",
                f"{paid['p50_ms']} / {paid['p95_ms']} / {paid['p99_ms']}",
                "p99 < 8",
            ),
            (
                f"outbox drained, {drain['messages']:,} queued, SES emulated (messages/s)",
                f"{drain['per_s']} ({drain['sent']:,} sent in {drain['seconds']} s)",
                "",
            ),
        ]
    found += _reminder_rows(results.get("reminders"))
    booking = results.get("booking")
    if booking:
        found += [
            (
                "booking p50 / p95 / p99 (ms, warm, in-process)",
                f"{booking['p50_ms']} / {booking['p95_ms']} / {booking['p99_ms']}",
                "p99 < 8",
            ),
            (
                "  new customer p99 / returning p99 (ms)",
                f"{booking['new_customer']['p99_ms']} / {booking['returning_customer']['p99_ms']}",
                "",
            ),
            (
                "SQL statements per booking (with / without Idempotency-Key)",
                f"{booking['statements']['with_idempotency_key']} / "
                f"{booking['statements']['without_idempotency_key']}",
                "<= 5",
            ),
            (
                "  round trips to PostgreSQL per booking (with / without key)",
                f"{booking['statements']['round_trips_with_idempotency_key']} / "
                f"{booking['statements']['round_trips_without_idempotency_key']}",
                "",
            ),
            (
                f"bookings/s, {booking['worker_processes']} processes, one hot session",
                f"{booking['throughput_per_s']['hot_session']} "
                f"{booking['throughput_statuses']['hot_session']}",
                "only 201/409",
            ),
            (
                f"bookings/s, {booking['worker_processes']} processes, many sessions",
                f"{booking['throughput_per_s']['many_sessions']} "
                f"{booking['throughput_statuses']['many_sessions']}",
                "only 201/409",
            ),
        ]
    if results.get("admin"):
        found += _admin_rows(results["admin"])
    found += _cold_start_rows(results)
    if "layer_mb" in results:
        found.append(("layer size unzipped (MB)", str(results["layer_mb"]), "< 15"))
        for name, value in results["function_mb"].items():
            found.append((f"  {name} size (MB)", str(value), ""))
    return found


def _reminder_rows(reminders: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    if not reminders:
        return []
    drain = reminders["drain"]
    return [
        (
            f"reminder run on switch-on, {reminders['bookings']:,} bookings, "
            f"{reminders['certificates']:,} certificates (s)",
            f"{reminders['first_run_s']} ({reminders['messages']:,} messages, "
            f"{reminders['reminders_sent']:,} reminders, "
            f"{sum(reminders['skipped'].values()):,} skipped)",
            f"< {reminders['timeout_s']} (timeout)",
        ),
        ("  the rerun, everything decided (s)", str(reminders["rerun_s"]), ""),
        (
            f"  reminders drained, {drain['of']:,} queued, SES emulated, unpaced (messages/s)",
            f"{drain['per_s']} ({drain['sent']:,} sent in {drain['seconds']} s)",
            "",
        ),
    ]


BOTO3_RATIO_GOAL = 0.8
"""Each function's import + init at most this times ``import boto3`` alone (issue 22)."""


def _cold_start_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    first_requests = results.get("first_request_ms", {})
    after_restore = results.get("first_request_after_restore_ms", {})
    boto3_ms = results.get("import_boto3_ms")
    if boto3_ms:
        found.append(("import boto3 alone, Python 3.13 runtime (ms, median)", str(boto3_ms), ""))
    for name, value in results.get("cold_start_ms", {}).items():
        dev = results["cold_start_dev_venv_ms"][name]
        ratio = f" = {value / boto3_ms:.2f}x boto3" if boto3_ms else ""
        found.append(
            (
                f"cold start {name}: import + init (ms, median; built / dev venv)",
                f"{value} / {dev}{ratio}",
                f"< 300, <= {BOTO3_RATIO_GOAL}x boto3",
            )
        )
        if name in after_restore:
            found.append(
                (
                    f"  {name}: first request after a SnapStart restore (ms, median, built)",
                    str(after_restore[name]),
                    "",
                )
            )
        if name in first_requests:
            found.append(
                (
                    f"  {name}: import + init + first request (ms, median, built)",
                    str(first_requests[name]),
                    "< 400",
                )
            )
        by_library = results.get("import_ms_by_library", {}).get(name)
        if by_library:
            largest = ", ".join(f"{library} {ms}" for library, ms in list(by_library.items())[:4])
            found.append((f"  {name}: import time by library (ms, -X importtime)", largest, ""))
    return found


def table(results: dict[str, Any]) -> str:
    lines = rows(results)
    width = max(len(measure) for measure, _, _ in lines)
    value_width = max(len(value) for _, value, _ in lines)
    header = f"{'measure'.ljust(width)}  {'value'.ljust(value_width)}  goal"
    body = [f"{m.ljust(width)}  {v.ljust(value_width)}  {g}" for m, v, g in lines]
    took = ", ".join(f"{name} {s} s" for name, s in results.get("section_seconds", {}).items())
    return "\n".join(
        [
            f"{results['machine']}, {results['date']} ({results['mode']})",
            results.get("database", ""),
            header,
            "-" * len(header),
            *body,
            "-" * len(header),
            f"took: {took}",
        ]
    )


def write_markdown(results: dict[str, Any]) -> None:
    # A row indented under another in the printed table keeps its indent (Markdown
    # would collapse the spaces).
    lines = "\n".join(
        f"| {'&emsp;' if m.startswith('  ') else ''}{m.strip()} | {v} | {g} |"
        for m, v, g in rows(results)
    )
    (PROJECT_ROOT / "docs" / "performance.md").write_text(
        PERFORMANCE_MD.format(
            machine=results["machine"],
            date=results["date"],
            database=results.get("database", ""),
            table=lines,
        )
    )


PERFORMANCE_MD = """# Performance

Generated by `make bench` from `bench/results/latest.json`; do not edit by hand.
Machine: {machine}. Date: {date}.
Database: {database}.

| measure | value | goal |
|---|---|---|
{table}

## What each number is, and what would move it

- **Backfill** runs three ways on fresh copies (`CREATE DATABASE ... TEMPLATE`) of one
  generated legacy data set (the `rft seed legacy` generator: about 1.6% of the
  bookings without a usable email, 0.4% with a staff member's, a few regular
  customers booking very often). Bookings/s is the data set's bookings over the
  time taken. Goals: the pipeline within 1.3x the floor's time, writing at most 5%
  more customer rows, its workers waiting for locks under 5% of their time, no
  stall, and the same users and links. The baseline is there for context only (its
  per-row round trips run over a local socket here).
  - *Pipeline*: from the start of `rft backfill enqueue` (batches of about 2,000
    bookings, each a range of email keys, so every customer is in one batch;
    recorded, then sent to a local SQS queue in moto) until `rft backfill status
    --check` would pass. The worker handler is invoked the way Lambda's event source
    mapping does it (`SqsPoller`), with the template's batch size and maximum
    concurrency (the "workers" row), each concurrent invocation on its own thread and
    pooled connection, all sharing the two cores with PostgreSQL and moto.
  - *Floor*: plain SQL in one transaction (`FLOOR` in `bench/backfill.py`): the
    candidates with the same email rules into a temporary table, one `INSERT` of the
    customers, one `UPDATE` linking the bookings, after which the statistics triggers
    run once for everybody. It is written apart from the worker, and its users and
    links must equal the pipeline's (counts, and digests of every user row and of
    every link): "same users and links".
  - *Baseline*: the legacy per-row algorithm on the first unlinked bookings (20,000
    in the full run): for each, in its own transaction, look the customer up by
    normalised email, insert them if missing, link the booking, then recompute that
    customer's statistics (itself, with the same definition; the trigger is off on
    that copy). Its rate is extrapolated to the whole data set.
  - What moves them. "Customer rows written" is `users` rows inserted or
    rewritten, from PostgreSQL's own statistics (`n_tup_ins + n_tup_upd`), in the
    pipeline's database and the floor's: both insert each new customer and then
    write its statistics once. Were a customer's bookings spread over several
    batches (as when batches were ranges of booking ids), each would upsert them
    and recompute their statistics again, updating the user's indexes (the trigram
    one included) every time, and concurrent batches sharing them would queue on
    their row locks. "Waiting for locks" is the share of the workers' time spent
    waiting (sampled from `pg_stat_activity`), "running SQL" the share spent
    working; the counters behind the admin list's totals are written once per
    batch, at its end, so they are no shared hot row either. The baseline pays five or six round
    trips per booking (BEGIN, three or four statements, COMMIT) on a local unix
    socket; behind RDS Proxy each costs about a millisecond more, which would slow
    the baseline several times and hardly touch the pipeline's few statements per
    2,000 bookings. A stall (no batch finishing for 30 s) is counted and logged with
    the queue's state; a failed batch comes back only after the queue's visibility
    timeout (6 minutes), and a statement that outlives the 20 s socket timeout is
    retried once on a fresh connection instead.
- **Booking latency** is the warm `create_booking` handler called in-process with a
  real API Gateway event, from parsing to response, against the embedded PostgreSQL
  over a unix socket: it is the Lambda's own time, not API Gateway's or the network's.
  It is dominated by the SQL round trips (claim the idempotency key, lock the
  session, upsert the customer, insert the booking with its seat check, store the
  response) and by pydantic validation. Each statement and the COMMIT is one round
  trip; BEGIN travels with the first statement and nothing pings the connection
  first (pg8000 alone takes three per statement, one for BEGIN, and SQLAlchemy's
  ping one more; `rft_common.db.postgres` sends messages together and replaces a
  connection found dead), so network latency to RDS Proxy adds about one round trip time per
  statement in AWS. Goal: p99 under 8 ms on every run; its tail follows the
  machine's load (PostgreSQL shares the two cores).
- **Statements per booking** counts what the checkout executes through pg8000's
  cursor (it runs SQL text without SQLAlchemy; BEGIN/COMMIT excluded);
  **round trips** count the times the client sends and waits for PostgreSQL.
- **Throughput** runs 8 processes, each a warm handler like a Lambda environment,
  for a fixed time: on one hot session every booking waits for the session row lock
  (that serialisation is what makes overbooking impossible), on many sessions they
  proceed in parallel, bounded by the 2 cores that also run PostgreSQL.
- **Admin queries** run on generated legacy data linked by the backfill floor (300,000
  customers and 1,000,000 bookings in the full run), through the admin domain
  functions the routes call (`list_users`, `get_user_detail`), in-process on one warm
  connection: the database and the Python building the page, not Lambda's routing or
  JSON encoding. The server has the memory settings RDS gives the recommended instance
  (the "Database" line above). A list sample is one page of 20 with its total (exact
  up to 10,000 matches, then capped), in one read-only snapshot; the match counts in
  the table are exact, counted apart. Search terms rotate over random customers: an
  email prefix is the address up to its last two characters before the `@`; a name
  substring is a name without its first letter and the surname's last two (`livia
  pat`); the broad one is a surname alone, which this generator gives to 1 customer in
  14 (far more than any real surname). Deep pages are page 50 of the default sort, by
  cursor and by offset; the detail is the profile, statistics, upcoming sessions and
  first page of history of the customer whose number of bookings is nearest 200. Goal:
  p95 under 25 ms. What moves them: a search's total counts matches through the
  trigram index, so it grows with the number of matches up to 10,000 and no further;
  whether `users` and its indexes fit in `shared_buffers` (they do in 1 GB at this
  size); a rare term's page walks the sort's index, filtering, until it has a page, so
  it grows as matches get rarer; an offset page reads and discards every row before
  it, a cursor page seeks to it. `plans` in the results JSON lists the scans each
  statement uses (from `EXPLAIN`); no plan may read `users` sequentially. The renewals
  page (`list_renewals`, 20 samples) has no goal set: it computes every certificate
  taken in the window's sessions, with the anti-join for a later booking of the same
  course, for its page and again for its total, so it grows with the bookings in the
  window (about 27,000 at this size for 90 days), not with the page.
- **Cold start** runs each handler of the `sam build` artifacts in a fresh interpreter
  with Python 3.13 and boto3 only, as Lambda does (the layer and the functions' own
  libraries ship precompiled bytecode because Lambda cannot write `.pyc` files), medians
  of `cold_start_runs` interpreters. *Import + init* is the handler module's import
  (goal < 300 ms); *first request* adds one real request in the same interpreter (goal <
  400 ms): a checkout that books a seat, the sign-in's /me, the admin users list with an
  admin token, the OpenAPI document (rendered into the layer by `sam build`, so read
  from a file), a backfill batch, a signed Stripe event; it includes the database
  connection and pg8000's import, the flag file read, the first statements' compilation
  and, for the checkout, email-validator's import (on the first email check). The
  dev-venv figure (import only, Python 3.11, the test dependencies installed) is for
  comparison. *import boto3 alone* is the yardstick on the same runtime: each function's
  import + init should take at most 0.8 times as long. *First request after a SnapStart
  restore* is what production serves: a fresh interpreter imports the handler with
  Lambda's hook library emulated, runs the before-snapshot hooks (the warm-up steps
  registered with `rft_common.core.snapstart.warm`: pg8000, every route's validation,
  the email validator...), then the after-restore hooks, and only then is one request
  timed, on a fresh database connection (API functions only). *Import time by library*
  divides `python -X importtime` of the built handler (a separate run, with the
  profiler's own overhead) among the libraries: each module's own time goes to its
  library, a standard-library module's to the library (or our `rft_common`) that loaded
  it first. A module two libraries need is charged to the first: asyncio goes to
  whichever of SQLAlchemy and the Powertools event handler imports it first, and
  dropping that one alone would save less than its share. The whole division per
  function is `import_ms_by_library` in the results JSON, and the top ten modules by
  cumulative time `import_profile`. What remains is libraries each request needs:
  pydantic with the Powertools event handler and its OpenAPI validation, the Powertools
  logger, for the admin PyJWT, and SQLAlchemy Core (it imports asyncio for its async
  engine) in every function but the checkout's, the webhook's and the sign-in's, which
  run SQL text on pg8000 (`rft_common.db.postgres`) to leave it out. All figures scale
  with the machine's load: this two-core machine is shared, and a busy run can double
  them. With SnapStart (README) a restored environment skips import and init altogether:
  its cold start is the restore and then the first request after it.
- **Sizes** are the `sam build` artifacts unzipped (goal: layer < 15 MB). The layer
  carries SQLAlchemy Core, pydantic(-core), Powertools, pg8000, PyJWT and
  email-validator as bytecode, without boto3/botocore (the runtime's); libraries
  that only one or two functions use ship with those functions, which is why the
  checkout's function holds Stripe's SDK.
"""
