"""PostgreSQL through pg8000: connections, transactions and their retries.

The one way every function reaches PostgreSQL: SQL text with ``:name`` parameters, run
by ``run_transaction`` on a small pool, every connection opened by ``connect`` and every
transaction retried by ``retry_transaction``. No function imports SQLAlchemy (it was the
largest library in their imports; docs/performance.md has the figures);
SQLAlchemy Core stays for the table definitions alembic compares (``db.tables``). pg8000
itself is imported by the first connection, or before the SnapStart snapshot
(``load_driver``).

Each Lambda holds one connection (RDS Proxy multiplexes them); the local stack raises
``DB_POOL_SIZE`` because it serves requests from threads. Connections live 5 minutes
and are not pinged before use: one found dead by a transaction's statements is
replaced and the transaction run again (``retry_transaction``).
"""

from __future__ import annotations

import contextlib
import functools
import queue
import random
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from rft_common.core import snapstart
from rft_common.core.errors import DatabaseUnavailable
from rft_common.core.settings import get_settings

T = TypeVar("T")
C = TypeVar("C")

SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
UNIQUE_VIOLATION = "23505"
LOCK_NOT_AVAILABLE = "55P03"
"""A lock wait outlived ``lock_timeout``."""
RETRYABLE_SQLSTATES = frozenset({SERIALIZATION_FAILURE, DEADLOCK_DETECTED})
RETRYABLE_UNIQUE_CONSTRAINTS = frozenset(
    {"users_email_key", "uq_bookings_stripe_payment_intent_id_verified"}
)
"""Unique constraints whose violation means "lost a race", not "bad input".

The customer upsert resolves conflicts on ``email_normalized``; the legacy unique
constraint on the raw ``email`` is not its arbiter. When two first bookings of one
new customer insert at the same instant, PostgreSQL may check the legacy index
first and raise instead of taking the ``DO UPDATE`` path. Run again, the upsert
finds the committed row. Two bookings of one PaymentIntent are ordered by a lock
before either inserts, so that index should never fire; if it does, the retry finds
the first booking and replays it.
"""
URL_SCHEMES = ("postgresql+pg8000", "postgresql")
CONNECTION_LIFETIME_SECONDS = 300
POOL_WAIT_SECONDS = 10


def socket_timeout_seconds() -> int:
    """The longest a statement may take (``Settings.db_socket_timeout_seconds``)."""
    return get_settings().db_socket_timeout_seconds


def parse_database_url(url: str) -> dict[str, Any]:
    """pg8000's connection arguments from a SQLAlchemy-style URL,
    ``postgresql+pg8000://user:password@host:port/database?unix_sock=/path``;
    query arguments are passed on as they are, as SQLAlchemy does."""
    parts = urlsplit(url)
    if parts.scheme not in URL_SCHEMES:
        raise DatabaseUnavailable(
            f"DATABASE_URL must start with postgresql+pg8000://, not {parts.scheme}://"
        )
    arguments: dict[str, Any] = {
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password) if parts.password is not None else None,
        "host": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "database": unquote(parts.path.lstrip("/")) or None,
    }
    return arguments | dict(parse_qsl(parts.query))


def connection_arguments() -> dict[str, Any]:
    """pg8000's connection arguments: ``DATABASE_URL`` locally, else the RDS secret
    (``DB_SECRET_ARN``) with TLS, through RDS Proxy when ``DB_PROXY_ENDPOINT`` is set."""
    settings = get_settings()
    timeout = socket_timeout_seconds()
    if settings.database_url:
        return parse_database_url(settings.database_url) | {"timeout": timeout}
    if not settings.db_secret_arn:
        raise DatabaseUnavailable("no database configured (DATABASE_URL or DB_SECRET_ARN)")
    from rft_common.aws.secrets import secret_json

    secret = secret_json(settings.db_secret_arn)
    return {
        "user": secret["username"],
        "password": secret["password"],
        "host": settings.db_proxy_endpoint or secret["host"],
        "port": int(secret.get("port", 5432)),
        "database": settings.db_name or secret.get("dbname", "postgres"),
        "ssl_context": True,
        "timeout": timeout,
    }


@snapstart.warm
def load_driver() -> None:
    """Import pg8000 and our adaptations of it, as the first connection would."""
    import rft_common.db.adaptations  # noqa: F401


def connect(arguments: Mapping[str, Any]) -> Any:
    """A new pg8000 connection (the DB-API one SQLAlchemy's dialect also uses), with our
    adaptations (``rft_common.db.adaptations``)."""
    from rft_common.db.adaptations import AdaptedConnection

    return AdaptedConnection(**arguments)


