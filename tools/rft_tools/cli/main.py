"""``rft``: the operators' and developers' command line.

Each module in ``COMMAND_MODULES`` adds its verbs through ``register(subcommands)``
and sets ``handler`` on its parsers; a handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

COMMAND_MODULES = (
    "rft_tools.cli.commands.db",
    "rft_tools.cli.commands.seed",
    "rft_tools.cli.commands.run",
    "rft_tools.cli.commands.flags",
    "rft_tools.cli.commands.backfill",
    "rft_tools.cli.commands.dev",
    "rft_tools.cli.commands.gdpr",
    "rft_tools.cli.commands.staff",
    "rft_tools.cli.commands.duplicates",
    "rft_tools.cli.commands.mail",
    "rft_tools.cli.commands.certificates",
    "rft_tools.cli.commands.reminders",
)


def build_parser() -> argparse.ArgumentParser:
    description = __doc__.splitlines()[0].replace("``", "")  # plain text, not reST
    parser = argparse.ArgumentParser(prog="rft", description=description)
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    return int(arguments.handler(arguments) or 0)
