"""The database helpers that need no database."""

from __future__ import annotations

import pytest
from pg8000 import legacy

from rft_common.db import postgres

STATEMENTS = [
    ("pyformat", "SELECT %(a)s, %(b)s, %(a)s", {"a": 1, "b": 2}),
    ("pyformat", "SELECT '%(not)s', %(x)s::int -- %(comment)s\n", {"x": 3}),
    ("named", "SELECT :a, ':b', CAST(:c AS json), 'x'::text", {"a": 1, "c": "{}"}),
    ("format", "SELECT %s, %s", (1, 2)),
]


@pytest.fixture(scope="module")
def memoised():
    postgres.adapt_pg8000()
    return legacy.convert_paramstyle


@pytest.mark.parametrize(("style", "query", "args"), STATEMENTS)
def test_memoised_conversion_equals_pg8000s_own(memoised, style, query, args):
    original = memoised.__wrapped__
    assert original.__module__ == "pg8000.dbapi"

    assert memoised(style, query, args) == original(style, query, args)


def test_memoised_conversion_takes_values_from_each_call(memoised):
    query = "SELECT %(a)s, %(b)s"

    first = memoised("pyformat", query, {"a": 1, "b": 2})
    second = memoised("pyformat", query, {"a": "x", "b": None})

    assert first[1] == (1, 2)
    assert second[1] == ("x", None)
