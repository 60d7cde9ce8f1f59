"""``rft seed demo | legacy``: demo courses and sessions; legacy bookings to backfill."""

from __future__ import annotations

import argparse
import json
import time

from sqlalchemy import create_engine

from rft_tools.data.demo import seed_demo
from rft_tools.local.db import local_database


def register(subcommands: argparse._SubParsersAction) -> None:
    seed = subcommands.add_parser("seed", help="generate data in the local database")
    kinds = seed.add_subparsers(dest="kind", required=True)
    kinds.add_parser(
        "demo", help="courses and published sessions (idempotent); prints them as JSON"
    ).set_defaults(handler=_demo)
    legacy = kinds.add_parser(
        "legacy",
        help="legacy bookings without customers, as the live system holds them (deterministic)",
    )
    legacy.add_argument("--bookings", type=_positive, required=True)
    legacy.add_argument(
        "--customers", type=_positive, help="distinct people (default: 35%% of the bookings)"
    )
    legacy.add_argument("--seed", type=int, default=1, help="another seed gives other data")
    legacy.add_argument(
        "--duplicates",
        type=_share,
        default=0.02,
        help="share of people who also book under a second identity (default 0.02)",
    )
    legacy.set_defaults(handler=_legacy)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _share(value: str) -> float:
    share = float(value)
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return share


def _demo(_: argparse.Namespace) -> None:
    with local_database() as url:
        engine = create_engine(url)
        with engine.begin() as connection:
            sessions = seed_demo(connection)
        engine.dispose()
    print(json.dumps({"sessions": sessions}, indent=2))


def _legacy(arguments: argparse.Namespace) -> int:
    from rft_tools.data.legacy import seed_legacy

    customers = arguments.customers or max(1, round(arguments.bookings * 0.35))
    if customers > arguments.bookings:
        print("--customers cannot exceed --bookings (each person books at least once)")
        return 2
    started = time.perf_counter()
    with local_database() as url:
        engine = create_engine(url)
        with engine.begin() as connection:
            added = seed_legacy(
                connection,
                bookings=arguments.bookings,
                customers=customers,
                seed=arguments.seed,
                duplicate_share=arguments.duplicates,
            )
        engine.dispose()
    print(json.dumps(added | {"seconds": round(time.perf_counter() - started, 1)}))
    return 0
