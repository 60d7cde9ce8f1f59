"""Scheduled functions for the local stack, the way EventBridge Scheduler runs them.

Every ``Schedule``/``ScheduleV2`` event of the template with a ``rate(...)``
expression and no ``State`` other than ``ENABLED`` is invoked on one background
thread, every ``RFT_LOCAL_SCHEDULE_SECONDS`` (default 30) instead of its rate, so
that ``make run`` shows the result of, say, the duplicate scan within seconds. Cron
schedules (the nightly retention, disabled by default anyway) are not run locally.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rft_common.db import postgres
from rft_tools.cfn_template import load_template
from rft_tools.local.functions import TemplateFunction, adopt_environment, functions_with_events

DEFAULT_INTERVAL_SECONDS = 30.0
RATE = re.compile(r"rate\(\s*\d+\s+(minute|minutes|hour|hours|day|days)\s*\)")


@dataclass(frozen=True)
class ScheduledFunction:
    function: TemplateFunction
    event: dict[str, Any]


def scheduled_functions(template: dict[str, Any], base_dir: Path) -> list[ScheduledFunction]:
    """The functions with an enabled rate schedule, one entry per function."""
    found = []
    for function, events in functions_with_events(template, base_dir, ("Schedule", "ScheduleV2")):
        for event in events.values():
            event_properties = event.get("Properties") or {}
            enabled = event_properties.get("State", "ENABLED") == "ENABLED"
            expression = event_properties.get("ScheduleExpression")
            if (
                not enabled
                or not isinstance(expression, str)
                or not RATE.fullmatch(expression.strip())
            ):
                continue
            event_input = json.loads(event_properties.get("Input") or "{}")
            found.append(ScheduledFunction(function, event_input))
            break
    return found


class LocalScheduler:
    """Invokes each scheduled function every ``interval`` seconds until ``stop``."""

    def __init__(self, functions: list[ScheduledFunction], interval: float) -> None:
        self.functions = functions
        self.interval = interval
        self.handlers = [scheduled.function.load_handler("schedule") for scheduled in functions]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="schedule")

    def run_once(self) -> None:
        for scheduled, handler in zip(self.functions, self.handlers, strict=True):
            function = scheduled.function
            try:
                handler(dict(scheduled.event), function.context())
            except Exception:
                sys.stderr.write(f"{function.function_id} failed:\n{traceback.format_exc()}")

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.run_once()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)


def start_local_schedules(template_path: Path, environment: dict[str, str]) -> LocalScheduler:
    """Run the template's rate schedules in the background (the stack, after its resources).

    As for the SQS pollers, each function's template environment joins the process for
    keys not set yet, and the shared database pool gets one more connection.
    """
    template = load_template(template_path)
    functions = scheduled_functions(template, template_path.parent.resolve())
    interval = float(os.environ.get("RFT_LOCAL_SCHEDULE_SECONDS", DEFAULT_INTERVAL_SECONDS))
    os.environ["DB_POOL_SIZE"] = str(int(os.environ.get("DB_POOL_SIZE", "1")) + 1)
    postgres.reset_pool()  # rebuilt with the larger size on first use
    for scheduled in functions:
        adopt_environment(scheduled.function, environment)
    scheduler = LocalScheduler(functions, interval)
    scheduler.start()
    names = ", ".join(scheduled.function.function_id for scheduled in functions)
    print(f"running {names} every {interval:g} s (their rate schedules)", flush=True)
    return scheduler
