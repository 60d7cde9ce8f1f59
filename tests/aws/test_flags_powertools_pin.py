"""``rft_common.aws.flags`` imports Powertools' feature-flag modules without their
package's ``__init__`` (its docstring says why no clean way exists). These tests fail on
a Powertools release that changes what that relies on: the version pinned, what the
package ``__init__`` imports, and that the modules we load reach neither the AppConfig
store nor boto3/botocore."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

from rft_common.aws import flags

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(importlib.util.find_spec(flags.POWERTOOLS_FEATURE_FLAGS).origin).parent
INIT_IMPORTS = {
    "aws_lambda_powertools.utilities.feature_flags.appconfig": [
        "AppConfigExtensionStore",
        "AppConfigStore",
    ],
    "aws_lambda_powertools.utilities.feature_flags.base": ["StoreProvider"],
    "aws_lambda_powertools.utilities.feature_flags.exceptions": ["ConfigurationStoreError"],
    "aws_lambda_powertools.utilities.feature_flags.feature_flags": ["FeatureFlags"],
    "aws_lambda_powertools.utilities.feature_flags.schema": ["RuleAction", "SchemaValidator"],
}
"""What the package ``__init__`` that flags.py skips imports in the pinned release."""


def module_level_imports(path: Path) -> dict[str, list[str]]:
    """``{module: [names]}`` a module imports when it runs (not under TYPE_CHECKING)."""
    found: dict[str, list[str]] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found.setdefault(node.module or "", []).extend(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, [])
    return found


def test_powertools_is_the_release_flags_was_written_for():
    dependencies = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    layer_requirements = (PROJECT_ROOT / "layers/common/requirements.txt").read_text().split()
    pin = f"aws-lambda-powertools=={flags.POWERTOOLS_VERSION}"

    assert version("aws-lambda-powertools") == flags.POWERTOOLS_VERSION
    assert pin in dependencies
    assert pin in layer_requirements


def test_the_package_init_imports_what_it_did():
    assert module_level_imports(PACKAGE_DIR / "__init__.py") == INIT_IMPORTS


def test_the_modules_flags_loads_reach_neither_the_appconfig_store_nor_the_aws_sdk():
    to_visit = ["base", "exceptions", "feature_flags", "schema"]
    visited: set[str] = set()
    while to_visit:
        name = to_visit.pop()
        if name in visited:
            continue
        visited.add(name)
        for module in module_level_imports(PACKAGE_DIR / f"{name}.py"):
            assert module.split(".")[0] not in ("boto3", "botocore"), (name, module)
            if module == flags.POWERTOOLS_FEATURE_FLAGS:
                continue  # ``from package import schema``: a submodule, below
            if module.startswith(f"{flags.POWERTOOLS_FEATURE_FLAGS}."):
                to_visit.append(module.rpartition(".")[2])

    assert "appconfig" not in visited


PROBE = """
import json, sys
import rft_common.aws.flags
package = sys.modules[rft_common.aws.flags.POWERTOOLS_FEATURE_FLAGS]
before = {
    "init_ran": "AppConfigStore" in vars(package),
    "sdk": sorted(m for m in sys.modules if m == "boto3" or m.startswith("botocore.")),
}
from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags
print(json.dumps(before | {"same_class": FeatureFlags is rft_common.aws.flags.FeatureFlags}))
"""


def test_the_init_is_skipped_until_a_name_only_it_defines_is_asked_for():
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    )

    assert json.loads(completed.stdout) == {"init_ran": False, "sdk": [], "same_class": True}
