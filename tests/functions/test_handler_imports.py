"""What a function's cold start imports: nothing its first request does not need.

Each handler is imported in a fresh interpreter, as Lambda does, and ``sys.modules``
is checked afterwards. Forbidden at import time:

- boto3 and botocore's machinery (about 200 ms): flags and secrets come from the
  Lambda extensions over plain HTTP; S3 and SQS clients are created on first use.
  botocore's bare package ``__init__`` is allowed: Powertools imports it (about 1 ms)
  to register its user-agent hook, which loads nothing else.
- aws_xray_sdk (about 400 ms with botocore): tracing is Lambda's active tracing.
- SQLAlchemy: no function loads it, at import or in its SnapStart warm-up (the
  checkout not even on its first booking:
  tests/checkout/test_checkout_without_sqlalchemy.py): every one runs SQL text
  through ``rft_common.db.postgres``; the layer does not ship it.
- stripe (and its requests): only the routes that need them import them (they ship
  with those functions only, not in the layer); phonenumbers is a test library only.
- email_validator (about 40 ms with idna): the first email check loads it.

(bcrypt is not checked here: in this venv PyJWT finds ``cryptography``, a test
dependency, whose SSH key support imports bcrypt; the layer ships neither.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rft_tools.cfn_template import load_template

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_PACKAGES = (
    "boto3",
    "aws_xray_sdk",
    "stripe",
    "requests",
    "phonenumbers",
    "email_validator",
)
FORBIDDEN_MODULE_PREFIXES = ("botocore.",)
IMPORT_HANDLER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def handler_files() -> dict[str, Path]:
    found = {}
    for resource in load_template(PROJECT_ROOT / "template.yaml")["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        module = properties["Handler"].rsplit(".", 1)[0]
        found[Path(properties["CodeUri"]).name] = (
            PROJECT_ROOT / properties["CodeUri"] / (f"{module}.py")
        )
    return found


def modules_after_import(handler_file: Path) -> list[str]:
    environment = os.environ | {"PYTHONPATH": str(handler_file.parent)}
    completed = subprocess.run(
        [sys.executable, "-c", IMPORT_HANDLER, str(handler_file)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout)


@pytest.mark.parametrize(("name", "handler_file"), sorted(handler_files().items()))
def test_importing_a_handler_loads_no_aws_sdk_tracer_orm_or_route_only_library(name, handler_file):
    modules = modules_after_import(handler_file)

    forbidden = [
        module
        for module in modules
        if module.split(".")[0] in FORBIDDEN_PACKAGES
        or module.startswith(FORBIDDEN_MODULE_PREFIXES)
    ]
    assert forbidden == [], f"{name} imports {forbidden[:10]}"


def test_the_booking_handler_in_particular_loads_neither_boto3_botocore_nor_xray():
    modules = set(modules_after_import(handler_files()["create_booking"]))

    assert "boto3" not in modules
    assert "aws_xray_sdk" not in modules
    assert not [module for module in modules if module.startswith("botocore.")]


@pytest.mark.parametrize("name", sorted(handler_files()))
def test_no_function_loads_sqlalchemy_at_import(name):
    modules = modules_after_import(handler_files()[name])

    assert [module for module in modules if module.split(".")[0] == "sqlalchemy"] == []


WARM_UP = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from rft_common.core import snapstart
steps = [repr(step) for step in snapstart._steps]
for step in snapstart._steps:
    step()  # raises, unlike the hook: a failing step fails the test
print(json.dumps({"steps": steps, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize(("name", "handler_file"), sorted(handler_files().items()))
def test_the_snapstart_warm_up_needs_no_database_secret_or_aws_sdk(name, handler_file):
    """Run before the snapshot, every step works with the database unreachable and no
    secret, and loads no AWS SDK (it would be in every snapshot) nor SQLAlchemy."""
    environment = os.environ | {
        "PYTHONPATH": str(handler_file.parent),
        "DATABASE_URL": "postgresql+pg8000://nobody@127.0.0.1:9/unreachable",
    }
    completed = subprocess.run(
        [sys.executable, "-c", WARM_UP, str(handler_file)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(completed.stdout)

    assert found["steps"]
    sdk = [m for m in found["modules"] if m == "boto3" or m.startswith("botocore.")]
    assert sdk == []
    assert [m for m in found["modules"] if m.split(".")[0] == "sqlalchemy"] == []
