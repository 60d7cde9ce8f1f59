"""Database engine and transactions, sized for Lambda behind RDS Proxy.

The engine is built on first use, once per execution environment, never at import
time. Each Lambda holds one connection (RDS Proxy multiplexes them); the local
stack raises ``DB_POOL_SIZE`` because it serves requests from threads.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from rft_common.errors import DatabaseUnavailable
from rft_common.settings import get_settings

T = TypeVar("T")

SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
UNIQUE_VIOLATION = "23505"
RETRYABLE_SQLSTATES = frozenset({SERIALIZATION_FAILURE, DEADLOCK_DETECTED})
ERASURE_LOCK = 715_015
"""Advisory lock key: erasures (``privacy``) hold it exclusively, backfill batches shared,
so a batch never reads a person's bookings while the person is being erased."""
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

_engine: Engine | None = None


def database_url() -> str | URL:
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    if not settings.db_secret_arn:
        raise DatabaseUnavailable("no database configured (DATABASE_URL or DB_SECRET_ARN)")
    from rft_common.secrets import secret_json

    secret = secret_json(settings.db_secret_arn)
    return URL.create(
        "postgresql+pg8000",
        username=secret["username"],
        password=secret["password"],
        host=settings.db_proxy_endpoint or secret["host"],
        port=int(secret.get("port", 5432)),
        database=settings.db_name or secret.get("dbname", "postgres"),
    )


class _PlaceholderNames(dict):
    """Stands in for a parameter dict: looking up a name yields the name itself."""

    def __getitem__(self, name: str) -> str:
        return name


def _memoise_pg8000_paramstyle_conversion() -> None:
    """Parse each SQL text's placeholders once instead of on every execute.

    pg8000 rewrites ``%(name)s`` placeholders to ``$n`` by scanning the statement
    character by character in Python on every call (about a millisecond for our
    longer statements). The rewrite depends only on the paramstyle and the text, so
    it is cached here; the values are still taken from each call's arguments.
    """
    from pg8000 import dbapi, legacy

    if getattr(legacy.convert_paramstyle, "memoised", False):
        return
    convert = dbapi.convert_paramstyle

    @functools.lru_cache(maxsize=1024)
    def parse(style: str, query: str) -> tuple[str, tuple[str, ...]]:
        statement, names = convert(style, query, _PlaceholderNames())
        return statement, tuple(names) if style in ("named", "pyformat") else ()

    def convert_paramstyle(style: str, query: str, args: Any) -> tuple[str, Any]:
        statement, names = parse(style, query)
        if style in ("named", "pyformat"):
            return statement, tuple(args[name] for name in names)
        return statement, args

    convert_paramstyle.memoised = True  # type: ignore[attr-defined]
    convert_paramstyle.__wrapped__ = convert  # type: ignore[attr-defined]
    legacy.convert_paramstyle = convert_paramstyle
    dbapi.convert_paramstyle = convert_paramstyle


