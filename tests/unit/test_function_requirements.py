"""Libraries shipped with a single function (functions/<name>/requirements.txt) are the
locked versions, the same the tests run with."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FUNCTION_REQUIREMENTS = sorted(PROJECT_ROOT.glob("functions/*/requirements.txt"))


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"]}


def pins(requirements: Path) -> dict[str, str]:
    found = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            found[name.strip().lower()] = pinned.strip()
    return found


@pytest.mark.parametrize(
    "requirements", FUNCTION_REQUIREMENTS, ids=[path.parent.name for path in FUNCTION_REQUIREMENTS]
)
def test_a_function_pins_exactly_the_locked_versions(requirements):
    locked = locked_versions()

    pinned = pins(requirements)

    assert pinned, f"{requirements} pins nothing"
    assert {name: locked.get(name) for name in pinned} == pinned
