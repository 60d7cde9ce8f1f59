"""Finding likely duplicate customers: each reason, scores, dismissals, paging."""

from __future__ import annotations

import json
import logging
import time

import pytest
from sqlalchemy import text

from rft_common.db.postgres import run_transaction
from rft_common.staff.tokens import Staff
from rft_common.users.duplicates import (
    list_duplicates,
    mark_not_duplicate,
    possible_duplicates,
    scan_queued,
)
from tests.admin_helpers import add_user


def pairs(engine, *, scan: bool = True) -> dict[tuple[int, int], list[str]]:
    """The candidate pairs and their reasons, after the scan (as the schedule runs it)."""
    if scan:
        scan_queued(budget_seconds=60)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT user_id, other_id, reasons FROM duplicate_candidates")
        ).all()
    return {(row.user_id, row.other_id): list(row.reasons) for row in rows}


def add_customers(engine, *rows: dict) -> list[int]:
    with engine.begin() as connection:
        return [add_user(connection, **row) for row in rows]


def test_the_same_local_part_at_a_misspelt_provider_is_a_candidate(db):
    first, second = add_customers(
        db,
        {"email": "sam.patel@gmail.com", "name": "Sam Patel"},
        {"email": "sam.patel@gmial.com", "name": "Sam Patel"},
    )
    assert pairs(db) == {(first, second): ["email_typo_domain", "same_name"]}


def test_a_phone_in_any_uk_spelling_is_the_same_phone(db):
    first, second, third = add_customers(
        db,
        {"email": "a@example.com", "name": "Jo Smith", "phone": "07700 900123"},
        {"email": "b@example.org", "name": "Alex Brown", "phone": "+44 (0)7700-900123"},
        {"email": "c@example.net", "name": "Kim Lee", "phone": "0044 7700 900123"},
    )
    assert pairs(db) == {
        (first, second): ["same_phone"],
        (first, third): ["same_phone"],
        (second, third): ["same_phone"],
    }


def test_the_same_name_and_company_is_a_candidate(db):
    first, second = add_customers(
        db,
        {"email": "priya@acme.co.uk", "name": "Priya  Shah", "company_name": "Acme Ltd"},
        {"email": "p.shah@hotmail.co.uk", "name": "priya shah", "company_name": "ACME LTD"},
    )
    assert pairs(db) == {(first, second): ["same_name_and_company", "same_name"]}


def test_local_parts_one_edit_apart_at_one_domain_are_a_candidate(db):
    first, second = add_customers(
        db,
        {"email": "oliver.jones@outlook.com", "name": "Oliver Jones"},
        {"email": "olivre.jones@outlook.com", "name": "Olivia Jones"},
    )
    assert pairs(db) == {(first, second): ["email_one_edit", "similar_name"]}


def test_local_parts_that_differ_in_a_digit_are_two_people(db):
    add_customers(
        db,
        {"email": "jo.smith1@gmail.com", "name": "Jo Smith"},
        {"email": "jo.smith2@gmail.com", "name": "Jo Smyth"},
    )
    assert pairs(db) == {}


def test_work_and_personal_addresses_of_one_name_are_a_candidate(db):
    first, second = add_customers(
        db,
        {"email": "leo.evans@gmail.com", "name": "Leo Evans"},
        {"email": "leo.evans@company12.co.uk", "name": "Leo Evans", "company_name": "C12"},
    )
    assert pairs(db) == {(first, second): ["same_name_similar_email", "same_name"]}


def test_staff_are_never_candidates(db):
    add_customers(
        db,
        {"email": "sarah.jones@gmail.com", "name": "Sarah Jones"},
        {"email": "sarah.jones@gmial.com", "name": "Sarah Jones", "role": "admin"},
    )
    assert pairs(db) == {}


def test_an_edit_that_makes_two_customers_alike_finds_them(db):
    first, second = add_customers(
        db, {"email": "x@example.com", "phone": "0114 496 0000"}, {"email": "y@example.org"}
    )
    assert pairs(db) == {}
    with db.begin() as connection:
        connection.execute(
            text("UPDATE users SET phone = '+441144960000' WHERE id = :id"), {"id": second}
        )
    assert pairs(db) == {(first, second): ["same_phone"]}


def test_a_pair_marked_not_a_duplicate_never_comes_back(db):
    first, second = add_customers(
        db,
        {"email": "sam.patel@gmail.com", "name": "Sam Patel"},
        {"email": "sam.patel@gmial.com", "name": "Sam Patel"},
    )
    assert list(pairs(db)) == [(first, second)]
    admin = Staff(id=7, email="jo.admin@reactfasttraining.co.uk", role="admin")
    mark = mark_not_duplicate(second, first, actor=admin)
    assert (mark.user_id, mark.other_id, mark.marked_by_id) == (first, second, 7)
    with db.begin() as connection:
        connection.execute(text("UPDATE users SET phone = '07700 900123'"))
    assert pairs(db) == {}
    assert list_duplicates(limit=10).data == []
    assert run_transaction(lambda connection: possible_duplicates(connection, first)) == []


