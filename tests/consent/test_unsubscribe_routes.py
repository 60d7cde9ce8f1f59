"""The unsubscribe link through the real handler: one-click POST, the page and its button,
bad tokens, idempotence and concurrency, nothing personal in pages or logs."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import text

from rft_common.consent.tokens import unsubscribe_token
from rft_common.core.vocabulary import MARKETING_EMAIL, RENEWAL_REMINDERS
from tests.admin_helpers import add_user
from tests.conftest import FakeLambdaContext, load_function, rest_event
from tests.consent.test_records import events

EMAIL = "robin.unsubscribes@example.com"
ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture(scope="module")
def function():
    return load_function("create_booking", "unsubscribe")


@pytest.fixture
def person(db) -> int:
    with db.begin() as connection:
        return add_user(connection, EMAIL, name="Robin Example")


def send(function, method: str, token: str, body: Any = None, **headers: str) -> dict[str, Any]:
    path = f"/api/unsubscribe/{token}"
    event = rest_event(
        method,
        path,
        body,
        headers=headers,
        resource="/api/unsubscribe/{token}",
        path_parameters={"token": token},
    )
    return function.lambda_handler(event, FakeLambdaContext())


def content_type(result: dict[str, Any]) -> str:
    headers = {name.lower(): values[0] for name, values in result["multiValueHeaders"].items()}
    return headers["content-type"]


def test_a_one_click_post_unsubscribes_at_once_and_again_changes_nothing(db, function, person):
    token = unsubscribe_token(person, RENEWAL_REMINDERS)

    first = send(function, "POST", token, ONE_CLICK, **FORM)
    again = send(function, "POST", token, ONE_CLICK, **FORM)

    assert first["statusCode"] == again["statusCode"] == 200
    assert content_type(first).startswith("application/json")
    assert json.loads(first["body"]) == {"unsubscribed": True, "purpose": RENEWAL_REMINDERS}
    assert events(db, person) == [(RENEWAL_REMINDERS, "objection", "unsubscribe_link")]


def test_a_multipart_one_click_post_is_taken_too(db, function, person):
    boundary = "rft-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    )
    result = send(
        function,
        "POST",
        unsubscribe_token(person, MARKETING_EMAIL),
        body,
        **{"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert result["statusCode"] == 200
    assert events(db, person) == [(MARKETING_EMAIL, "objection", "unsubscribe_link")]


def test_the_page_only_asks_and_its_button_unsubscribes(db, function, person):
    token = unsubscribe_token(person, MARKETING_EMAIL)

    page = send(function, "GET", token, **BROWSER)
    assert page["statusCode"] == 200
    assert content_type(page).startswith("text/html")
    html = page["body"]
    assert '<form method="post">' in html and "<button" in html
    assert "<script" not in html and token not in html and EMAIL not in html
    assert 'lang="en-GB"' in html
    assert events(db, person) == []  # opening the link (a mail scanner) changes nothing

    done = send(function, "POST", token, ONE_CLICK, **FORM, **BROWSER)
    assert done["statusCode"] == 200
    assert content_type(done).startswith("text/html")
    assert "You are unsubscribed" in done["body"]
    assert events(db, person) == [(MARKETING_EMAIL, "objection", "unsubscribe_link")]
    headers = {name.lower(): values[0] for name, values in done["multiValueHeaders"].items()}
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]


@pytest.mark.parametrize("token", ["nonsense", "a.b", "MTox.AAAA", "x" * 300])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_bad_token_is_404_naming_nobody(db, function, person, token, method):
    browser = send(function, method, token, ONE_CLICK if method == "POST" else None, **BROWSER)
    assert browser["statusCode"] == 404
    assert content_type(browser).startswith("text/html")
    assert "not recognised" in browser["body"]

    if method == "POST":
        client = send(function, "POST", token, ONE_CLICK, **FORM)
        assert client["statusCode"] == 404
        assert content_type(client).startswith("application/json")
    assert events(db, person) == []


def test_another_persons_signature_does_not_work(db, function, person):
    with db.begin() as connection:
        other = add_user(connection, "other@example.com")
    payload = unsubscribe_token(other, MARKETING_EMAIL).split(".")[0]
    signature = unsubscribe_token(person, MARKETING_EMAIL).split(".")[1]

    result = send(function, "POST", f"{payload}.{signature}", ONE_CLICK, **FORM)

    assert result["statusCode"] == 404
    assert events(db, other) == []


@pytest.mark.parametrize("round_number", range(3))
def test_two_clicks_at_once_record_one_objection(db, person, round_number):
    token = unsubscribe_token(person, RENEWAL_REMINDERS)
    handlers = [load_function("create_booking", f"click{round_number}-{n}") for n in range(2)]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def click(handler) -> None:
        barrier.wait()
        statuses.append(send(handler, "POST", token, ONE_CLICK, **FORM)["statusCode"])

    threads = [threading.Thread(target=click, args=(handler,)) for handler in handlers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200, 200]
    assert events(db, person) == [(RENEWAL_REMINDERS, "objection", "unsubscribe_link")]


def test_a_merged_records_link_unsubscribes_the_customer_it_was_merged_into(db, function):
    with db.begin() as connection:
        survivor = add_user(connection, "kept@example.com")
        merged = add_user(connection, "merged@example.com")
        connection.execute(
            text("UPDATE users SET merged_into = :survivor WHERE id = :merged"),
            {"survivor": survivor, "merged": merged},
        )

    result = send(function, "POST", unsubscribe_token(merged, MARKETING_EMAIL), ONE_CLICK, **FORM)

    assert result["statusCode"] == 200
    for user_id in (merged, survivor):
        assert events(db, user_id) == [(MARKETING_EMAIL, "objection", "unsubscribe_link")]


def test_the_log_names_no_email(db, function, person, capsys):
    send(function, "POST", unsubscribe_token(person, MARKETING_EMAIL), ONE_CLICK, **FORM)

    captured = capsys.readouterr()
    assert EMAIL not in captured.out + captured.err
