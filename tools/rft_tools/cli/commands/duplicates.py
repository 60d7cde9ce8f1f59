"""``rft duplicates scan``: find the duplicate candidates of customers written in bulk.

In AWS the scheduled ``DuplicateScanFunction`` does this every 5 minutes, and
``make run`` every 30 seconds; this drains the whole queue at once. The database is
the local stack's, or ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import json
import time

from rft_tools.local.db import app_database


def register(subcommands: argparse._SubParsersAction) -> None:
    duplicates = subcommands.add_parser("duplicates", help="duplicate customer candidates")
    verbs = duplicates.add_subparsers(dest="verb", required=True)
    verbs.add_parser(
        "scan", help="find the candidates of every customer queued by a bulk write"
    ).set_defaults(handler=_scan)


def _scan(_: argparse.Namespace) -> int:
    from rft_common.users.duplicates import SCAN_SOCKET_TIMEOUT_SECONDS, scan_queued

    started = time.perf_counter()
    with app_database(DB_SOCKET_TIMEOUT_SECONDS=SCAN_SOCKET_TIMEOUT_SECONDS):
        scanned, remaining = scan_queued(budget_seconds=float("inf"))
    seconds = round(time.perf_counter() - started, 1)
    print(json.dumps({"scanned": scanned, "still_queued": remaining, "seconds": seconds}))
    return 0
