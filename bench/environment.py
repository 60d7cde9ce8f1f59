"""A PostgreSQL for benchmarks, apart from the dev and test databases."""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rft_tools.local.db import embedded_url, ensure_database, start_embedded
from rft_tools.operations.migrations import upgrade
from rft_tools.paths import LOCAL_DIR

BENCH_DATA_DIR = LOCAL_DIR / "pgbench"
QUIET_LOAD = 0.5
"""A quiet machine: a one-minute load average under this share of its cores."""
QUIET_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "eu-west-2",
    "AWS_REGION": "eu-west-2",
}


@contextmanager
def bench_server() -> Iterator[str]:
    """URL of the maintenance database of the benchmark server (embedded unless given)."""
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return
    server = start_embedded(BENCH_DATA_DIR)
    try:
        yield embedded_url(BENCH_DATA_DIR, "postgres")
    finally:
        server.stop()


def fresh_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """A new database ``name``: migrated to head, or a copy of database ``template``."""
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    if template is None:
        ensure_database(url, recreate=True)
        upgrade(url)
        return url
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return url


def use_database(url: str, flags_file: str) -> None:
    """Point the application code in this process at ``url`` with the given flags."""
    from rft_common.aws import flags
    from rft_common.core import settings
    from rft_common.db import postgres as db

    os.environ.update(QUIET_ENVIRONMENT | {"DATABASE_URL": url, "RFT_FLAGS_FILE": flags_file})
    settings.get_settings.cache_clear()
    flags.get_feature_flags.cache_clear()
    db.reset_pool()


def settle(server_url: str, *, keep: Collection[str] = (), quiet_within: float = 120) -> None:
    """Drop the databases sections left (``bench_*``, except ``keep``), write out dirty
    buffers, and wait (up to ``quiet_within`` seconds) until the machine is quiet, so that
    the next section does not measure the last one's aftermath: autovacuum, the
    checkpointer and the kernel working through the backfill's four 1,000,000-booking
    databases. Right after the backfill the booking section's p99 was 10.1 and 25.1 ms
    in two runs, 7.2 ms on a quiet machine."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        left = connection.execute(
            text("SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'")
        ).scalars()
        for name in sorted(set(left) - set(keep)):
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text("CHECKPOINT"))
    admin.dispose()
    deadline = time.monotonic() + quiet_within
    while os.getloadavg()[0] > QUIET_LOAD * (os.cpu_count() or 1) and time.monotonic() < deadline:
        time.sleep(5)
