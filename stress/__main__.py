"""``python -m stress [--duration S] [--clients N]``: reliability scenarios that take
minutes, each reporting how many cases it tried and how many failed. Exits non-zero
if any case failed."""

from __future__ import annotations

import argparse
import sys

from stress import load


def table(rows: list[dict]) -> str:
    width = max(len(row["scenario"]) for row in rows)
    lines = [f"{'scenario'.ljust(width)}  {'cases':>7}  {'failures':>8}  detail"]
    lines += [
        f"{row['scenario'].ljust(width)}  {row['cases']:>7}  {row['failures']:>8}  {row['detail']}"
        for row in rows
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="make stress")
    parser.add_argument("--duration", type=float, default=300, help="seconds of load")
    parser.add_argument("--clients", type=int, default=8, help="parallel HTTP clients")
    arguments = parser.parse_args()
    rows = load.run(arguments.duration, arguments.clients)
    print(table(rows))
    return 1 if any(row["failures"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