def _pg8000_error(error: BaseException) -> BaseException:
    """The pg8000 exception itself, also when SQLAlchemy has wrapped it (``.orig``)."""
    return getattr(error, "orig", None) or error


def sqlstate(error: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of an error, if it is one the server sent (pg8000's, or
    SQLAlchemy's wrapping it); ``None`` for any other exception."""
    details = _server_fields(error)
    return details.get("C") if details else None


def _server_fields(error: BaseException) -> dict[str, str] | None:
    arguments = _pg8000_error(error).args
    return arguments[0] if arguments and isinstance(arguments[0], dict) else None


def is_disconnect(error: BaseException) -> bool:
    """Whether the connection is gone (the test SQLAlchemy's pg8000 dialect applies)."""
    message = str(_pg8000_error(error))
    return "network error" in message or "connection is closed" in message


def is_retryable(error: BaseException) -> bool:
    state = sqlstate(error)
    if state in RETRYABLE_SQLSTATES:
        return True
    details = _server_fields(error)
    return (
        state == UNIQUE_VIOLATION
        and details is not None
        and details.get("n") in RETRYABLE_UNIQUE_CONSTRAINTS
    )


def is_connection_error(error: BaseException) -> bool:
    return is_disconnect(error) or sqlstate(error) is None


def retry_transaction(
    begin: Callable[[], AbstractContextManager[C]],
    work: Callable[[C], T],
    database_errors: tuple[type[BaseException], ...],
    *,
    attempts: int = 5,
    idempotent: bool = False,
) -> T:
    """Run ``work`` in a transaction opened by ``begin`` (which commits when the block
    ends, rolls back when it raises, and discards the connection after a
    ``TimeoutError``), retrying serialisation failures, deadlocks and lost insert races
    (``RETRYABLE_UNIQUE_CONSTRAINTS``).

    ``work`` must be safe to re-run from the start: everything it did is rolled back
    before a retry. Connection failures (among ``database_errors``, the driver's
    exceptions as the caller sees them) become ``DatabaseUnavailable``.

    A connection that fails during ``work`` (a pooled one the database or its proxy
    closed meanwhile: nothing pings before use) is replaced and ``work`` run once
    more: the server discarded the unfinished transaction with the connection.
    Neither a failure at COMMIT (the commit may have happened) nor one to connect is
    retried.

    A statement that outlives the socket timeout (``DB_SOCKET_TIMEOUT_SECONDS``)
    raises ``TimeoutError``. With ``idempotent``, that is retried once on a fresh
    connection: only for work whose second run is harmless even if the first one
    committed (the timeout may hit the COMMIT itself), such as a backfill batch. A
    checkout is not: it fails.
    """
    timeouts_left = 1 if idempotent else 0
    reconnects_left = 1
    attempt = 0
    while True:
        attempt += 1
        working = False
        try:
            with begin() as connection:
                working = True
                result = work(connection)
                working = False
            return result
        except TimeoutError:
            if timeouts_left:
                timeouts_left -= 1
                continue
            raise
        except database_errors as error:
            if is_retryable(error) and attempt < attempts:
                time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter only
                continue
            if is_connection_error(error):
                if is_disconnect(error) and working and reconnects_left:
                    reconnects_left -= 1
                    continue
                raise DatabaseUnavailable("the database is not reachable") from error
            raise


@functools.cache
def _row_type(names: tuple[str, ...]) -> type:
    return namedtuple("Row", names, rename=True)  # type: ignore[misc]


class Result:
    """A statement's rows, each a named tuple of its columns, and how many rows it
    changed (``rowcount``, for INSERT, UPDATE and DELETE)."""

    def __init__(self, context: Any) -> None:
        """From what pg8000 answered a statement with: its row count, columns and rows."""
        self.rowcount: int = context.row_count
        if not context.columns:
            self._rows: list[Any] = []
            return
        row_type = _row_type(tuple(column["name"] for column in context.columns))
        self._rows = [row_type(*row) for row in context.rows]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any | None:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise LookupError(f"expected exactly one row, got {len(self._rows)}")
        return self._rows[0]

    def one_or_none(self) -> Any | None:
        if len(self._rows) > 1:
            raise LookupError(f"expected at most one row, got {len(self._rows)}")
        return self.first()

    def scalar_one(self) -> Any:
        """The first column of the one row."""
        return self.one()[0]

    def scalar(self) -> Any | None:
        """The first column of the first row, or ``None`` without rows."""
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> list[Any]:
        """The first column of every row."""
        return [row[0] for row in self._rows]

    def mappings(self) -> list[dict[str, Any]]:
        """Every row as a dict of its columns."""
        return [row._asdict() for row in self._rows]


class Connection:
    """The connection a transaction's work is given: SQL text with ``:name`` parameters.

    Each text is converted to PostgreSQL's ``$n`` placeholders once per process
    (``native_statement``), not on every execute as pg8000's cursors do; a text without
    parameters goes as it is (pg8000's simple query, as its cursors send it)."""

    def __init__(self, dbapi_connection: Any) -> None:
        self._connection = dbapi_connection
        self._begun = False

    def execute(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Result:
        from rft_common.db.adaptations import BEGIN, native_statement

        if not self._begun:
            self._connection.execute_simple(BEGIN)  # sent with this statement
            self._begun = True
        if not parameters:
            return Result(self._connection.execute_simple(sql))
        statement, names = native_statement(sql)
        values = tuple(parameters[name] for name in names)
        return Result(self._connection.execute_unnamed(statement, values))


@dataclass
class _Pooled:
    connection: Any
    opened_at: float = field(default_factory=time.monotonic)


class Pool:
    """Up to ``size`` connections, each reused for ``CONNECTION_LIFETIME_SECONDS``.

    A caller waits up to ``POOL_WAIT_SECONDS`` for one to be free."""

    def __init__(self, size: int, arguments: Mapping[str, Any]) -> None:
        self._arguments = arguments
        self._free_slots = threading.BoundedSemaphore(size)
        self._idle: queue.LifoQueue[_Pooled] = queue.LifoQueue()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a new transaction, committed when the block ends; rolled
        back if it raises; discarded if it is lost, timed out or fails to roll back."""
        if not self._free_slots.acquire(timeout=POOL_WAIT_SECONDS):
            raise DatabaseUnavailable("every database connection is busy")
        pooled = None
        reusable = False
        try:
            pooled = self._take()
            try:
                yield Connection(pooled.connection)
                pooled.connection.commit()
                reusable = True
            except TimeoutError:
                raise
            except BaseException as error:
                if is_disconnect(error):
                    # The server (or the proxy) went away: the idle ones are gone too.
                    self.close()
                else:
                    with contextlib.suppress(Exception):
                        pooled.connection.rollback()
                        reusable = True
                raise
        finally:
            if pooled is not None:
                self._give_back(pooled) if reusable else _close_quietly(pooled.connection)
            self._free_slots.release()

    def _take(self) -> _Pooled:
        while True:
            try:
                pooled = self._idle.get_nowait()
            except queue.Empty:
                return _Pooled(connect(self._arguments))
            if time.monotonic() - pooled.opened_at < CONNECTION_LIFETIME_SECONDS:
                return pooled
            _close_quietly(pooled.connection)

    def _give_back(self, pooled: _Pooled) -> None:
        self._idle.put(pooled)

    def close(self) -> None:
        """Close the idle connections (those in use are closed or kept when returned)."""
        while True:
            try:
                _close_quietly(self._idle.get_nowait().connection)
            except queue.Empty:
                return


def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):
        connection.close()


_pool: Pool | None = None
_pool_lock = threading.Lock()


def get_pool() -> Pool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = Pool(get_settings().db_pool_size, connection_arguments())
        return _pool


def reset_pool() -> None:
    """Forget the pool and the settings it was made with (tests and the CLI switch
    databases, pool sizes and timeouts)."""
    global _pool
    get_settings.cache_clear()
    with _pool_lock:
        if _pool is not None:
            _pool.close()
        _pool = None


@contextlib.contextmanager
def transaction_at(url: str) -> Iterator[Connection]:
    """One transaction on a connection of its own to the database at ``url`` (a
    ``DATABASE_URL``), closed afterwards: for tools and tests."""
    pool = Pool(1, parse_database_url(url))
    try:
        with pool.transaction() as connection:
            yield connection
    finally:
        pool.close()


def run_transaction(
    work: Callable[[Connection], T], *, attempts: int = 5, idempotent: bool = False
) -> T:
    """``work`` in one transaction on a pooled connection, retried as
    ``retry_transaction`` says."""
    from pg8000.exceptions import Error

    return retry_transaction(
        get_pool().transaction, work, (Error,), attempts=attempts, idempotent=idempotent
    )
