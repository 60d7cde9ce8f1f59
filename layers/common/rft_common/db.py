"""Database engine and transactions, sized for Lambda behind RDS Proxy.

The engine is built on first use, once per execution environment, never at import
time. Each Lambda holds one connection (RDS Proxy multiplexes them); the local
stack raises ``DB_POOL_SIZE`` because it serves requests from threads.
"""

from __future__ import annotations

import contextlib
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
BEGIN = "begin transaction"
"""What pg8000 sends to open each transaction."""
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

    convert_paramstyle.__wrapped__ = convert  # type: ignore[attr-defined]
    legacy.convert_paramstyle = convert_paramstyle
    dbapi.convert_paramstyle = convert_paramstyle


def _send_each_statement_in_one_round_trip() -> None:
    """Send each statement to PostgreSQL in one round trip instead of three.

    pg8000 runs a statement with the extended query protocol in three exchanges, each
    waiting for the server: Parse and Sync; Describe and Sync; Bind, Execute and Sync.
    Nothing it sends later depends on those answers (parameters and results travel as
    text), so here the messages go together, ended by one Sync, as libpq sends them.
    A checkout's statements and COMMIT then cost one round trip each (behind RDS
    Proxy, about a millisecond apiece) instead of three. Errors are as
    before: the server answers the first failing message with its error, skips the
    rest up to the Sync, and pg8000 raises it. COPY (a ``stream``) keeps pg8000's path.
    """
    from pg8000 import core

    original = core.CoreConnection.execute_unnamed

    def execute_unnamed(
        self: Any, statement: str, vals: Any = (), oids: Any = (), stream: Any = None
    ) -> Any:
        if stream is not None:
            return original(self, statement, vals, oids, stream)
        context = core.Context(statement)
        params = core.make_params(self.py_types, vals)  # may raise: before anything is sent
        self.send_PARSE(core.NULL_BYTE, statement, oids)
        self.send_DESCRIBE_STATEMENT(core.NULL_BYTE)
        self.send_BIND(core.NULL_BYTE, params)
        self.send_EXECUTE()
        core._write(self._sock, core.SYNC_MSG)
        core._flush(self._sock)
        self.handle_messages(context)
        return context

    core.CoreConnection.execute_unnamed = execute_unnamed  # type: ignore[method-assign]


def _send_begin_with_the_first_statement() -> None:
    """Send a transaction's BEGIN together with its first statement: one round trip less.

    pg8000 opens each transaction with ``begin transaction`` on its own and waits for
    the answer before it sends the first statement. Here that BEGIN is only noted; the
    next message to the server is preceded by it, and the next read takes the BEGIN's
    answer (one ReadyForQuery) before the statement's. What the server runs, and in
    which order, is unchanged. A BEGIN still unsent when its transaction ends (a
    statement refused before it was sent, then a rollback) goes with the next
    transaction's first statement, which needs one anyway, unless the connection has
    switched to autocommit meanwhile.
    """
    from pg8000 import core

    execute_simple = core.CoreConnection.execute_simple
    send_message = core.CoreConnection._send_message
    handle_messages = core.CoreConnection.handle_messages

    def execute_simple_deferring_begin(self: Any, statement: str) -> Any:
        if statement == BEGIN and not self._in_transaction:
            self._begin_deferred = True
            return core.Context(statement)
        return execute_simple(self, statement)

    def send_message_after_begin(self: Any, code: bytes, data: bytes) -> None:
        if getattr(self, "_begin_deferred", False):
            self._begin_deferred = False
            if not self.autocommit:
                send_message(self, core.QUERY, BEGIN.encode() + core.NULL_BYTE)
                self._begin_unread = True
        send_message(self, code, data)

    def handle_messages_after_begin(self: Any, context: Any) -> None:
        if getattr(self, "_begin_unread", False):
            self._begin_unread = False
            try:
                handle_messages(self, core.Context(BEGIN))
            except Exception:
                # Keep the conversation in step: the statement's answer follows.
                with contextlib.suppress(Exception):
                    handle_messages(self, context)
                raise
        handle_messages(self, context)

    core.CoreConnection.execute_simple = execute_simple_deferring_begin  # type: ignore[method-assign]
    core.CoreConnection._send_message = send_message_after_begin  # type: ignore[method-assign]
    core.CoreConnection.handle_messages = handle_messages_after_begin  # type: ignore[method-assign]


