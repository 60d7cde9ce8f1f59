"""The checkout's customer upsert is the Core statement's rendering, kept in step."""

from __future__ import annotations

from rft_common.customers import upsert_sql as customer_upsert_sql
from rft_common.customers.upsert import GENERATED_MODULE, render_module
from rft_tools.cli import main


def test_the_rendered_upsert_is_what_the_core_statement_compiles_to():
    assert GENERATED_MODULE.read_text() == render_module(), (
        "rft_common/customers/upsert_sql.py is stale: run `.venv/bin/rft dev render-sql`"
    )


def test_it_takes_the_customer_columns_and_constants_only():
    parameters = {"email", "name", "role", "phone", "company_name", "customer_type"}
    constants = set(customer_upsert_sql.UPSERT_ONE_CONSTANTS)

    assert constants.isdisjoint(parameters)
    assert set(customer_upsert_sql.UPSERT_ONE_CONSTANTS.values()) == {"customer", ""}
    for name in parameters | constants:
        assert f":{name}" in customer_upsert_sql.UPSERT_ONE_SQL


def test_the_command_writes_the_module(monkeypatch, tmp_path, capsys):
    target = tmp_path / "customer_upsert_sql.py"
    monkeypatch.setattr("rft_common.customers.upsert.GENERATED_MODULE", target)

    assert main(["dev", "render-sql"]) == 0

    assert target.read_text() == render_module()
    assert str(target) in capsys.readouterr().out
