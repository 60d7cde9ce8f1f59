"""Cold start: import-and-init time of each handler in a fresh interpreter; build sizes.

The headline figure runs the ``sam build`` artifacts (function + layer) on Python 3.13
with only boto3 besides, as Lambda does; the dev-venv figure is for comparison.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rft_tools.cfn_template import load_template
from rft_tools.local_db import LOCAL_DIR, PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "template.yaml"
BUILD_DIR = PROJECT_ROOT / ".aws-sam" / "build"
SAM_PYENV_VERSION = "3.11.7:3.13.0"
MEASURE = """
import importlib.util, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000)
"""


RUNTIME_ENV = LOCAL_DIR / "python3.13-runtime"
"""Python 3.13 with only boto3, standing in for the Lambda runtime."""


def functions() -> dict[str, tuple[str, str]]:
    """``{function_dir_name: (logical_id, handler_file_name)}`` for the template's functions."""
    found = {}
    for logical_id, resource in load_template(TEMPLATE)["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        code_dir = Path(resource["Properties"]["CodeUri"])
        module = resource["Properties"]["Handler"].rsplit(".", 1)[0]
        found[code_dir.name] = (logical_id, f"{module}.py")
    return found


def runtime_python() -> Path:
    """A python3.13 environment with the locked boto3, as the Lambda runtime provides."""
    python = RUNTIME_ENV / "bin" / "python"
    if not python.exists():
        uv = PROJECT_ROOT / ".tools" / "bin" / "uv"
        environment = os.environ | {"PYENV_VERSION": SAM_PYENV_VERSION}
        subprocess.run(
            [uv, "venv", "--quiet", "--python", "3.13", RUNTIME_ENV], env=environment, check=True
        )
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", python, f"boto3=={version('boto3')}"],
            env=environment,
            check=True,
        )
    return python


def import_ms(
    python: Path | str, handler_file: Path, environment: dict[str, str], runs: int
) -> float:
    samples = [
        float(
            subprocess.run(
                [python, "-c", MEASURE, str(handler_file)],
                env=environment,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(runs)
    ]
    return round(statistics.median(samples), 1)


def _size_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return round(total / 1e6, 3)


def build_sizes() -> dict[str, Any]:
    """``sam build`` (via ``make build``), then the unzipped size of each artifact."""
    subprocess.run(["make", "-s", "build"], cwd=PROJECT_ROOT, check=True, capture_output=True)
    template = load_template(TEMPLATE)["Resources"]
    sizes = {
        name: _size_mb(BUILD_DIR / name)
        for name, resource in template.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    return {"layer_mb": _size_mb(BUILD_DIR / "CommonLayer"), "function_mb": sizes}


def run(database_url: str, flags_file: Path, *, quick: bool) -> dict[str, Any]:
    environment = os.environ | {
        "DATABASE_URL": database_url,
        "RFT_FLAGS_FILE": str(flags_file),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }
    runs = 3 if quick else 7
    sizes = build_sizes()
    built = environment | {"PYTHONPATH": str(BUILD_DIR / "CommonLayer" / "python")}
    python = runtime_python()
    return {
        "cold_start_ms": {
            name: import_ms(python, BUILD_DIR / logical_id / handler, built, runs)
            for name, (logical_id, handler) in functions().items()
        },
        "cold_start_dev_venv_ms": {
            name: import_ms(
                sys.executable, PROJECT_ROOT / "functions" / name / handler, environment, runs
            )
            for name, (_, handler) in functions().items()
        },
        "cold_start_runs": runs,
        **sizes,
    }
