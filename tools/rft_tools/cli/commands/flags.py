"""``rft flags show | set NAME on|off|--percent N|--allow X|--disallow X``.

They edit ``RFT_FLAGS_FILE`` (default: the local stack's ``.local/flags.json``). The
running local stack picks a change up within ``FLAGS_MAX_AGE_SECONDS``. Pointed at a
copy of the deployed document, they prepare the next AppConfig version
(docs/operations.md, "Feature flags").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rft_common.aws.flags import CUSTOMER_ACCOUNTS, SAFE_VALUES
from rft_tools.checks import flag_document
from rft_tools.checks.flag_document import FlagDocumentError


def register(subcommands: argparse._SubParsersAction) -> None:
    flags = subcommands.add_parser(
        "flags", help="show or change the flag document (RFT_FLAGS_FILE or .local/flags.json)"
    )
    verbs = flags.add_subparsers(dest="verb", required=True)
    verbs.add_parser("show", help="what each flag does, as JSON").set_defaults(handler=_show)
    change = verbs.add_parser(
        "set",
        help="turn a flag on/off for everyone, or change customer_accounts' rollout",
        description="on/off applies to everyone (customer_accounts also loses its rules); "
        "--percent, --allow and --disallow apply to customer_accounts only.",
    )
    change.add_argument("name", choices=list(SAFE_VALUES))
    how = change.add_mutually_exclusive_group(required=True)
    how.add_argument("state", nargs="?", choices=["on", "off"])
    how.add_argument("--percent", type=int, metavar="N", help="on for N%% of customers (0-100)")
    how.add_argument("--allow", metavar="EMAIL_OR_DOMAIN", help="add to the allow-list")
    how.add_argument("--disallow", metavar="EMAIL_OR_DOMAIN", help="remove from the allow-list")
    change.set_defaults(handler=_set)


def _show(_: argparse.Namespace) -> int:
    path = flag_document.flags_file()
    try:
        document = _load_valid(path)
    except FlagDocumentError as error:
        return _fail(f"{error} (the functions use the safe values {SAFE_VALUES})")
    _print(path, document)
    return 0


def _set(arguments: argparse.Namespace) -> int:
    path = flag_document.flags_file()
    try:
        document = _changed(_load_valid(path), arguments)
        flag_document.save(path, document)
    except FlagDocumentError as error:
        return _fail(str(error))
    _print(path, document)
    return 0


def _changed(document: dict[str, Any], arguments: argparse.Namespace) -> dict[str, Any]:
    if arguments.state:
        return flag_document.switch(document, arguments.name, arguments.state == "on")
    if arguments.name != CUSTOMER_ACCOUNTS:
        raise FlagDocumentError(
            f"--percent, --allow and --disallow apply to {CUSTOMER_ACCOUNTS} only: "
            f"{arguments.name} is one switch for everyone (use on or off)"
        )
    if arguments.percent is not None:
        return flag_document.set_percentage(document, arguments.percent)
    if arguments.allow is not None:
        return flag_document.allow(document, arguments.allow)
    return flag_document.disallow(document, arguments.disallow)


def _load_valid(path: Path) -> dict[str, Any]:
    document = flag_document.load(path)
    flag_document.validate(document)
    return document


def _print(path: Path, document: dict[str, Any]) -> None:
    print(json.dumps({"file": str(path), "flags": flag_document.summary(document)}, indent=2))


def _fail(message: str) -> int:
    print(f"rft flags: {message}", file=sys.stderr)
    return 1
