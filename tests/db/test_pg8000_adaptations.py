"""``rft_common.db.adaptations`` overrides pg8000 methods and calls its internals: these
tests fail on a pg8000 release that changes any of them (the version pinned, every
signature relied on), so a bump is a decision, not an accident. The round trips the
overrides exist for are counted in tests/db/test_round_trips.py."""

from __future__ import annotations

import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from pg8000 import converters, core, dbapi, legacy

from rft_common.db import adaptations

PROJECT_ROOT = Path(__file__).resolve().parents[2]

RELIED_ON = {
    # overridden by AdaptedConnection
    core.CoreConnection.__init__: (
        "(self, user, host='localhost', database=None, port=5432, password=None, "
        "source_address=None, unix_sock=None, ssl_context=None, timeout=None, "
        "tcp_keepalive=True, application_name=None, replication=None, "
        "startup_params=None, sock=None)"
    ),
    legacy.Connection.__init__: "(self, *args, **kwargs)",
    core.CoreConnection.execute_unnamed: "(self, statement, vals=(), oids=(), stream=None)",
    core.CoreConnection.execute_simple: "(self, statement)",
    core.CoreConnection._send_message: "(self, code, data)",
    core.CoreConnection.handle_messages: "(self, context)",
    core.CoreConnection.close: "(self)",
    # called by the overrides, and by rft_common.db.postgres.Connection / Result
    core.CoreConnection.send_PARSE: "(self, statement_name_bin, statement, oids=())",
    core.CoreConnection.send_DESCRIBE_STATEMENT: "(self, statement_name_bin)",
    core.CoreConnection.send_BIND: "(self, statement_name_bin, params)",
    core.CoreConnection.send_EXECUTE: "(self)",
    core._write: "(sock, d)",
    core._flush: "(sock)",
    converters.make_params: "(py_types, values)",
    dbapi.convert_paramstyle: "(style, query, args)",
    core.Context.__init__: "(self, statement, stream=None, columns=None, input_funcs=None)",
}


def test_pg8000_is_the_release_the_adaptations_were_written_for():
    dependencies = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    layer_requirements = (PROJECT_ROOT / "layers/common/requirements.txt").read_text().split()

    assert version("pg8000") == adaptations.PG8000_VERSION
    assert f"pg8000=={adaptations.PG8000_VERSION}" in dependencies
    assert f"pg8000=={adaptations.PG8000_VERSION}" in layer_requirements


@pytest.mark.parametrize(
    ("function", "signature"), RELIED_ON.items(), ids=[f.__qualname__ for f in RELIED_ON]
)
def test_what_the_adaptations_override_or_call_keeps_its_signature(function, signature):
    assert str(inspect.signature(function)) == signature


def test_the_names_and_state_the_overrides_use_are_still_pg8000s():
    assert isinstance(legacy.Connection._in_transaction, property)
    assert core.SYNC_MSG == b"S\x00\x00\x00\x04"
    assert core.QUERY == b"Q"
    assert core.NULL_BYTE == b"\x00"
    context = core.Context("SELECT 1")
    assert (context.row_count, context.columns, context.rows) == (-1, None, None)


def test_pg8000s_own_classes_are_left_as_they_are():
    for name in ("execute_unnamed", "execute_simple", "_send_message", "handle_messages"):
        assert getattr(legacy.Connection, name) is getattr(core.CoreConnection, name)
        assert getattr(adaptations.AdaptedConnection, name) is not getattr(
            core.CoreConnection, name
        )
    assert legacy.convert_paramstyle is dbapi.convert_paramstyle
    assert legacy.convert_paramstyle.__module__ == "pg8000.dbapi"


STATEMENTS = [
    ("SELECT :a, :b, :a", {"a": 1, "b": 2}),
    ("SELECT :a, ':b', CAST(:c AS json), 'x'::text -- :d\n", {"a": 1, "c": "{}"}),
    ("SELECT $$:a$$, E'\\':b', \":c\" FROM t WHERE id = ANY(:ids)", {"ids": [1, 2]}),
]


@pytest.mark.parametrize(("sql", "parameters"), STATEMENTS)
def test_a_statement_converts_as_pg8000s_cursors_convert_it(sql, parameters):
    statement, names = adaptations.native_statement(sql)

    assert (statement, tuple(parameters[name] for name in names)) == dbapi.convert_paramstyle(
        "named", sql, parameters
    )


def test_a_text_is_converted_once():
    sql = "SELECT :once_only"
    adaptations.native_statement(sql)
    before = adaptations.native_statement.cache_info().hits

    adaptations.native_statement(sql)

    assert adaptations.native_statement.cache_info().hits == before + 1
