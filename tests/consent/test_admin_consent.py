"""Consent through the admin API: edits write the history and the audit log, the detail
shows the state per purpose, the export holds the history, erasure keeps an objection."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from rft_common.consent.service import record_consent
from rft_common.core.vocabulary import MARKETING_EMAIL, RENEWAL_REMINDERS
from rft_common.db.postgres import run_transaction
from rft_common.staff.tokens import Staff
from rft_common.users.merges import merge_users
from tests.admin_helpers import ADMIN_EMAIL, ADMIN_ID, add_user, call
from tests.factories import add_session, legacy_insert_booking

pytestmark = pytest.mark.usefixtures("signed_in_admin")


def events(db, user_id: int) -> list[tuple[Any, ...]]:
    with db.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT purpose, basis, source, notice_version, booking_id, actor_id "
                    "FROM consent_events WHERE user_id = :id ORDER BY id"
                ),
                {"id": user_id},
            ).all()
        ]


@pytest.fixture
def customer(db) -> int:
    with db.begin() as connection:
        return add_user(connection, "casey@example.com", name="Casey Jones")


def test_an_admin_edit_of_marketing_consent_is_an_event_for_both_purposes_and_audited(
    db, admin_users_function, customer
):
    status, detail, _ = call(
        admin_users_function,
        "PATCH",
        f"/api/admin/users/{customer}",
        body={"marketing_consent": True},
    )
    assert status == 200, detail
    assert detail["marketing_consent"] is True
    marketing, reminders = detail["consents"]
    assert (marketing["purpose"], marketing["basis"]) == (MARKETING_EMAIL, "explicit_consent")
    assert marketing["may_write"] is True
    assert (reminders["purpose"], reminders["source"]) == (RENEWAL_REMINDERS, "admin")

    status, detail, _ = call(
        admin_users_function,
        "PATCH",
        f"/api/admin/users/{customer}",
        body={"marketing_consent": False, "city": "Sheffield"},
    )
    assert status == 200, detail
    assert detail["marketing_consent"] is False
    assert detail["city"] == "Sheffield"
    assert {state["purpose"]: state["basis"] for state in detail["consents"]} == {
        MARKETING_EMAIL: "objection",
        RENEWAL_REMINDERS: "objection",
    }

    assert events(db, customer) == [
        (MARKETING_EMAIL, "explicit_consent", "admin", None, None, ADMIN_ID),
        (RENEWAL_REMINDERS, "explicit_consent", "admin", None, None, ADMIN_ID),
        (MARKETING_EMAIL, "objection", "admin", None, None, ADMIN_ID),
        (RENEWAL_REMINDERS, "objection", "admin", None, None, ADMIN_ID),
    ]
    with db.connect() as connection:
        audited = connection.execute(
            text(
                "SELECT changes FROM user_audit_log WHERE user_id = :id AND action = 'edit' "
                "ORDER BY id"
            ),
            {"id": customer},
        ).scalars()
        assert [entry.get("marketing_consent") for entry in audited] == [
            {"old": False, "new": True},
            {"old": True, "new": False},
        ]

    status, detail, _ = call(
        admin_users_function,
        "PATCH",
        f"/api/admin/users/{customer}",
        body={"marketing_consent": False},
    )
    assert status == 200
    assert len(events(db, customer)) == 4  # unchanged: nothing recorded, nothing audited


def test_the_detail_shows_none_when_nothing_was_ever_recorded(admin_users_function, customer):
    status, detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{customer}")

    assert status == 200
    assert detail["consents"] == [
        {
            "purpose": purpose,
            "basis": "none",
            "may_write": False,
            "source": None,
            "notice_version": None,
            "recorded_at": None,
        }
        for purpose in (MARKETING_EMAIL, RENEWAL_REMINDERS)
    ]


def test_the_export_holds_the_consent_history(db, admin_users_function, customer):
    with db.begin() as connection:
        session_id = add_session(connection)
        booking_id = legacy_insert_booking(
            connection,
            session_id=session_id,
            email="casey@example.com",
            user_id=customer,
            reference="RFT-CONSENT-1",
        )
    run_transaction(
        lambda c: record_consent(
            c, [customer], RENEWAL_REMINDERS, "soft_opt_in", "checkout", "v7", booking_id
        )
    )
    run_transaction(
        lambda c: record_consent(c, [customer], RENEWAL_REMINDERS, "objection", "unsubscribe_link")
    )

    status, document, _ = call(
        admin_users_function, "GET", f"/api/admin/users/{customer}/data-export"
    )

    assert status == 200, document
    history = [
        (e["purpose"], e["basis"], e["source"], e["notice_version"], e["booking_id"])
        for e in document["consent_history"]
    ]
    assert history == [
        (RENEWAL_REMINDERS, "soft_opt_in", "checkout", "v7", booking_id),
        (RENEWAL_REMINDERS, "objection", "unsubscribe_link", None, None),
    ]
    assert document["consent_history"][0]["booking_reference"]
    assert all(e["recorded_at"] for e in document["consent_history"])


def test_erasure_forgets_the_consent_details_but_keeps_an_objection(
    db, admin_users_function, customer
):
    run_transaction(
        lambda c: record_consent(
            c,
            [customer],
            [MARKETING_EMAIL, RENEWAL_REMINDERS],
            "explicit_consent",
            "admin",
            "wording-3",
            actor_id=ADMIN_ID,
        )
    )

    status, answer, _ = call(
        admin_users_function,
        "POST",
        f"/api/admin/users/{customer}/erase",
        body={"reason": "erasure request, ticket 26"},
    )

    assert status == 200, answer
    assert events(db, customer) == [
        (MARKETING_EMAIL, "objection", "erasure", None, None, None),
        (RENEWAL_REMINDERS, "objection", "erasure", None, None, None),
    ]
    with db.connect() as connection:
        assert (
            connection.execute(
                text("SELECT marketing_consent FROM users WHERE id = :id"), {"id": customer}
            ).scalar_one()
            is False
        )


def test_a_merge_carries_the_duplicates_objections_to_the_survivor_and_no_consent(db):
    with db.begin() as connection:
        survivor = add_user(connection, "kept@example.com", name="Sam Patel")
        duplicate = add_user(connection, "old@example.com", name="Sam Patel")
    run_transaction(
        lambda c: record_consent(
            c, [survivor], [MARKETING_EMAIL, RENEWAL_REMINDERS], "explicit_consent", "admin"
        )
    )
    run_transaction(
        lambda c: record_consent(c, [duplicate], MARKETING_EMAIL, "objection", "unsubscribe_link")
    )
    run_transaction(
        lambda c: record_consent(c, [duplicate], RENEWAL_REMINDERS, "explicit_consent", "admin")
    )

    merge_users(survivor, duplicate, actor=Staff(id=ADMIN_ID, email=ADMIN_EMAIL, role="admin"))

    assert events(db, survivor)[2:] == [
        (MARKETING_EMAIL, "objection", "admin", None, None, ADMIN_ID)
    ]
    with db.connect() as connection:
        assert (
            connection.execute(
                text("SELECT marketing_consent FROM users WHERE id = :id"), {"id": survivor}
            ).scalar_one()
            is False
        )
