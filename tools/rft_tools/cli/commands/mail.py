"""``rft mail list``: the emails the local stack sent (moto's SES), newest first."""

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
