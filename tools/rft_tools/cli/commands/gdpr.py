"""``rft gdpr export | retention``: subject access and retention (docs/privacy.md).

The database is the local stack's, or ``DATABASE_URL`` (as for ``rft db upgrade``).
Both are audited or logged like their admin API counterparts; the export's audit
row names the operator as ``rft-cli:<login name>``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from rft_tools.local.db import app_database


def register(subcommands: argparse._SubParsersAction) -> None:
    gdpr = subcommands.add_parser("gdpr", help="UK GDPR: subject access export, retention")
    verbs = gdpr.add_subparsers(dest="verb", required=True)
    export = verbs.add_parser(
        "export", help="everything held about a person, as JSON (audited as a data export)"
    )
    export.add_argument("--email", required=True, help="the person's email (any case)")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    export.set_defaults(handler=_export)
    retention = verbs.add_parser(
        "retention", help="erase customers with no booking for the retention period (7 years)"
    )
    mode = retention.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="count only; change nothing")
    mode.add_argument("--apply", action="store_true", help="erase them")
    retention.add_argument(
        "--years", type=int, help="retention period (default: RETENTION_YEARS, else 7)"
    )
    retention.set_defaults(handler=_retention)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), an existing file too:
    a person's data must not become readable by everyone on the machine."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def _export(arguments: argparse.Namespace) -> int:
    from rft_common.core.errors import NotFound
    from rft_common.customers.audit import Actor
    from rft_common.privacy.service import export_user_data, user_id_for_email

    with app_database():
        try:
            user_id = user_id_for_email(arguments.email)
        except NotFound as error:
            print(error.message, file=sys.stderr)
            return 1
        document = export_user_data(user_id, actor=Actor(f"rft-cli:{getpass.getuser()}"))
    text = document.model_dump_json(indent=2)
    if arguments.output:
        write_private(arguments.output, text + "\n")
        print(f"exported user {user_id} to {arguments.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def _retention(arguments: argparse.Namespace) -> int:
    from rft_common.core.settings import get_settings
    from rft_common.privacy.service import RETENTION_SOCKET_TIMEOUT_SECONDS, run_retention

    # The scheduled function's timeout (template.yaml): at a million bookings on a cold
    # cache one statement can outlast the default 5 s.
    with app_database(DB_SOCKET_TIMEOUT_SECONDS=RETENTION_SOCKET_TIMEOUT_SECONDS):
        years = arguments.years or get_settings().retention_years
        report = run_retention(years=years, dry_run=arguments.dry_run)
    print(json.dumps(report.as_dict(), indent=2))
    return 0
