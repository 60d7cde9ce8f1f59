"""Mixed traffic for minutes: bookings across sessions, admin searches, backfill running.

Parallel clients on loopback drive the local stack (``rft run``) while ``rft backfill
enqueue`` feeds the worker. Afterwards the data must hold every invariant: no
duplicate customers, no oversold session, statistics equal to a recomputation, and
every linkable legacy booking linked.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, text

from rft_tools.checks.integrity import duplicate_customers, oversold_sessions, stats_mismatches
from rft_tools.data.legacy import seed_legacy
from stress.stack import RunningStack, running_stack

LIVE_SESSIONS = 100
SEATS = 12
PRICE = 75
LEGACY_BOOKINGS = 50_000
LEGACY_CUSTOMERS = 18_000
EXPECTED = {"booking": {201, 409}, "admin list": {200}, "admin detail": {200}}
ADMIN_QUERIES = (
    {"limit": 50},
    {"limit": 20, "search": "load1"},
    {"limit": 20, "search": "O'Brien"},
    {"limit": 50, "sort": "totalSpent", "order": "desc"},
    {"limit": 50, "sort": "name", "order": "asc", "hasBookings": "true"},
)


@dataclass
class Outcome:
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, status: int, elapsed_ms: float, detail: str) -> None:
        with self.lock:
            self.statuses[kind][status] += 1
            self.latencies_ms[kind].append(elapsed_ms)
            if status not in EXPECTED[kind]:
                self.unexpected.append(f"{kind} {status}: {detail[:200]}")


def _prepare(engine: Engine) -> None:
    with engine.begin() as connection:
        seed_legacy(connection, bookings=LEGACY_BOOKINGS, customers=LEGACY_CUSTOMERS)
        course = connection.execute(
            text(
                "INSERT INTO courses (name, price, course_type) "
                "VALUES ('Stress course', :price, 'EFAW') RETURNING id"
            ),
            {"price": PRICE},
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO course_schedules (course_id, start_datetime, end_datetime, venue, "
                "price, max_capacity) SELECT :course, now() + i * interval '1 day', "
                "now() + i * interval '1 day' + interval '6 hours', 'Stress', :price, :seats "
                "FROM generate_series(1, :count) AS i"
            ),
            {"course": course, "price": PRICE, "seats": SEATS, "count": LIVE_SESSIONS},
        )


def _call(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _client(
    stack: RunningStack,
    token: str,
    sessions: list[int],
    deadline: float,
    outcome: Outcome,
    seed: int,
) -> None:
    rng = random.Random(seed)
    known_users: list[int] = []
    while time.monotonic() < deadline:
        roll = rng.random()
        started = time.perf_counter()
        if roll < 0.6:
            kind = "booking"
            attendees = rng.randint(1, 3)
            person = rng.randrange(3000)
            email = rng.choice([f"load{person}@example.com", f" Load{person}@Example.COM"])
            status, body = _call(
                "POST",
                f"{stack.api}/api/bookings",
                {
                    "courseSessionId": rng.choice(sessions),
                    "firstName": "Load",
                    "lastName": "O'Brien" if person % 7 == 0 else "Tester",
                    "email": email,
                    "numberOfParticipants": attendees,
                    "totalAmount": PRICE * attendees,
                },
            )
        elif roll < 0.85 or not known_users:
            kind = "admin list"
            query = urlencode(rng.choice(ADMIN_QUERIES))
            status, body = _call("GET", f"{stack.api}/api/admin/users?{query}", token=token)
            if status == 200:
                known_users = [item["id"] for item in json.loads(body)["data"]] or known_users
        else:
            kind = "admin detail"
            user_id = rng.choice(known_users)
            status, body = _call("GET", f"{stack.api}/api/admin/users/{user_id}", token=token)
        outcome.record(kind, status, (time.perf_counter() - started) * 1000, body)


def _wait_for_backfill(stack: RunningStack, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = json.loads(stack.rft("backfill", "status", "--json"))
        if status["remaining_linkable"] == 0:
            return True
        time.sleep(2)
    return False


def run(duration_s: float, clients: int) -> list[dict[str, Any]]:
    with running_stack(_prepare) as stack:
        token = stack.rft("dev", "token", "--role", "admin", "--sub", "stress").strip()
        with stack.engine.connect() as connection:
            sessions = (
                connection.execute(text("SELECT id FROM course_schedules WHERE venue = 'Stress'"))
                .scalars()
                .all()
            )
        outcome = Outcome()
        deadline = time.monotonic() + duration_s
        threads = [
            threading.Thread(target=_client, args=(stack, token, sessions, deadline, outcome, seed))
            for seed in range(clients)
        ]
        for thread in threads:
            thread.start()
        stack.rft("backfill", "enqueue")
        for thread in threads:
            thread.join()
        backfill_done = _wait_for_backfill(stack, timeout_s=300)
        with stack.engine.connect() as connection:
            invariants = {
                "duplicate customers": len(duplicate_customers(connection)),
                "oversold sessions": len(oversold_sessions(connection, list(sessions))),
                "statistics off a recomputation": len(stats_mismatches(connection)),
            }
        status = json.loads(stack.rft("backfill", "status", "--json"))
    return _summary(outcome, invariants, backfill_done, status)


def _summary(
    outcome: Outcome, invariants: dict[str, int], backfill_done: bool, backfill: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    for kind, statuses in sorted(outcome.statuses.items()):
        latencies = outcome.latencies_ms[kind]
        cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        unexpected = sum(n for status, n in statuses.items() if status not in EXPECTED[kind])
        rows.append(
            {
                "scenario": f"load: {kind}",
                "cases": sum(statuses.values()),
                "failures": unexpected,
                "detail": f"{dict(statuses)}, p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms",
            }
        )
    rows += [
        {"scenario": f"load: {name}", "cases": 1, "failures": count, "detail": ""}
        for name, count in invariants.items()
    ]
    rows.append(
        {
            "scenario": "load: backfill finished during the run",
            "cases": 1,
            "failures": 0 if backfill_done else 1,
            "detail": f"linked {backfill['bookings_linked']}, unlinkable {backfill['unlinkable']}",
        }
    )
    for line in outcome.unexpected[:5]:
        print("unexpected:", line)
    return rows
