"""Cold start: import-and-init time of each handler in a fresh interpreter; build sizes."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from rft_tools.cfn_template import load_template
from rft_tools.local_db import PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "template.yaml"
BUILD_DIR = PROJECT_ROOT / ".aws-sam" / "build"
MEASURE = """
import importlib.util, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000)
"""


def functions() -> dict[str, Path]:
    """``{function_dir_name: handler_file}`` for every function in the template."""
    found = {}
    for resource in load_template(TEMPLATE)["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        code_dir = PROJECT_ROOT / resource["Properties"]["CodeUri"]
        module = resource["Properties"]["Handler"].rsplit(".", 1)[0]
        found[code_dir.name] = code_dir / f"{module}.py"
    return found


def import_ms(handler_file: Path, environment: dict[str, str], runs: int) -> float:
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", MEASURE, str(handler_file)],
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
    return {
        "cold_start_ms": {
            name: import_ms(path, environment, runs) for name, path in functions().items()
        },
        "cold_start_runs": runs,
        **build_sizes(),
    }
