"""Consent records: the history, its current state, the cache, and unsubscribe tokens."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from rft_common.consent.service import hold_people, object_to, record_consent
from rft_common.consent.tokens import (
    unsubscribe_token,
    unsubscribe_url,
    verify_unsubscribe_token,
)
from rft_common.core.errors import NotFound
from rft_common.core.settings import get_settings
from rft_common.core.vocabulary import MARKETING_EMAIL, RENEWAL_REMINDERS
from rft_common.db.postgres import run_transaction
from rft_tools.operations import migrations
from tests.admin_helpers import add_user
from tests.conftest import scratch_database


def current(db, user_id: int) -> dict[str, tuple[str, str]]:
    with db.connect() as connection:
        rows = connection.execute(
            text("SELECT purpose, basis, source FROM current_consents WHERE user_id = :id"),
            {"id": user_id},
        ).all()
    return {purpose: (basis, source) for purpose, basis, source in rows}


def events(db, user_id: int) -> list[tuple[str, str, str]]:
    with db.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT purpose, basis, source FROM consent_events WHERE user_id = :id "
                    "ORDER BY id"
                ),
                {"id": user_id},
            ).all()
        ]


def marketing_consent(db, user_id: int) -> bool:
    with db.connect() as connection:
        return connection.execute(
            text("SELECT marketing_consent FROM users WHERE id = :id"), {"id": user_id}
        ).scalar_one()


def test_the_latest_event_is_the_state_and_marketing_consent_follows_it(db):
    with db.begin() as connection:
        ann = add_user(connection, "ann@example.com")
        bob = add_user(connection, "bob@example.com")

    recorded = run_transaction(
        lambda c: record_consent(
            c, [ann, bob, 999_999], MARKETING_EMAIL, "explicit_consent", "admin", actor_id=7
        )
    )
    assert recorded == [ann, bob]
    assert marketing_consent(db, ann) and marketing_consent(db, bob)

    run_transaction(lambda c: record_consent(c, [ann], MARKETING_EMAIL, "objection", "admin"))
    run_transaction(
        lambda c: record_consent(c, [ann], RENEWAL_REMINDERS, "soft_opt_in", "checkout", "v1")
    )
    assert current(db, ann) == {
        MARKETING_EMAIL: ("objection", "admin"),
        RENEWAL_REMINDERS: ("soft_opt_in", "checkout"),
    }
    assert not marketing_consent(db, ann)
    assert marketing_consent(db, bob)
    assert events(db, ann) == [
        (MARKETING_EMAIL, "explicit_consent", "admin"),
        (MARKETING_EMAIL, "objection", "admin"),
        (RENEWAL_REMINDERS, "soft_opt_in", "checkout"),
    ]


def test_unless_current_leaves_those_people_alone(db):
    with db.begin() as connection:
        objected = add_user(connection, "objected@example.com")
        fresh = add_user(connection, "fresh@example.com")
    run_transaction(lambda c: object_to(c, [objected], RENEWAL_REMINDERS, "unsubscribe_link"))

    recorded = run_transaction(
        lambda c: record_consent(
            c,
            [objected, fresh],
            RENEWAL_REMINDERS,
            "soft_opt_in",
            "checkout",
            "v1",
            unless_current=("objection", "explicit_consent"),
        )
    )
    assert recorded == [fresh]
    assert current(db, objected)[RENEWAL_REMINDERS] == ("objection", "unsubscribe_link")


@pytest.mark.parametrize("round_number", range(3))
def test_two_objections_at_once_record_one(db, round_number):
    with db.begin() as connection:
        user_id = add_user(connection, f"twice{round_number}@example.com")
    barrier = threading.Barrier(2)
    results: list[list[int]] = []

    def unsubscribe() -> None:
        barrier.wait()
        results.append(
            run_transaction(lambda c: object_to(c, [user_id], MARKETING_EMAIL, "unsubscribe_link"))
        )

    threads = [threading.Thread(target=unsubscribe) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [[], [user_id]]
    assert events(db, user_id) == [(MARKETING_EMAIL, "objection", "unsubscribe_link")]


def test_a_token_names_its_person_and_purpose_and_nothing_else_verifies(monkeypatch):
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "test-unsubscribe-key")
    monkeypatch.setenv("PUBLIC_API_URL", "https://example.test/")
    get_settings.cache_clear()
    token = unsubscribe_token(42, RENEWAL_REMINDERS)

    assert verify_unsubscribe_token(token) == (42, RENEWAL_REMINDERS)
    assert unsubscribe_url(42, RENEWAL_REMINDERS) == f"https://example.test/api/unsubscribe/{token}"
    assert token == unsubscribe_token(42, RENEWAL_REMINDERS)
    assert token != unsubscribe_token(43, RENEWAL_REMINDERS)
    assert token != unsubscribe_token(42, MARKETING_EMAIL)
    assert all(c.isalnum() or c in "-_." for c in token)

    payload, signature = token.split(".")
    other_payload = unsubscribe_token(43, RENEWAL_REMINDERS).split(".")[0]
    for forged in (
        f"{other_payload}.{signature}",
        f"{payload}.{signature[:-2]}",
        payload,
        "",
        "not-a-token",
        "a.b.c",
        "%%%.###",
    ):
        with pytest.raises(NotFound) as refused:
            verify_unsubscribe_token(forged)
        assert refused.value.field == "token"

    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "another-key")
    get_settings.cache_clear()
    with pytest.raises(NotFound):
        verify_unsubscribe_token(token)


def test_an_unknown_purpose_has_no_token():
    with pytest.raises(ValueError):
        unsubscribe_token(1, "newsletter")


def test_the_migration_imports_todays_consent_as_explicit_for_both_purposes(postgres_server_url):
    url = scratch_database(postgres_server_url, "rft_consent_migration_test")
    migrations.upgrade(url, "0018_unpaid_holds")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            consenting = add_user(connection, "yes@example.com", marketing_consent=True)
            add_user(connection, "no@example.com")
        migrations.upgrade(url, "head")
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT user_id, purpose, basis, source, notice_version FROM current_consents "
                    "ORDER BY user_id, purpose"
                )
            ).all()
        assert [tuple(row) for row in rows] == [
            (consenting, MARKETING_EMAIL, "explicit_consent", "import", None),
            (consenting, RENEWAL_REMINDERS, "explicit_consent", "import", None),
        ]
    finally:
        engine.dispose()


def test_an_objection_that_waited_for_a_soft_opt_in_is_the_later_event(db):
    """The objection's transaction starts first, then waits for the checkout holding the
    person: its event still comes after the soft opt-in (times are taken at the insert,
    not at the start of the transaction)."""
    with db.begin() as connection:
        user_id = add_user(connection, "race@example.com")
    objection_started = threading.Event()
    checkout_holds = threading.Event()

    def checkout(connection) -> None:
        objection_started.wait(5)
        hold_people(connection, [user_id])  # the customer upsert's lock, in the checkout
        checkout_holds.set()
        time.sleep(0.3)  # the objection now waits for this row
        record_consent(
            connection,
            [user_id],
            RENEWAL_REMINDERS,
            "soft_opt_in",
            "checkout",
            "v1",
            unless_current=("objection", "explicit_consent"),
        )

    def unsubscribe(connection) -> None:
        connection.execute("SELECT now()")  # the transaction has begun
        objection_started.set()
        checkout_holds.wait(5)
        object_to(connection, [user_id], RENEWAL_REMINDERS, "unsubscribe_link")

    threads = [
        threading.Thread(target=run_transaction, args=(job,)) for job in (checkout, unsubscribe)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert events(db, user_id) == [
        (RENEWAL_REMINDERS, "soft_opt_in", "checkout"),
        (RENEWAL_REMINDERS, "objection", "unsubscribe_link"),
    ]
    assert current(db, user_id)[RENEWAL_REMINDERS] == ("objection", "unsubscribe_link")
