"""Every advisory lock is taken by a statement of ``rft_common.db.locks``, and no two
locks share a key, a seed or a text prefix by accident."""

from __future__ import annotations

import re
from pathlib import Path

from rft_common.db import locks

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"pg_advisory_xact_lock(?:_shared)?\((\d+)\)")
SEED = re.compile(r"hashtextextended\((?:'([^']*)' \|\| )?:?\w+, (\d+)\)")


def lock_statements() -> dict[str, str]:
    return {name: value for name, value in vars(locks).items() if name.isupper()}


def test_each_lock_has_its_own_key_or_seed():
    keys: dict[str, list[str]] = {}
    for name, statement in lock_statements().items():
        key = KEY.search(statement)
        seed = SEED.search(statement)
        assert key or seed, f"{name} takes no lock this test understands"
        identity = f"key {key.group(1)}" if key else f"seed {seed.group(2)} {seed.group(1)!r}"
        keys.setdefault(identity, []).append(name)

    shared = {identity: names for identity, names in keys.items() if len(names) > 1}
    assert shared == {"key 715015": ["LOCK_ERASURES", "WAIT_FOR_ERASURES"]}


def test_no_other_module_takes_an_advisory_lock():
    takers = sorted(
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("layers", "functions", "tools")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if "pg_advisory" in path.read_text() and path.name != "locks.py"
    )
    assert takers == []
