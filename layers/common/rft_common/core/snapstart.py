"""Lambda SnapStart: the work done before the snapshot, and what must be fresh after it.

With SnapStart, Lambda runs a function's init once per published version, snapshots
the memory and restores that snapshot into every new execution environment, so
whatever init created is shared by all of them, and costs no restored environment
anything.

Before the snapshot (``warm_up``, the before-snapshot hook) each function does the
work its first request would otherwise do: the steps registered with ``warm`` by the
modules it imports and by its handler (libraries its requests import lazily, the
resolver's validation models, the email validator). The cold *import* stays as light
as before (tests/functions/test_handler_imports.py): warming happens in the hook, never at
import time. No step opens a connection, reads a secret or a flag, or creates an id:
the connection pools, secrets and the flag cache are made on the first request, after
the restore.

After the restore, the one state to renew is the ``random`` module's seed
(``rft_common.db.postgres`` draws retry jitter from it); without that, every restored
environment would draw the same jitter and retry in step.

``snapshot_restore_py`` ships only with Lambda's managed Python runtimes; elsewhere
(local stack, tests, tools) nothing is registered and nothing is warmed ahead.
"""

from __future__ import annotations

import random
from collections.abc import Callable

WarmStep = Callable[[], object]

_steps: list[WarmStep] = []


def warm(step: WarmStep) -> WarmStep:
    """Have ``step`` run before the snapshot (once, in the order registered); returns it,
    so it can decorate a function. ``step`` must open no connection and read no secret."""
    if step not in _steps:
        _steps.append(step)
    return step


def warm_up() -> None:
    """The before-snapshot hook: every registered step. A step that fails is logged and
    skipped: the function still works, its first request just does that work itself."""
    for step in list(_steps):
        try:
            step()
        except Exception:
            from rft_common.core.observability import logger

            logger.exception(
                "SnapStart warm-up step failed", extra={"step": getattr(step, "__qualname__", "")}
            )


def renew_random_state() -> None:
    """Seed ``random`` afresh from the operating system."""
    random.seed()


def register_hooks() -> bool:
    """Register the before-snapshot and after-restore hooks if the runtime offers hooks;
    whether it did."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(warm_up)
    register_after_restore(renew_random_state)
    return True


register_hooks()
