"""SnapStart: the after-restore hook is registered where the runtime offers hooks, and
gives each restored environment its own random state."""

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


def test_in_lambda_the_hook_is_registered_with_the_runtime(monkeypatch):
    registered = []
    runtime_library = types.ModuleType("snapshot_restore_py")
    runtime_library.register_after_restore = registered.append
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime_library)

    assert snapstart.register_hooks()
    assert registered == [snapstart.renew_random_state]


def test_without_the_runtime_library_nothing_is_registered(monkeypatch):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)

    assert not snapstart.register_hooks()
