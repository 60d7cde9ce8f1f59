"""``rft db url | upgrade [REV] | downgrade REV | stamp REV | check``."""

from __future__ import annotations

import argparse

from rft_tools.local.db import local_database, local_database_url
from rft_tools.operations import migrations


def register(subcommands: argparse._SubParsersAction) -> None:
    db = subcommands.add_parser("db", help="the local stack's database and its migrations")
    verbs = db.add_subparsers(dest="verb", required=True)
    verbs.add_parser("url", help="print the SQLAlchemy URL the local stack uses").set_defaults(
        handler=lambda _: print(local_database_url())
    )
    upgrade = verbs.add_parser("upgrade", help="apply migrations (default: to head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=_upgrade)
    downgrade = verbs.add_parser("downgrade", help="revert migrations down to REV")
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=_downgrade)
    stamp = verbs.add_parser(
        "stamp", help="record REV as applied without running it (adopting a live database)"
    )
    stamp.add_argument("revision")
    stamp.set_defaults(handler=_stamp)
    verbs.add_parser("check", help="fail if models and migrations disagree").set_defaults(
        handler=_check
    )


def _upgrade(arguments: argparse.Namespace) -> None:
    with local_database() as url:
        migrations.upgrade(url, arguments.revision)


def _downgrade(arguments: argparse.Namespace) -> None:
    with local_database() as url:
        migrations.downgrade(url, arguments.revision)


def _stamp(arguments: argparse.Namespace) -> None:
    with local_database() as url:
        migrations.stamp(url, arguments.revision)


def _check(_: argparse.Namespace) -> None:
    with local_database() as url:
        migrations.check(url)
