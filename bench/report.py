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
            "  same users, links, attendees and certificates as the floor",
            f"{'yes' if backfill['same_result_as_floor'] else 'NO'} "
            f"({backfill['bookings_linked']:,} linked, "
            f"{backfill['customers_created']:,} customers created"
            + (
                f", {backfill['attendees_written']:,} attendees, "
                f"{backfill['certificates_issued']:,} certificates"
                if "certificates_issued" in backfill
                else ""
            )
            + ")",
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
ADMIN_GOALS = {"duplicates_first_page": "p95 < 200"}


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


RENEWAL_PAGES = {
    "first": "first page",
    "page_10": "page 10 by cursor",
    "may_contact": ("first page of those who may be contacted"),
}


def _renewals_rows(renewals: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = [
        (
            f"renewals at {renewals['bookings']:,} bookings, {renewals['certificates']:,} "
            "certificates: p50 / p95 (ms)",
            "",
            "",
        )
    ]
    for days, window in renewals["windows"].items():
        for key, label in RENEWAL_PAGES.items():
            found.append(
                (
                    f"  within {days} days ({window['total']:,}"
                    f"{'' if window['total_is_exact'] else '+'} due), {label}",
                    f"{window['p50_ms'][key]} / {window['p95_ms'][key]}",
                    "p95 < 25",
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
    if results.get("renewals"):
        found += _renewals_rows(results["renewals"])
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
        + "\n"
        + PERFORMANCE_NOTES
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
    run once for everybody, one `INSERT` of each booker as their booking's attendee,
    and the certificates job's statement. It is written apart from the worker, and its
    users, links, attendees and certificates must equal the pipeline's (counts, and
    digests of every user row, every link, every attendee and every certificate but its
    number): "same users, links, attendees and certificates". The pipeline's time
    includes the certificates job run once linking is done.
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
  response) and by pydantic validation. The customer upsert and the booking insert
  are PL/pgSQL functions (migrations 0028 and 0027), planned once per connection:
  sent as statements, each was parsed and planned on every booking (interleaved A/B of
  paid bookings, 1,034 each: p99 6.04 -> 5.38 ms for the booking insert, then 5.62 ->
  4.70 ms for the customer upsert). Each statement and the COMMIT is one round
  trip; BEGIN travels with the first statement and nothing pings the connection
  first (pg8000 alone takes three per statement, one for BEGIN, and SQLAlchemy's
  ping one more; `rft_common.db.postgres` sends messages together and replaces a
  connection found dead), so network latency to RDS Proxy adds about one round trip time per
  statement in AWS. Goal: p99 under 8 ms on every run; its tail follows the
  machine's load (PostgreSQL shares the two cores).
- **Statements per booking** counts what the checkout hands to pg8000 (its
  `execute_unnamed` and `execute_simple`; BEGIN/COMMIT excluded);
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
  statement uses (from `EXPLAIN`); no plan may read `users` sequentially. The
  renewals page here is the default window's first page (20 samples).
- **Renewals** run on their own copy of that data (legacy data linked by the backfill
  floor, which also writes each booker's attendee row and the certificates job's
  certificates, so renewals are read from certificates as in production), through
  `list_renewals` in-process like the admin queries: for windows of 30, 90 and 365
  days, the first page, page 10 reached by cursor and the first page filtered to those
  who may be contacted (two customers in five are given marketing consent: legacy
  bookings carry none), each a page of 20 with its total (exact up to 100). Goal:
  p95 under 25 ms for every page and window. What moves them: a page walks the partial
  index of active certificates by expiry from the window's start and probes, per
  certificate, for a later attendance of the same course type, so it grows with the
  renewed (or, filtered, the not consenting) certificates it skips, not with the
  window; the total repeats that walk up to 100 rows, so it grows with the window
  until the cap.
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
  them. With SnapStart ([deployment.md](deployment.md#cold-starts-and-snapstart)) a restored
  environment skips import and init altogether:
  its cold start is the restore and then the first request after it.
- **Sizes** are the `sam build` artifacts unzipped (goal: layer < 15 MB). The layer
  carries SQLAlchemy Core, pydantic(-core), Powertools, pg8000, PyJWT and
  email-validator as bytecode, without boto3/botocore (the runtime's); libraries
  that only one or two functions use ship with those functions, which is why the
  checkout's function holds Stripe's SDK.
"""


PERFORMANCE_NOTES = """## How to run it

`make bench` measures and reports; it never fails for being slow. It writes
`bench/results/latest.json` and regenerates `docs/performance.md`, which explains each
figure and its goal. `make bench BENCH_ARGS=--quick` finishes in under two minutes and
writes `bench/results/quick.json`, which is not committed. The sections are `backfill`
(the pipeline through SQS against a plain-SQL floor and the legacy per-row algorithm, on
1,000,000 generated legacy bookings), `booking`, `admin` (the users list and detail at
300,000 customers) and `cold_start`; pick some with `BENCH_ARGS="--only backfill,admin"`.
The last full runs took 14 to 16 minutes on this two-core machine (backfill 7-8, admin
4.5-5.5, cold starts 2, bookings 1). Its PostgreSQL is its own (`.local/pgbench`), so it
leaves the dev and test databases alone; the worker's logs of the last pipeline run are in
`.local/bench-backfill-worker.log`. `BENCH_BACKFILL_CONCURRENCY=N` runs the pipeline with
another maximum concurrency than the template's, and `BENCH_BACKFILL_BOOKINGS=N` another
data set size (for a mid-size comparison).

Every embedded PostgreSQL (dev, tests, bench) runs with the memory settings RDS gives the
recommended instance class, **db.t4g.medium** (2 vCPUs, 4 GiB): `shared_buffers` 1GB
(25%), `effective_cache_size` 2GB, `work_mem` 4MB, `maintenance_work_mem` 64MB, in one
place, `RDS_MEMORY_SETTINGS` in `tools/rft_tools/local/db.py`, so no figure rests on
memory RDS would not have. Durability is off locally (`fsync`), which RDS never does:
writes are faster here.

## Figures quoted from earlier runs, by subject

Written by hand from the runs named in each; the table above is the latest run.

### Admin users list and detail

The last three full `make bench` runs (2026-11-24, this two-core machine, 300,000
customers, 1,000,000 bookings, the recommended instance's memory settings, one warm
connection, page and total together) measured, p50 / p95 in ms, the latest run first, then
the faster and the slower of the two before it: no filter 1.8 / 2.6, 2.3 / 3.7 and 2.3 /
3.4; sorted by total spent 1.9 / 2.5, 1.9 / 2.1 and 2.2 / 3.4; page 50 by cursor 3.0 /
4.2, 2.2 / 2.7 and 2.6 / 3.9; an email prefix 4.5 / 6.9, 5.2 / 8.3 and 7.1 / 11.6; a name
substring with about 1,500 matches 11.2 / 16.3, 12.0 / 18.2 and 13.6 / 19.4; a broad
surname with about 21,600 matches 16.8 / 19.1, 17.2 / 19.8 and 20.3 / 25.8; the detail of
a customer with 204 bookings 4.4 / 5.4, 3.5 / 4.5 and 5.8 / 8.5. The slowest run is a slow
phase of this shared machine (its legacy per-row baseline ran 1.8x slower), and there the
broad surname went over the 25 ms goal. Its time is the bounded count: the trigram index
returns about 21,600 candidates in under 4 ms, and rechecking 10,001 of them on the heap
takes the rest (about 15 ms warm on a quiet machine); the page itself takes under 1 ms.
The searches were at 33 and 45 ms at p95 before the search document became a stored,
lowercased column (migration `0011`), which made the recheck a plain `LIKE`.

### Users export

300,000 customers took about 5 s here (moto S3, one connection); the function has 1,769 MB
(one vCPU) and API Gateway's 29 s.

### Duplicate candidates

The list reads a ready, sorted table: its first page took 4.0 / 6.1 ms and 5.5 / 7.5 ms
(p50 / p95, the last two full benches) at 300,000 customers with 3,595 candidate pairs
(the full `make bench`, 2026-11-24; goal p95 < 200 ms); it is one index-ordered read
whatever the number of customers.

### Retention

At 1,000,000 backfilled bookings (bookings from 2019 to 2025) the dry run took 6 s and the
apply 85 s for 29,089 customers and 29,774 bookings on this machine, well within the
function's 15 minutes.

### Cold starts by function

Where that stands (the full bench of 2026-12-06, this two-core machine; figures move by up
to 1.5x between runs here), measured as production runs them: import + init now includes
the SnapStart before-snapshot warm-up
([deployment.md](deployment.md#cold-starts-and-snapstart)), and the first request is timed
after an emulated restore, on a fresh database connection. Against `import boto3` alone on
the same Python 3.13 runtime (497 ms in that run), import + init is 0.10-0.62x for every
function (goal: at most 0.8x): the checkout 306 ms (0.62x, its warm-up loads the email
validator, Stripe's SDK and every route's validation), the webhook 192, staff sign-in 202,
admin users 244 (was 364 with SQLAlchemy), the backfill worker 185 (was 316), the
duplicate scan 153 (was 297), retention 165, the API docs 224, the email and certificate
functions 49-60. The first request after a restore takes 3-48 ms (the checkout 45, admin
users 38, sign-in 48, the webhook 5). No function imports SQLAlchemy any more, and the
layer is 11.1 MB (was 14.4). What is left in every import is Powertools' event handler and
logger and pydantic with our models; the table above divides each function's import time
among its libraries.

### Layer size

The layer holds only what the functions import, under 15 MB unzipped (14.4 MB in the last
full bench, with the rendered API document; 23.2 MB before issue 12).
`bench/results/latest.json` has the current size.

### One way to PostgreSQL

SQL text on pg8000 was chosen by measurement
([architecture.md](architecture.md#one-way-to-postgresql)): before it, SQLAlchemy was the
largest single cost in every function's import (120-150 ms of `-X importtime`), and the
functions that did not import it started (import + init) in 185-220 ms against 297-364 ms
for those that did (bench of 2026-11-25).
"""
"""How to run the bench, and figures of earlier runs that other pages cite (by hand)."""
