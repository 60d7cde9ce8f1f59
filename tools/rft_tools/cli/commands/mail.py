"""``rft mail list``: the emails the local stack sent (moto's SES), newest first.
``rft mail screenshots``: every kind of email checked in Chromium and saved as a picture."""

from __future__ import annotations

import argparse
import json
import os


def register(subcommands: argparse._SubParsersAction) -> None:
    mail = subcommands.add_parser("mail", help="email the local stack sent")
    verbs = mail.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="the messages, newest first")
    listing.add_argument("--to", help="only messages to this address")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    listing.add_argument(
        "--endpoint",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="the local AWS endpoint (make run prints it as aws_endpoint; "
        "default $AWS_ENDPOINT_URL)",
    )
    listing.set_defaults(handler=_list)
    screenshots = verbs.add_parser(
        "screenshots",
        help="every kind of email, checked in Chromium and saved as a PNG (make email-screenshots)",
    )
    screenshots.add_argument("--output", default="docs/emails", help="where the PNGs go")
    screenshots.set_defaults(handler=_screenshots)


def _list(arguments: argparse.Namespace) -> int:
    from rft_tools.local.mail import sent_mail

    if not arguments.endpoint:
        print("no local AWS endpoint: pass --endpoint (make run prints aws_endpoint)")
        return 2
    messages = sent_mail(arguments.endpoint, to=arguments.to)
    if arguments.json:
        print(json.dumps([mail.as_json() for mail in messages], indent=2))
        return 0
    for mail in messages:
        print(f"To: {', '.join(mail.to)}\nFrom: {mail.sender}\nSubject: {mail.subject}")
        for link in mail.links:
            print(f"Link: {link}")
        print(f"\n{mail.text.rstrip()}\n\n{'-' * 72}")
    if not messages:
        print("no messages")
    return 0


def _screenshots(arguments: argparse.Namespace) -> int:
    from pathlib import Path

    from rft_tools.checks.email_pages import CHROMIUM, check_emails

    if not CHROMIUM.exists():
        print(f"rft mail screenshots needs Chromium at {CHROMIUM}: apt-get install chromium")
        return 2
    checks = check_emails(Path(arguments.output))
    for check in checks:
        verdict = "ok" if not check.problems else "; ".join(check.problems)
        print(f"{check.kind}: {check.screenshot} ({verdict})")
    return 1 if any(check.problems for check in checks) else 0
