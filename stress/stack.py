"""A local stack of its own for stress scenarios: its own PostgreSQL and database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from rft_tools.local.db import embedded_url, ensure_database, start_embedded
from rft_tools.local.process import stack_process
from rft_tools.operations.migrations import upgrade
from rft_tools.paths import LOCAL_DIR

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
        try:
            with stack_process(url, STACK_LOG) as (_, api):
                yield RunningStack(api, url, engine, os.environ | {"DATABASE_URL": url})
        finally:
            engine.dispose()
    finally:
        server.stop()