def test_pages_are_best_first_and_every_pair_appears_once(db):
    rows = []
    for number in range(7):
        rows.append({"email": f"person{number}@gmail.com", "name": f"Person {number}"})
        rows.append({"email": f"person{number}@gmial.com", "name": f"Person {number}"})
        rows.append({"email": f"other{number}@example.com", "phone": f"0114 496 000{number}"})
        rows.append({"email": f"else{number}@example.org", "phone": f"0114 496 000{number}"})
    add_customers(db, *rows)
    scan_queued(budget_seconds=60)
    seen, cursor = [], None
    while True:
        page = list_duplicates(limit=3, cursor=cursor)
        assert page.total == 14
        seen.extend(page.data)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len({(pair.user.id, pair.other.id) for pair in seen}) == 14
    scores = [pair.score for pair in seen]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(1 - 0.15 * 0.7)
    assert scores[-1] == pytest.approx(0.6)


def test_customers_wait_for_the_scheduled_scan(db, lambda_context):
    from tests.conftest import load_function

    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (email, name, role) "
                "SELECT 'bulk' || n || '@' || domain, 'Bulk ' || n, 'customer' "
                "FROM generate_series(1, 15) AS n, "
                "unnest(ARRAY['gmail.com', 'gmial.com']) AS domain"
            )
        )
    assert pairs(db, scan=False) == {}
    assert list_duplicates(limit=1).pending_scan == 30

    result = load_function("duplicate_scan").lambda_handler({}, lambda_context)

    assert result == {"scanned": 30, "stillQueued": 0}
    assert sorted(pairs(db, scan=False).values()) == [["email_typo_domain", "same_name"]] * 15
    assert list_duplicates(limit=1).pending_scan == 0


def test_a_scan_with_nothing_queued_logs_and_publishes_nothing(db, lambda_context, capsys):
    from rft_common.core.observability import logger
    from tests.conftest import load_function

    records: list[logging.LogRecord] = []
    collect = logging.Handler()
    collect.emit = records.append
    logging.getLogger(logger.name).addHandler(collect)
    try:
        result = load_function("duplicate_scan").lambda_handler({}, lambda_context)
    finally:
        logging.getLogger(logger.name).removeHandler(collect)

    assert result == {"scanned": 0, "stillQueued": 0}
    assert records == []
    assert capsys.readouterr().out == ""  # no metrics document either


def test_rft_duplicates_scan_drains_the_queue(db, capsys):
    from rft_tools.cli.main import main

    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (email, phone, role) SELECT 'p' || n || '@example.com', "
                "CASE WHEN n <= 2 THEN '0114 496 0000' END, 'customer' "
                "FROM generate_series(1, 25) AS n"
            )
        )

    assert main(["duplicates", "scan"]) == 0

    assert json.loads(capsys.readouterr().out) | {"seconds": 0} == {
        "scanned": 25,
        "still_queued": 0,
        "seconds": 0,
    }
    assert list(pairs(db, scan=False).values()) == [["same_phone"]]


def test_the_scan_allows_statements_as_long_in_the_cli_as_in_the_function():
    from rft_common.users.duplicates import SCAN_SOCKET_TIMEOUT_SECONDS
    from rft_tools.cfn_template import load_template
    from tests.conftest import PROJECT_ROOT

    template = load_template(PROJECT_ROOT / "template.yaml")
    function = template["Resources"]["DuplicateScanFunction"]["Properties"]

    variables = function["Environment"]["Variables"]
    assert variables["DB_SOCKET_TIMEOUT_SECONDS"] == SCAN_SOCKET_TIMEOUT_SECONDS


def test_the_local_stack_runs_the_scan_on_its_schedule(db):
    from rft_tools.cfn_template import load_template
    from rft_tools.local.schedule import LocalScheduler, scheduled_functions
    from tests.conftest import PROJECT_ROOT

    functions = [
        scheduled
        for scheduled in scheduled_functions(
            load_template(PROJECT_ROOT / "template.yaml"), PROJECT_ROOT
        )
        if scheduled.function.function_id == "DuplicateScanFunction"
    ]
    assert len(functions) == 1
    scheduler = LocalScheduler(functions, interval=0.05)
    add_customers(db, {"email": "ann.lee@gmail.com"}, {"email": "ann.lee@gmial.com"})

    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while not pairs(db, scan=False) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()

    assert list(pairs(db, scan=False).values()) == [["email_typo_domain"]]