def _report_a_reset_connection_as_a_network_error() -> None:
    """Raise pg8000's ``InterfaceError("network error")`` when the server has reset the
    connection, whichever read finds it.

    pg8000 wraps socket errors in that error (which SQLAlchemy recognises as a lost
    connection, so run_transaction can replace it) except on the first read of a
    reply, where a ``ConnectionResetError`` escapes as it is. Timeouts stay
    ``TimeoutError`` (run_transaction treats them apart).
    """
    from pg8000 import core

    read = core._read

    def read_reporting_resets(sock: Any, size: int) -> bytes:
        try:
            return read(sock, size)
        except ConnectionError as error:
            raise core.InterfaceError("network error") from error

    core._read = read_reporting_resets


def _close_a_connection_whose_server_is_gone_quietly() -> None:
    """Closing a connection whose server has already gone is done, not an error.

    pg8000 says goodbye (a Terminate message) before it releases the socket, and raises
    ``InterfaceError("network error")`` when that cannot be sent; the socket is released
    all the same. SQLAlchemy closes every connection it replaces (one the database or its
    proxy dropped, one a statement timed out on) and logs such an error at ERROR with a
    traceback: a plain-text, multi-line record outside the JSON logs, for an expected
    event. Closing an already-closed connection still raises.
    """
    from pg8000 import core

    close = core.CoreConnection.close

    def close_without_goodbye_if_gone(self: Any) -> None:
        if self._usock is None:
            close(self)  # raises "connection is closed", as pg8000 does
            return
        try:
            close(self)
        except core.InterfaceError as error:
            if str(error) != "network error":
                raise

    core.CoreConnection.close = close_without_goodbye_if_gone  # type: ignore[method-assign]


@functools.cache
def _adapt_pg8000() -> None:
    """pg8000 as the engine uses it: each adaptation above, once per process (each wraps
    what it replaces, so a second application would wrap it twice)."""
    _memoise_pg8000_paramstyle_conversion()
    _send_each_statement_in_one_round_trip()
    _send_begin_with_the_first_statement()
    _report_a_reset_connection_as_a_network_error()
    _close_a_connection_whose_server_is_gone_quietly()


def socket_timeout_seconds() -> int:
    """The longest a statement may take, lock waits included, before its connection is
    given up (``DB_SOCKET_TIMEOUT_SECONDS``); the backfill worker, whose batches may
    queue behind each other on shared customers, and the scheduled scans allow more
    than the API's 5 s."""
    return int(os.environ.get("DB_SOCKET_TIMEOUT_SECONDS", "5"))


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        _adapt_pg8000()
        url = database_url()
        in_aws = not get_settings().database_url
        timeout = socket_timeout_seconds()
        _engine = create_engine(
            url,
            pool_size=int(os.environ.get("DB_POOL_SIZE", "1")),
            max_overflow=0,
            pool_timeout=10,
            # No ping before each checkout (a round trip on every request): a pooled
            # connection found dead by its first statement is replaced and the
            # transaction run again (run_transaction). Connections live 5 minutes.
            pool_pre_ping=False,
            pool_recycle=300,
            # Errors (and the pool's log of a dead connection) never quote the values
            # sent: they can be a customer's email or phone.
            hide_parameters=True,
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

    A connection that fails during ``work`` (a pooled one the database or its proxy
    closed meanwhile: the engine does not ping before use) is replaced and ``work`` run
    once more: the server discarded the unfinished transaction with the connection.
    Neither a failure at COMMIT (the commit may have happened) nor one to connect is
    retried.

    A statement that outlives the socket timeout (``DB_SOCKET_TIMEOUT_SECONDS``)
    raises ``TimeoutError``; its connection is discarded, never returned to the pool.
    With ``idempotent``, that is retried once on a fresh connection: only for work
    whose second run is harmless even if the first one committed (the timeout may hit
    the COMMIT itself), such as a backfill batch. A checkout is not: it fails.
    """
    timeouts_left = 1 if idempotent else 0
    reconnects_left = 1
    attempt = 0
    while True:
        attempt += 1
        working = False
        try:
            with get_engine().connect() as connection, connection.begin():
                working = True
                try:
                    result = work(connection)
                except TimeoutError:
                    # Before the rollback: the socket is mid-reply and cannot be reused.
                    connection.invalidate()
                    raise
                working = False
            return result
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
                if error.connection_invalidated and working and reconnects_left:
                    reconnects_left -= 1
                    continue
                raise DatabaseUnavailable("the database is not reachable") from error
            raise
