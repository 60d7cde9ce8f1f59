"""``rft duplicates scan``: find the duplicate candidates of customers written in bulk.

In AWS the scheduled ``DuplicateScanFunction`` does this every 5 minutes; the local
stack has no scheduler. The database is the local stack's, or ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from sqlalchemy import Connection, create_engine

from rft_tools.local_db import local_database


def register(subcommands: argparse._SubParsersAction) -> None:
    duplicates = subcommands.add_parser("duplicates", help="duplicate customer candidates")
    verbs = duplicates.add_subparsers(dest="verb", required=True)
    verbs.add_parser(
        "scan", help="find the candidates of every customer queued by a bulk write"
    ).set_defaults(handler=_scan)


def _scan(_: argparse.Namespace) -> int:
    from rft_common.admin.duplicates import scan_queued

    started = time.perf_counter()
    with local_database() as url:
        engine = create_engine(url)

        def transaction(work: Callable[[Connection], int]) -> int:
            with engine.begin() as connection:
                return work(connection)

        try:
            scanned, remaining = scan_queued(budget_seconds=float("inf"), transaction=transaction)
        finally:
            engine.dispose()
    seconds = round(time.perf_counter() - started, 1)
    print(json.dumps({"scanned": scanned, "still_queued": remaining, "seconds": seconds}))
    return 0
