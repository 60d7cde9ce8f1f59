"""SnapStart: the hooks are registered where the runtime offers them; the before-snapshot
hook runs every warm-up step registered, the after-restore hook gives each restored
environment its own random state."""

from __future__ import annotations

import random
import sys
import types

from rft_common.core import snapstart


def test_environments_restored_from_one_snapshot_draw_different_jitter():
    random.seed(42)  # the state every environment restored from one snapshot shares
    snapshot_state = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot_state)
        snapstart.renew_random_state()
        draws.append([random.random() for _ in range(3)])

    assert draws[0] != draws[1]


def test_in_lambda_both_hooks_are_registered_with_the_runtime(monkeypatch):
    before_snapshot, after_restore = [], []
    runtime_library = types.ModuleType("snapshot_restore_py")
    runtime_library.register_before_snapshot = before_snapshot.append
    runtime_library.register_after_restore = after_restore.append
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime_library)

    assert snapstart.register_hooks()
    assert before_snapshot == [snapstart.warm_up]
    assert after_restore == [snapstart.renew_random_state]


def test_the_warm_up_runs_each_step_once_in_order_and_survives_a_failing_one(monkeypatch):
    monkeypatch.setattr(snapstart, "_steps", [])
    ran = []

    def failing() -> None:
        ran.append("failing")
        raise RuntimeError("no")

    first = snapstart.warm(lambda: ran.append("first"))
    snapstart.warm(first)
    snapstart.warm(failing)
    snapstart.warm(lambda: ran.append("last"))
    snapstart.warm_up()

    assert ran == ["first", "failing", "last"]


def test_without_the_runtime_library_nothing_is_registered(monkeypatch):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)

    assert not snapstart.register_hooks()
