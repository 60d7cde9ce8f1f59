"""SQLAlchemy Core's engine and transactions, for every function but the checkout's.

The engine is built on first use, once per execution environment, never at import
time. Its connections come from ``postgres.connect`` and its transactions are retried
by ``postgres.retry_transaction``, as the checkout's own (``postgres.run_transaction``)
are; this module only adds SQLAlchemy's pool and Core around them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from rft_common.core import snapstart
from rft_common.db import postgres

T = TypeVar("T")

ERASURE_LOCK = 715_015
"""Advisory lock key: erasures (``privacy``) hold it exclusively, backfill batches shared,
so a batch never reads a person's bookings while the person is being erased."""

_engine: Engine | None = None


@snapstart.warm
def load_dialect() -> None:
    """Import SQLAlchemy's pg8000 dialect, as the engine's creation would."""
    import sqlalchemy.dialects.postgresql.pg8000  # noqa: F401


def database_url() -> URL:
    """The database as a SQLAlchemy URL (alembic's), from the same settings as every
    connection (``postgres.connection_arguments``)."""
    arguments = dict(postgres.connection_arguments())
    query = {
        name: str(value)
        for name, value in arguments.items()
        if name not in ("user", "password", "host", "port", "database", "ssl_context", "timeout")
    }
    return URL.create(
        "postgresql+pg8000",
        username=arguments["user"],
        password=arguments["password"],
        host=arguments["host"],
        port=arguments["port"],
        database=arguments["database"],
        query=query,
    )


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        arguments = postgres.connection_arguments()
        _engine = create_engine(
            "postgresql+pg8000://",
            creator=lambda: postgres.connect(arguments),
            pool_size=postgres.pool_size(),
            max_overflow=0,
            pool_timeout=postgres.POOL_WAIT_SECONDS,
            # No ping before each checkout (a round trip on every request): a pooled
            # connection found dead by its first statement is replaced and the
            # transaction run again (postgres.retry_transaction).
            pool_pre_ping=False,
            pool_recycle=postgres.CONNECTION_LIFETIME_SECONDS,
            # Errors (and the pool's log of a dead connection) never quote the values
            # sent: they can be a customer's email or phone.
            hide_parameters=True,
        )
    return _engine


def reset_engine() -> None:
    """Forget the engine and the checkout's pool (tests and the CLI switch databases)."""
    global _engine
    if _engine is not None:
        _engine.dispose()
    _engine = None
    postgres.reset_pool()


@contextlib.contextmanager
def _engine_transaction() -> Iterator[Connection]:
    """A transaction committed when the block ends, rolled back if it raises. After a
    ``TimeoutError``, in the work or at COMMIT, the connection is discarded instead: its
    socket is mid-reply, and a rollback or its next user would read that late reply
    as the answer to their own statement."""
    with get_engine().connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
            transaction.commit()
        except TimeoutError:
            connection.invalidate()
            raise
        except BaseException:
            transaction.rollback()
            raise


def run_transaction(
    work: Callable[[Connection], T], *, attempts: int = 5, idempotent: bool = False
) -> T:
    """``work`` in one transaction on the engine, retried as
    ``postgres.retry_transaction`` says."""
    return postgres.retry_transaction(
        _engine_transaction, work, (DBAPIError,), attempts=attempts, idempotent=idempotent
    )
