"""``rft seed demo``: demo courses and sessions for the local stack."""

from __future__ import annotations

import argparse
import json

from sqlalchemy import create_engine

from rft_tools.demo_data import seed_demo
from rft_tools.local_db import local_database


def register(subcommands: argparse._SubParsersAction) -> None:
    seed = subcommands.add_parser("seed", help="generate data in the local database")
    kinds = seed.add_subparsers(dest="kind", required=True)
    kinds.add_parser(
        "demo", help="courses and published sessions (idempotent); prints them as JSON"
    ).set_defaults(handler=_demo)


def _demo(_: argparse.Namespace) -> None:
    with local_database() as url:
        engine = create_engine(url)
        with engine.begin() as connection:
            sessions = seed_demo(connection)
        engine.dispose()
    print(json.dumps({"sessions": sessions}, indent=2))
