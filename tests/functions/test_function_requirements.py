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


def layer_packages() -> set[str]:
    """What the shared layer installs: its requirements less the Makefile's NOT_IN_LAYER."""
    makefile = (PROJECT_ROOT / "layers" / "common" / "Makefile").read_text()
    [left_out] = [
        line.partition("=")[2].split()
        for line in makefile.splitlines()
        if line.startswith("NOT_IN_LAYER =")
    ]
    return set(pins(PROJECT_ROOT / "layers" / "common" / "requirements.txt")) - set(left_out)


def locked_dependencies() -> dict[str, set[str]]:
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())
    return {
        package["name"]: {dependency["name"] for dependency in package.get("dependencies", [])}
        for package in lock["package"]
    }


@pytest.mark.parametrize(
    "requirements", FUNCTION_REQUIREMENTS, ids=[path.parent.name for path in FUNCTION_REQUIREMENTS]
)
def test_every_library_a_function_ships_finds_its_dependencies_there_or_in_the_layer(
    requirements,
):
    """sam build installs a function's libraries without their dependencies
    (lambda-packaging.mk), so a dependency missing from both lists fails at import."""
    dependencies = locked_dependencies()
    shipped = set(pins(requirements))

    needed, pending = set(), list(shipped)
    while pending:
        for dependency in dependencies[pending.pop()] - needed:
            needed.add(dependency)
            pending.append(dependency)

    assert needed - shipped - layer_packages() == set()
