"""``rft certificates issue``: issue the certificates of every completed session now.

In AWS the scheduled ``CertificatesFunction`` does this (hourly, when enabled); this
runs the same job at once. The database is the local stack's, or ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import json

from rft_tools.local.db import app_database


def register(subcommands: argparse._SubParsersAction) -> None:
    certificates = subcommands.add_parser("certificates", help="attendees' certificates")
    verbs = certificates.add_subparsers(dest="verb", required=True)
    verbs.add_parser(
        "issue", help="issue a certificate to every attendee of a completed session"
    ).set_defaults(handler=_issue)


def _issue(_: argparse.Namespace) -> int:
    from rft_common.certificates.service import issue_certificates

    with app_database():
        report = issue_certificates()
    print(json.dumps(report.as_dict()))
    return 0
