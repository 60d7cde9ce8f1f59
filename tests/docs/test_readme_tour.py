"""README's tour, run in order against a real local stack (``rft run``), as a newcomer
would after ``make run``: every block exits 0 and prints what README shows."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rft_tools.local.process import banner, flags_file_of, stack_process
from rft_tools.paths import PROJECT_ROOT
from tests.conftest import scratch_database
from tests.docs.readme_tour import Step, tour

README = PROJECT_ROOT / "README.md"
BLOCK_TIMEOUT_S = 30
RETRY_FOR_S = 15
NOT_THE_STACKS = ("ADMIN_JWT_SECRET", "ADMIN_REFRESH_SECRET", "ADMIN_JWT_SECRET_ARN")
"""Set by other tests' fixtures; ``rft dev token`` rightly refuses to sign beside them."""


@dataclass(frozen=True)
class Terminal:
    """The newcomer's second terminal: where they are, and what they have set."""

    directory: Path
    environment: dict[str, str]


@pytest.fixture(scope="module")
def terminal(postgres_server_url, tmp_path_factory) -> Iterator[Terminal]:
    """A fresh stack, and the variables README's tour takes from its banner."""
    url = scratch_database(postgres_server_url, "rft_readme_tour")
    # The tour runs in a directory of its own, as in a clone: .venv is the project's,
    # .local the stack's own, so nothing it writes lands in the developer's .local/.
    clone = tmp_path_factory.mktemp("tour")
    (clone / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    (clone / ".local").mkdir()
    log = clone / "stack.log"
    stack_environment = {
        "RFT_LOCAL_DIR": str(clone / ".local"),
        "RFT_LOCAL_SCHEDULE_SECONDS": "1",  # the email sender and duplicate scan, not every 30 s
    }
    with stack_process(url, log, stack_environment) as (_, api):
        served = banner(log)
        assert served is not None
        environment = {k: v for k, v in os.environ.items() if k not in NOT_THE_STACKS}
        yield Terminal(
            clone,
            environment
            | stack_environment
            | {
                "API": api,
                "STRIPE": served["stripe"],
                "AWS_ENDPOINT_URL": served["aws_endpoint"],
                "DATABASE_URL": url,
                "RFT_FLAGS_FILE": str(flags_file_of(log)),
            },
        )


def _run(step: Step, terminal: Terminal) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", step.script],
        cwd=terminal.directory,
        env=terminal.environment,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
    )


def test_readme_has_a_tour_with_output_to_check():
    steps = tour(README)

    assert len(steps) >= 7
    assert sum(bool(step.prints) for step in steps) >= 7


@pytest.mark.skipif(shutil.which("curl") is None, reason="README's tour needs curl")
def test_the_tour_runs_in_order_and_prints_what_readme_shows(terminal):
    for number, step in enumerate(tour(README), start=1):
        deadline = time.monotonic() + (RETRY_FOR_S if step.retry else 0)
        while True:
            result = _run(step, terminal)
            missing = step.missing_from(result.stdout) if result.returncode == 0 else None
            if (result.returncode == 0 and missing is None) or time.monotonic() > deadline:
                break
            time.sleep(1)
        where = f"tour block {number}:\n{step.script}\nstdout:\n{result.stdout}\n"
        assert result.returncode == 0, where + f"stderr:\n{result.stderr}"
        assert missing is None, where + f"README says it prints: {missing}"
