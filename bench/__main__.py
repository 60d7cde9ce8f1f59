"""``python -m bench [--quick] [--only SECTION,...]``: run the benchmarks, print a table,
write ``bench/results/latest.json`` and regenerate ``docs/performance.md``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    admin,
    backfill,
    booking,
    cold_start,
    email_outbox,
    reminders,
    renewals,
    report,
)
from bench.environment import bench_server, settle
from rft_tools.local.db import RDS_INSTANCE_CLASS, RDS_MEMORY_SETTINGS
from rft_tools.paths import LOCAL_DIR, PROJECT_ROOT

RESULTS = PROJECT_ROOT / "bench" / "results" / "latest.json"
QUICK_RESULTS = PROJECT_ROOT / "bench" / "results" / "quick.json"
SECTIONS: dict[str, Any] = {
    "backfill": backfill,
    "booking": booking,
    "admin": admin,
    "renewals": renewals,
    "cold_start": cold_start,
    "email": email_outbox,
    "reminders": reminders,
}
"""Run in this order, which is the issue's."""


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    cores = os.cpu_count()
    return (
        f"{cores} cores, {cpu}, {memory_kb / 2**20:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def database() -> str:
    settings = ", ".join(f"{name} {value}" for name, value in RDS_MEMORY_SETTINGS.items())
    return f"PostgreSQL configured as RDS {RDS_INSTANCE_CLASS} sets it ({settings})"


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    parser.add_argument("--only", default=",".join(SECTIONS))
    arguments = parser.parse_args()
    sections = arguments.only.split(",")
    if unknown := set(sections) - SECTIONS.keys():
        parser.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    flags_file = LOCAL_DIR / "bench-flags.json"
    flags_file.parent.mkdir(exist_ok=True)
    flags_file.write_text(
        json.dumps(
            {
                "customer_accounts": {"default": True},
                "admin_users_api": {"default": True},
                "backfill": {"default": True},
            }
        )
    )
    results: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if arguments.quick else "full",
        "database": database(),
    }
    seconds: dict[str, float] = {}
    with bench_server() as server_url:
        for section, module in SECTIONS.items():
            if section not in sections:
                continue
            settle(server_url, keep={renewals.RENEWALS_DATABASE})
            started = time.perf_counter()
            found = module.run(server_url, flags_file, quick=arguments.quick)
            # cold_start reports top-level keys of its own (cold_start_ms, layer_mb, ...).
            results |= found if section == "cold_start" else {section: found}
            seconds[section] = round(time.perf_counter() - started, 1)
    destination = QUICK_RESULTS if arguments.quick else RESULTS
    if not arguments.quick and set(sections) != SECTIONS.keys() and RESULTS.exists():
        # A full run of some sections updates them in the last full results, keeping the
        # others; each section's date says when it was measured.
        previous = json.loads(RESULTS.read_text())
        results = previous | results | {"section_seconds": previous.get("section_seconds", {})}
    dates = results.get("section_dates", {})
    results["section_dates"] = dates | {section: results["date"] for section in seconds}
    results["section_seconds"] = results.get("section_seconds", {}) | seconds
    destination.write_text(json.dumps(results, indent=2) + "\n")
    print(report.table(results))
    if not arguments.quick:
        report.write_markdown(results)
    print(f"\nresults: {destination.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
