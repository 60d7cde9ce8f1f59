"""Contract fuzzing at scale: ``rft_tools.checks.contract`` with many examples per operation.

The stack holds the demo sessions (the document's checkout example books session 1)
and a slice of legacy bookings, which the backfill links while the fuzzer runs, so
the admin routes list, search, show and edit real customers. One row per operation:
requests sent and distinct failed checks. Afterwards the data must still hold its
invariants, whatever the fuzzer's bookings and edits did (seats are checked on the
demo sessions only: the legacy data is overbooked by design).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from rft_common.db.postgres import transaction_at
from rft_common.staff.routes import LOGIN_EXAMPLE
from rft_common.staff.service import save_staff_member
from rft_tools.checks.contract import check_contract
from rft_tools.checks.integrity import duplicate_customers, oversold_sessions, stats_mismatches
from rft_tools.data.demo import seed_demo
from rft_tools.data.legacy import seed_legacy
from stress.stack import running_stack

LEGACY_BOOKINGS = 5_000
LEGACY_CUSTOMERS = 2_000
FAILURES_SHOWN = 10


def run(max_examples: int) -> list[dict[str, Any]]:
    demo_sessions: list[int] = []
    staff_ids: list[int] = []

    def prepare(engine: Engine) -> None:
        with engine.begin() as connection:
            demo_sessions.extend(session["session_id"] for session in seed_demo(connection))
            seed_legacy(connection, bookings=LEGACY_BOOKINGS, customers=LEGACY_CUSTOMERS)
        # The login example signs in, and /me knows the token's admin.
        url = engine.url.render_as_string(hide_password=False)
        with transaction_at(url) as connection:
            staff_id, _ = save_staff_member(
                connection, name="Stress Admin", role="admin", **LOGIN_EXAMPLE
            )
        staff_ids.append(staff_id)

    with running_stack(prepare) as stack:
        token = stack.rft("dev", "token", "--role", "admin", "--id", str(staff_ids[0])).strip()
        stack.rft("backfill", "enqueue")
        report = check_contract(stack.api, token, max_examples=max_examples)
        with stack.engine.connect() as connection:
            broken = {
                "duplicate customers": len(duplicate_customers(connection)),
                "oversold demo sessions": len(oversold_sessions(connection, demo_sessions)),
                "statistics off a recomputation": len(stats_mismatches(connection)),
            }
    rows = [
        {
            "scenario": f"contract: {operation}",
            "cases": cases,
            "failures": len(report.failures.get(operation, [])),
            "detail": str(dict(sorted(report.statuses[operation].items()))),
        }
        for operation, cases in sorted(report.cases.items())
    ]
    rows += [
        {"scenario": f"contract: {label}", "cases": 0, "failures": len(entries), "detail": ""}
        for label, entries in report.failures.items()
        if label not in report.cases
    ]
    rows.append(
        {
            "scenario": "contract: schemathesis errors",
            "cases": 1,
            "failures": len(report.errors),
            "detail": "; ".join(report.errors)[:200],
        }
    )
    rows += [
        {"scenario": f"contract: {name} afterwards", "cases": 1, "failures": count, "detail": ""}
        for name, count in broken.items()
    ]
    for line in report.describe_failures().split("\n\n")[:FAILURES_SHOWN]:
        if line:
            print("contract failure:", line)
    return rows
