"""A local stack of its own for stress scenarios: its own PostgreSQL and database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from rft_tools.local_db import LOCAL_DIR, embedded_url, ensure_database, start_embedded
from rft_tools.migrations import upgrade

STRESS_DATA_DIR = LOCAL_DIR / "pgstress"
STACK_LOG = LOCAL_DIR / "stress-stack.log"


@dataclass
class RunningStack:
    api: str
    database_url: str
    engine: Engine
    environment: dict[str, str]

    def rft(self, *arguments: str) -> str:
        """Run an ``rft`` command against this stack; its standard output."""
        return subprocess.run(
            [sys.executable, "-m", "rft_tools.cli", *arguments],
            env=self.environment,
            check=True,
            capture_output=True,
            text=True,
        ).stdout


def _wait_for_banner(process: subprocess.Popen, timeout_s: float = 60) -> str:
    """The API URL the stack prints once it serves (its output goes to ``STACK_LOG``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the stack exited early; see {STACK_LOG}")
        for line in STACK_LOG.read_text().splitlines():
            if line.startswith('{"api"'):
                return json.loads(line)["api"]
        time.sleep(0.2)
    raise TimeoutError(f"the stack did not start in {timeout_s} s; see {STACK_LOG}")


@contextmanager
def running_stack(prepare: Callable[[Engine], None]) -> Iterator[RunningStack]:
    """Start PostgreSQL, migrate, ``prepare(engine)``, then ``rft run``; stop it all after."""
    server = start_embedded(STRESS_DATA_DIR)
    url = make_url(embedded_url(STRESS_DATA_DIR, "rft_stress")).render_as_string(False)
    try:
        ensure_database(url, recreate=True)
        upgrade(url)
        engine = create_engine(url, pool_pre_ping=True)
        prepare(engine)
        environment = os.environ | {"DATABASE_URL": url, "PORT": "0"}
        with STACK_LOG.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "rft_tools.cli", "run"],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            api = _wait_for_banner(process)
            yield RunningStack(api, url, engine, environment)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            engine.dispose()
    finally:
        server.stop()
