"""``rft reminders run [--dry-run]``: the daily renewal-reminder run, now.

In AWS the scheduled ``RemindersFunction`` does this (daily, when enabled); this runs
the same job at once. ``--dry-run`` records and queues nothing and prints who would get
what, by stage and skip reason (user ids and certificate numbers, no addresses). The
database is the local stack's, or ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import json

from rft_tools.local.db import app_database


def register(subcommands: argparse._SubParsersAction) -> None:
    reminders = subcommands.add_parser("reminders", help="certificate renewal reminders")
    verbs = reminders.add_subparsers(dest="verb", required=True)
    run = verbs.add_parser("run", help="remind everyone whose certificate reached a stage")
    run.add_argument(
        "--dry-run", action="store_true", help="print who would get what; record nothing"
    )
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.set_defaults(handler=_run)


def _run(arguments: argparse.Namespace) -> int:
    from rft_common.renewals.reminders import run_reminders

    with app_database(DB_SOCKET_TIMEOUT_SECONDS="300"):
        report = run_reminders(dry_run=arguments.dry_run)
    if arguments.json:
        print(json.dumps(report.as_dict()))
        return 0
    for entry in report.recipients:
        print(
            f"user {entry['recipient_id']}  stage {entry['stage']}  {entry['outcome']}: "
            + ", ".join(entry["certificates"])
        )
    summary = report.as_dict()
    for stage, outcomes in summary["by_stage"].items():
        print(f"stage {stage}: " + ", ".join(f"{o} {n}" for o, n in outcomes.items()))
    verb = "would queue" if report.dry_run else "queued"
    print(
        f"{verb} {report.messages} messages ({summary['sent']} reminders); skipped "
        f"{sum(summary['skipped'].values())}; renewals booked after a reminder "
        f"{report.renewals_booked}"
    )
    return 0
