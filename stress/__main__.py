"""``python -m stress [--only load,contract] [--duration S] [--clients N] [--max-examples N]``:
reliability scenarios that take minutes, each reporting how many cases it tried and
how many failed. Runs every scenario unless ``--only`` names some. Exits non-zero if
any case failed."""

from __future__ import annotations

import argparse
import sys

from stress import contract, load


def table(rows: list[dict]) -> str:
    width = max(len(row["scenario"]) for row in rows)
    lines = [f"{'scenario'.ljust(width)}  {'cases':>7}  {'failures':>8}  detail"]
    lines += [
        f"{row['scenario'].ljust(width)}  {row['cases']:>7}  {row['failures']:>8}  {row['detail']}"
        for row in rows
    ]
    return "\n".join(lines)


SCENARIOS = {
    "load": lambda arguments: load.run(arguments.duration, arguments.clients),
    "contract": lambda arguments: contract.run(arguments.max_examples),
}


def _scenario_names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SCENARIOS)}")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(prog="make stress")
    parser.add_argument(
        "--only", type=_scenario_names, default=list(SCENARIOS), help="e.g. load,contract"
    )
    parser.add_argument("--duration", type=float, default=300, help="seconds of load")
    parser.add_argument("--clients", type=int, default=8, help="parallel HTTP clients")
    parser.add_argument(
        "--max-examples", type=int, default=1000, help="contract: examples per operation and mode"
    )
    arguments = parser.parse_args()
    rows = [row for name in arguments.only for row in SCENARIOS[name](arguments)]
    print(table(rows))
    return 1 if any(row["failures"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
