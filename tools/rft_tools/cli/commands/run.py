"""``rft run``: the whole local stack (what ``make run`` starts)."""

from __future__ import annotations

import argparse
import os


def register(subcommands: argparse._SubParsersAction) -> None:
    run = subcommands.add_parser("run", help="start the local stack (database, API)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    run.set_defaults(handler=_run)


def _run(arguments: argparse.Namespace) -> None:
    from rft_tools.local.stack import run

    run(arguments.host, arguments.port)
