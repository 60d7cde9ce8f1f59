"""``rft``: the operators' and developers' command line.

Each module in ``COMMAND_MODULES`` adds its verbs through ``register(subcommands)``
and sets ``handler`` on its parsers; a handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "rft_tools.commands.db",
    "rft_tools.commands.seed",
    "rft_tools.commands.run",
    "rft_tools.commands.flags",
    "rft_tools.commands.backfill",
    "rft_tools.commands.dev",
    "rft_tools.commands.gdpr",
    "rft_tools.commands.staff",
    "rft_tools.commands.duplicates",
    "rft_tools.commands.certificates",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rft", description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    return int(arguments.handler(arguments) or 0)


if __name__ == "__main__":
    sys.exit(main())
