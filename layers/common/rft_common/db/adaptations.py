"""How our connections differ from pg8000's own, without changing pg8000 for anyone else.

``AdaptedConnection`` is pg8000's DB-API connection with four differences, each an
override of a method of pg8000's (1.31.6, pinned exactly in pyproject.toml:
tests/db/test_pg8000_adaptations.py fails on a release that changes what they rely
on). Only connections opened by ``rft_common.db.postgres.connect`` are of this class;
pg8000's module functions and classes are untouched (alembic's and the tests' SQLAlchemy
connections are plain pg8000).

``native_statement`` converts our ``:name`` SQL text to pg8000's ``$n`` form once per
text; ``rft_common.db.postgres.Connection`` runs the result on an ``AdaptedConnection``
directly, so the checkout's statements are not scanned again on every execute.

Kept, and why (SnapStart restores an initialised process, but every one of these acts
on a request's statements or connection, after the restore, where SnapStart changes
nothing):

- one round trip per statement (``execute_unnamed``): about a millisecond per
  statement behind RDS Proxy, on every request;
- BEGIN sent with the first statement (``execute_simple``, ``_send_message``,
  ``handle_messages``): one round trip less per transaction;
- a connection reset reported as pg8000's network error (``handle_messages``,
  ``__init__``): ``retry_transaction`` and the pool recognise a lost connection by it;
- a quiet close of a connection whose server is gone (``close``): an expected event,
  not an error with a traceback.

Dropped: the process-wide memoisation of pg8000's paramstyle conversion
(``convert_paramstyle``, which scans a statement character by character in Python).
SnapStart does not make it pointless (the scan happens per execute, after the
restore); ``native_statement`` replaces it, with no patch.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from pg8000 import core, legacy
from pg8000.converters import make_params
from pg8000.dbapi import convert_paramstyle
from pg8000.exceptions import InterfaceError

PG8000_VERSION = "1.31.6"
"""The pg8000 release these overrides were written against (pyproject.toml pins it)."""
BEGIN = "begin transaction"
"""What pg8000 sends to open each transaction."""
NETWORK_ERROR = "network error"
"""pg8000's message for a connection it lost."""


class _PlaceholderNames(dict):
    """Stands in for a parameter dict: looking up a name yields the name itself."""

    def __getitem__(self, name: str) -> str:
        return name


@functools.lru_cache(maxsize=1024)
def native_statement(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its ``:name`` placeholders as PostgreSQL's ``$n``, and the name of
    each ``$n`` in order, by pg8000's own conversion (the one its cursors apply to
    every execute), done once per text."""
    statement, names = convert_paramstyle("named", sql, _PlaceholderNames())
    return statement, tuple(names)


class AdaptedConnection(legacy.Connection):
    """pg8000's DB-API connection, with one round trip per statement and per BEGIN, and
    a lost connection always reported as one (the module docstring says why)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._begin_deferred = False
        self._begin_unread = False
        try:
            super().__init__(*args, **kwargs)
        except ConnectionError as error:
            raise InterfaceError(NETWORK_ERROR) from error

    def execute_unnamed(
        self, statement: str, vals: Any = (), oids: Any = (), stream: Any = None
    ) -> Any:
        """Send each statement to PostgreSQL in one round trip instead of three.

        pg8000 runs a statement with the extended query protocol in three exchanges,
        each waiting for the server: Parse and Sync; Describe and Sync; Bind, Execute
        and Sync. Nothing it sends later depends on those answers (parameters and
        results travel as text), so here the messages go together, ended by one Sync,
        as libpq sends them. Errors are as before: the server answers the first failing
        message with its error, skips the rest up to the Sync, and pg8000 raises it.
        COPY (a ``stream``) keeps pg8000's path.
        """
        if stream is not None:
            return super().execute_unnamed(statement, vals, oids, stream)
        context = core.Context(statement)
        params = make_params(self.py_types, vals)  # may raise: before anything is sent
        self.send_PARSE(core.NULL_BYTE, statement, oids)
        self.send_DESCRIBE_STATEMENT(core.NULL_BYTE)
        self.send_BIND(core.NULL_BYTE, params)
        self.send_EXECUTE()
        core._write(self._sock, core.SYNC_MSG)
        core._flush(self._sock)
        self.handle_messages(context)
        return context

    def execute_simple(self, statement: str) -> Any:
        """Note a transaction's BEGIN instead of sending it: it goes with the next
        message (``_send_message``), and its answer is read before that message's
        (``handle_messages``). What the server runs, and in which order, is unchanged.

        A BEGIN still unsent when its transaction ends (a statement refused before it
        was sent, then a rollback) goes with the next transaction's first statement,
        which needs one anyway, unless the connection has switched to autocommit.
        """
        if statement == BEGIN and not self._in_transaction:
            self._begin_deferred = True
            return core.Context(statement)
        return super().execute_simple(statement)

    def _send_message(self, code: bytes, data: bytes) -> None:
        if self._begin_deferred:
            self._begin_deferred = False
            if not self.autocommit:
                super()._send_message(core.QUERY, BEGIN.encode() + core.NULL_BYTE)
                self._begin_unread = True
        super()._send_message(code, data)

    def handle_messages(self, context: Any) -> None:
        """pg8000's, after the answer to a BEGIN sent with this statement; a connection
        reset by the server raises pg8000's network error, whichever read finds it
        (pg8000 lets a ``ConnectionResetError`` on the first read of a reply escape as
        it is). Timeouts stay ``TimeoutError``: ``retry_transaction`` treats them apart.
        """
        try:
            if self._begin_unread:
                self._begin_unread = False
                try:
                    super().handle_messages(core.Context(BEGIN))
                except Exception:
                    # Keep the conversation in step: the statement's answer follows.
                    with contextlib.suppress(Exception):
                        super().handle_messages(context)
                    raise
            super().handle_messages(context)
        except ConnectionError as error:
            raise InterfaceError(NETWORK_ERROR) from error

    def close(self) -> None:
        """Closing a connection whose server has already gone is done, not an error.

        pg8000 says goodbye (a Terminate message) before it releases the socket, and
        raises its network error when that cannot be sent; the socket is released all
        the same. A pool closes every connection it replaces (one the database or its
        proxy dropped, one a statement timed out on); SQLAlchemy's logs such an error at
        ERROR with a traceback, for an expected event. Closing an already-closed
        connection still raises.
        """
        if self._usock is None:
            super().close()  # raises "connection is closed", as pg8000 does
            return
        try:
            super().close()
        except InterfaceError as error:
            if str(error) != NETWORK_ERROR:
                raise
