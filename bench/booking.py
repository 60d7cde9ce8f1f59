"""The booking path: warm latency, statements per booking, throughput under concurrency."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.environment import fresh_database, use_database
from rft_tools.paths import PROJECT_ROOT

HANDLER = PROJECT_ROOT / "functions" / "create_booking" / "app.py"
WORKER_PROCESSES = 8


def _load_handler() -> Any:
    spec = importlib.util.spec_from_file_location("bench_create_booking", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from rft_common.core.observability import logger

    # Logs are formatted as in Lambda, then discarded instead of flooding the terminal.
    logger.registered_handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    return module


class _Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-2:123456789012:function:bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def _event(session_id: int, email: str, key: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"} | ({"Idempotency-Key": key} if key else {})
    body = {
        "courseSessionId": session_id,
        "firstName": "Bench",
        "lastName": "Customer",
        "email": email,
        "phone": "07700 900000",
        "company": None,
        "numberOfParticipants": 1,
        "totalAmount": 75.00,
    }
    return {
        "resource": "/api/bookings",
        "path": "/api/bookings",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": "bench",
            "resourcePath": "/api/bookings",
            "httpMethod": "POST",
            "stage": "bench",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _add_sessions(url: str, count: int, capacity: int) -> list[int]:
    engine = create_engine(url)
    with engine.begin() as connection:
        course_id = connection.execute(
            text(
                "INSERT INTO courses (name, price, course_type) "
                "VALUES ('Bench course', 75, 'EFAW') RETURNING id"
            )
        ).scalar_one()
        ids = (
            connection.execute(
                text(
                    "INSERT INTO course_schedules (course_id, start_datetime, end_datetime, venue, "
                    "price, max_capacity) SELECT :course, now() + i * interval '1 hour', "
                    "now() + i * interval '1 hour' + interval '6 hours', 'Bench', 75, :capacity "
                    "FROM generate_series(1, :count) AS i RETURNING id"
                ),
                {"course": course_id, "capacity": capacity, "count": count},
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return list(ids)


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
    }


def _latency(handler: Any, sessions: list[int], emails: list[str]) -> list[float]:
    """Milliseconds per booking; metrics (EMF on stdout, as in Lambda) are discarded."""
    samples = []
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for session_id, email in zip(sessions, emails, strict=True):
            started = time.perf_counter()
            response = handler.lambda_handler(_event(session_id, email), _Context())
            samples.append((time.perf_counter() - started) * 1000)
            if response["statusCode"] != 201:
                raise RuntimeError(f"unexpected {response['statusCode']}: {response['body']}")
    return samples


TRANSACTION_CONTROL = frozenset({"begin transaction", "commit", "rollback"})


def _statements_per_booking(handler: Any, session_id: int) -> dict[str, int]:
    """SQL statements the checkout sends per booking (each one ``rft_common.db.postgres``
    hands to pg8000, BEGIN and COMMIT left out), and round trips to PostgreSQL (the times
    the client sends what it has buffered and waits for the answer)."""
    from pg8000 import core

    from rft_common.db.adaptations import AdaptedConnection

    executed: list[str] = []
    flushes: list[int] = []
    flush = core._flush
    execute_unnamed = AdaptedConnection.execute_unnamed
    execute_simple = AdaptedConnection.execute_simple

    def counted(send: Callable[..., Any]) -> Callable[..., Any]:
        def counting(connection: Any, statement: str, *args: Any, **kwargs: Any) -> Any:
            if statement.strip().lower() not in TRANSACTION_CONTROL:
                executed.append(statement)
            return send(connection, statement, *args, **kwargs)

        return counting

    def counting_flush(sock: Any) -> None:
        flushes.append(1)
        flush(sock)

    def book(session: int, email: str, key: str | None = None) -> tuple[int, int]:
        executed.clear()
        flushes.clear()
        handler.lambda_handler(_event(session, email, key), _Context())
        return len(executed), len(flushes)

    AdaptedConnection.execute_unnamed = counted(execute_unnamed)  # type: ignore[method-assign]
    AdaptedConnection.execute_simple = counted(execute_simple)  # type: ignore[method-assign]
    core._flush = counting_flush
    try:
        plain, plain_trips = book(session_id, "counted@example.com")
        keyed, keyed_trips = book(session_id + 1, "keyed@example.com", "k-1")
    finally:
        core._flush = flush
        AdaptedConnection.execute_unnamed = execute_unnamed  # type: ignore[method-assign]
        AdaptedConnection.execute_simple = execute_simple  # type: ignore[method-assign]
    return {
        "without_idempotency_key": plain,
        "with_idempotency_key": keyed,
        "round_trips_without_idempotency_key": plain_trips,
        "round_trips_with_idempotency_key": keyed_trips,
    }


def _worker(
    url: str,
    flags_file: str,
    sessions: list[int],
    prefix: str,
    seconds: float,
    start: Any,
    results: Any,
) -> None:
    use_database(url, flags_file)
    handler = _load_handler()
    statuses: dict[int, int] = {}
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - this process only measures
    start.wait()
    deadline = time.perf_counter() + seconds
    index = 0
    while time.perf_counter() < deadline:
        session_id = sessions[index % len(sessions)]
        status = handler.lambda_handler(
            _event(session_id, f"{prefix}-{index}@example.com"), _Context()
        )["statusCode"]
        statuses[status] = statuses.get(status, 0) + 1
        index += 1
    results.put(statuses)


def _throughput(
    url: str, flags_file: str, session_sets: list[list[int]], seconds: float, label: str
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(session_sets) + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=_worker, args=(url, flags_file, sessions, f"{label}{n}", seconds, start, results)
        )
        for n, sessions in enumerate(session_sets)
    ]
    for worker in workers:
        worker.start()
    start.wait()
    totals: dict[int, int] = {}
    for _ in workers:
        for status, count in results.get().items():
            totals[status] = totals.get(status, 0) + count
    for worker in workers:
        worker.join()
    return {
        "per_s": round(totals.get(201, 0) / seconds, 1),
        "statuses": {str(k): v for k, v in sorted(totals.items())},
    }


def run(server_url: str, flags_file: Path, *, quick: bool) -> dict[str, Any]:
    samples = 200 if quick else 2000
    seconds = 3.0 if quick else 10.0
    url = fresh_database(server_url, "bench_booking")
    use_database(url, str(flags_file))
    sessions = _add_sessions(url, samples + 2, capacity=1000)
    handler = _load_handler()
    handler.lambda_handler(_event(sessions[0], "warmup@example.com"), _Context())

    new = _latency(
        handler, sessions[1 : samples + 1], [f"new{i}@example.com" for i in range(samples)]
    )
    returning = _latency(handler, sessions[1 : samples + 1], ["warmup@example.com"] * samples)
    statements = _statements_per_booking(handler, sessions[-2])

    hot_session = _add_sessions(url, 1, capacity=10**6)
    many = _add_sessions(url, 4000, capacity=10**6)
    hot = _throughput(url, str(flags_file), [hot_session] * WORKER_PROCESSES, seconds, "hot")
    spread = _throughput(
        url,
        str(flags_file),
        [many[n::WORKER_PROCESSES] for n in range(WORKER_PROCESSES)],
        seconds,
        "many",
    )
    from rft_common.db.postgres import reset_pool

    reset_pool()
    return {
        **_percentiles(new + returning),
        "new_customer": _percentiles(new),
        "returning_customer": _percentiles(returning),
        "samples": len(new) + len(returning),
        "statements_per_booking": statements["with_idempotency_key"],
        "statements": statements,
        "throughput_per_s": {"hot_session": hot["per_s"], "many_sessions": spread["per_s"]},
        "throughput_statuses": {
            "hot_session": hot["statuses"],
            "many_sessions": spread["statuses"],
        },
        "worker_processes": WORKER_PROCESSES,
        "throughput_seconds": seconds,
    }
