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

from rft_tools.cfn_template import function_environment, function_properties, load_template
from rft_tools.local.api import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    LambdaContext,
    _int_or,
    load_handler_module,
)

DEFAULT_INTERVAL_SECONDS = 30.0
RATE = re.compile(r"rate\(\s*\d+\s+(minute|minutes|hour|hours|day|days)\s*\)")


@dataclass(frozen=True)
class ScheduledFunction:
    function_id: str
    code_dir: Path
    handler_module: str
    handler_function: str
    event: dict[str, Any]
    memory_mb: int
    timeout_s: int


def scheduled_functions(template: dict[str, Any], base_dir: Path) -> list[ScheduledFunction]:
    """The functions with an enabled rate schedule, one entry per function."""
    found = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = function_properties(template, logical_id)
        for event in (properties.get("Events") or {}).values():
            event_properties = event.get("Properties") or {}
            enabled = event_properties.get("State", "ENABLED") == "ENABLED"
            expression = event_properties.get("ScheduleExpression")
            if event.get("Type") not in ("Schedule", "ScheduleV2") or not enabled:
                continue
            if not isinstance(expression, str) or not RATE.fullmatch(expression.strip()):
                continue
            module, _, function = properties["Handler"].rpartition(".")
            found.append(
                ScheduledFunction(
                    function_id=logical_id,
                    code_dir=(base_dir / properties["CodeUri"]).resolve(),
                    handler_module=module,
                    handler_function=function,
                    event=json.loads(event_properties.get("Input") or "{}"),
                    memory_mb=_int_or(properties.get("MemorySize"), DEFAULT_MEMORY_MB),
                    timeout_s=_int_or(properties.get("Timeout"), DEFAULT_TIMEOUT_S),
                )
            )
            break
    return found


class LocalScheduler:
    """Invokes each scheduled function every ``interval`` seconds until ``stop``."""

    def __init__(self, functions: list[ScheduledFunction], interval: float) -> None:
        self.functions = functions
        self.interval = interval
        self.handlers = [
            getattr(
                load_handler_module(
                    f"lambda_{scheduled.function_id}_schedule",
                    scheduled.code_dir,
                    scheduled.handler_module,
                ),
                scheduled.handler_function,
            )
            for scheduled in functions
        ]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="schedule")

    def run_once(self) -> None:
        for scheduled, handler in zip(self.functions, self.handlers, strict=True):
            context = LambdaContext(scheduled.function_id, scheduled.memory_mb, scheduled.timeout_s)
            try:
                handler(dict(scheduled.event), context)
            except Exception:
                sys.stderr.write(f"{scheduled.function_id} failed:\n{traceback.format_exc()}")

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
    for scheduled in functions:
        for key, value in function_environment(
            template, scheduled.function_id, environment
        ).items():
            os.environ.setdefault(key, value)
    scheduler = LocalScheduler(functions, interval)
    scheduler.start()
    names = ", ".join(scheduled.function_id for scheduled in functions)
    print(f"running {names} every {interval:g} s (their rate schedules)", flush=True)
    return scheduler
