"""``rft run`` as a child process, for tests and ``make stress``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rft_tools.checks.flag_document import LOCAL_DEFAULTS_FILE
from rft_tools.paths import PROJECT_ROOT


@contextmanager
def stack_process(
    database_url: str, log: Path, environment: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """``rft run`` on ``database_url`` and a free port: the process and the API's URL.

    It gets a flag file of its own (the local defaults, ``flags_file_of(log)``), so a
    developer's edits to ``.local/flags.json`` never change what it does. Its output
    goes to ``log`` rather than a pipe, which would fill up unread and stall the
    stack. ``environment`` adds to (or overrides) the inherited variables. Stopped with
    SIGTERM afterwards, as Ctrl-C would.
    """
    flags = flags_file_of(log)
    shutil.copyfile(LOCAL_DEFAULTS_FILE, flags)
    environment = (
        os.environ
        | (environment or {})
        | {"DATABASE_URL": database_url, "PORT": "0", "RFT_FLAGS_FILE": str(flags)}
    )
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "rft_tools.cli", "run"],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield process, _api_url(process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def flags_file_of(log: Path) -> Path:
    """The flag document of the stack that writes ``log``."""
    return log.with_name(f"{log.stem}-flags.json")


def banner(log: Path) -> dict[str, Any] | None:
    """The JSON line the stack prints once it serves (api, aws_endpoint, stripe...)."""
    for line in log.read_text().splitlines():
        if line.startswith('{"api"'):
            return json.loads(line)
    return None


def _api_url(process: subprocess.Popen, log: Path, timeout_s: float = 60) -> str:
    """The URL in the banner the stack prints once it serves."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if served := banner(log):
            return served["api"]
        if process.poll() is not None:
            raise RuntimeError(f"rft run exited with {process.returncode}; see {log}")
        time.sleep(0.1)
    raise TimeoutError(f"rft run did not serve within {timeout_s} s; see {log}")