def _send_each_statement_in_one_round_trip() -> None:
    """Send each statement to PostgreSQL in one round trip instead of three.

    pg8000 runs a statement with the extended query protocol in three exchanges, each
    waiting for the server: Parse and Sync; Describe and Sync; Bind, Execute and Sync.
    Nothing it sends later depends on those answers (parameters and results travel as
    text), so here the messages go together, ended by one Sync, as libpq sends them.
    A checkout's ping, BEGIN, statements and COMMIT then cost one round trip each
    (behind RDS Proxy, about a millisecond apiece) instead of three. Errors are as
    before: the server answers the first failing message with its error, skips the
    rest up to the Sync, and pg8000 raises it. COPY (a ``stream``) keeps pg8000's path.
    """
    from pg8000 import core

    original = core.CoreConnection.execute_unnamed
    if getattr(original, "one_round_trip", False):
        return

    def execute_unnamed(
        self: Any, statement: str, vals: Any = (), oids: Any = (), stream: Any = None
    ) -> Any:
        if stream is not None:
            return original(self, statement, vals, oids, stream)
        context = core.Context(statement)
        self.send_PARSE(core.NULL_BYTE, statement, oids)
        self.send_DESCRIBE_STATEMENT(core.NULL_BYTE)
        self.send_BIND(core.NULL_BYTE, core.make_params(self.py_types, vals))
        self.send_EXECUTE()
        core._write(self._sock, core.SYNC_MSG)
        core._flush(self._sock)
        self.handle_messages(context)
        return context

    execute_unnamed.one_round_trip = True  # type: ignore[attr-defined]
    core.CoreConnection.execute_unnamed = execute_unnamed  # type: ignore[method-assign]


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        _memoise_pg8000_paramstyle_conversion()
        _send_each_statement_in_one_round_trip()
        url = database_url()
        in_aws = not get_settings().database_url
        # The longest a statement may take, lock waits included, before the connection
        # is given up; the backfill worker, whose batches may queue behind each other
        # on shared customers, allows more than the API.
        timeout = int(os.environ.get("DB_SOCKET_TIMEOUT_SECONDS", "5"))
        _engine = create_engine(
            url,
            pool_size=int(os.environ.get("DB_POOL_SIZE", "1")),
            max_overflow=0,
            pool_timeout=10,
            # A dead connection (database restart, proxy idle timeout) is replaced on
            # the next checkout instead of failing one request.
            pool_pre_ping=True,
            pool_recycle=300,
            connect_args={"ssl_context": True, "timeout": timeout}
            if in_aws
            else {"timeout": timeout},
        )
    return _engine


def reset_engine() -> None:
    """Forget the engine (tests and the CLI switch databases)."""
    global _engine
    if _engine is not None:
        _engine.dispose()
    _engine = None


def sqlstate(error: DBAPIError) -> str | None:
    """The PostgreSQL SQLSTATE of a pg8000 error, if the server sent one."""
    details = error.orig.args[0] if error.orig is not None and error.orig.args else None
    return details.get("C") if isinstance(details, dict) else None


def is_retryable(error: DBAPIError) -> bool:
    state = sqlstate(error)
    if state in RETRYABLE_SQLSTATES:
        return True
    details = error.orig.args[0] if error.orig is not None and error.orig.args else None
    return (
        state == UNIQUE_VIOLATION
        and isinstance(details, dict)
        and details.get("n") in RETRYABLE_UNIQUE_CONSTRAINTS
    )


def is_connection_error(error: DBAPIError) -> bool:
    return error.connection_invalidated or sqlstate(error) is None


def run_transaction(
    work: Callable[[Connection], T], *, attempts: int = 5, idempotent: bool = False
) -> T:
    """Run ``work`` in one transaction, retrying serialisation failures, deadlocks and
    lost insert races (``RETRYABLE_UNIQUE_CONSTRAINTS``).

    ``work`` must be safe to re-run from the start: everything it did is rolled back
    before a retry. Connection failures become ``DatabaseUnavailable``.

    A statement that outlives the socket timeout (``DB_SOCKET_TIMEOUT_SECONDS``)
    raises ``TimeoutError``; its connection is discarded, never returned to the pool.
    With ``idempotent``, that is retried once on a fresh connection: only for work
    whose second run is harmless even if the first one committed (the timeout may hit
    the COMMIT itself), such as a backfill batch. A checkout is not: it fails.
    """
    timeouts_left = 1 if idempotent else 0
    attempt = 0
    while True:
        attempt += 1
        try:
            with get_engine().connect() as connection, connection.begin():
                try:
                    return work(connection)
                except TimeoutError:
                    # Before the rollback: the socket is mid-reply and cannot be reused.
                    connection.invalidate()
                    raise
        except TimeoutError:
            if timeouts_left:
                timeouts_left -= 1
                continue
            raise
        except DBAPIError as error:
            if is_retryable(error) and attempt < attempts:
                time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter only
                continue
            if is_connection_error(error):
                raise DatabaseUnavailable("the database is not reachable") from error
            raise
