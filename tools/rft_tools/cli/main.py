"""``rft``: the operators' and developers' command line.

Each module in ``COMMAND_MODULES`` adds its verbs through ``register(subcommands)``
and sets ``handler`` on its parsers; a handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_PACKAGE = "rft_tools.cli.commands"
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


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only its command's module when it names one.

    Each command module imports what its verbs need (SQLAlchemy and alembic, boto3,
    moto...); importing all of them cost every command about 2 s of CPU, ``rft dev
    token`` and ``rft flags show`` included. ``rft --help`` and a mistyped command
    still list every command.
    """
    description = __doc__.splitlines()[0].replace("``", "")  # plain text, not reST
    parser = argparse.ArgumentParser(prog="rft", description=description)
    subcommands = parser.add_subparsers(dest="command", required=True)
    named = f"{COMMAND_PACKAGE}.{argv[0]}" if argv else None
    for name in [named] if named in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(name).register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    arguments = build_parser(argv).parse_args(argv)
    return int(arguments.handler(arguments) or 0)
