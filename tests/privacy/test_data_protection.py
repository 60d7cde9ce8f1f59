"""UK GDPR: subject access export, erasure that keeps the money, suppression, retention."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import text

from rft_common.backfill.service import (
    MAX_EMAIL_KEY,
    MIN_EMAIL_KEY,
    BookingRangeMessage,
    EmailKeyRangeMessage,
    process_batch,
)
from rft_common.db import locks
from rft_common.db.postgres import run_transaction, transaction_at
from rft_common.email.outbox import enqueue_booking_email
from rft_common.privacy import service as privacy
from rft_common.privacy.service import (
    EMAIL_WHITESPACE,
    ERASED_MARKER,
    LINK_UNLINKED,
    RETENTION_SOCKET_TIMEOUT_SECONDS,
    Actor,
    erase_users,
    run_retention,
)
from rft_common.staff.tokens import Staff
from rft_common.users.duplicates import scan_queued
from rft_common.users.merges import merge_users
from rft_tools.cfn_template import load_template
from rft_tools.cli.main import main
from tests.admin_helpers import ADMIN_EMAIL, ADMIN_ID, add_user, call
from tests.backfill_helpers import contact, insert_legacy_bookings
from tests.conftest import PROJECT_ROOT, FakeLambdaContext, load_function, rest_event
from tests.factories import add_session, add_staff_user, booking_body, stats_mismatches

pytestmark = pytest.mark.usefixtures("signed_in_admin", "customer_accounts_on")

SAM = {
    "email": "Sam.Patel@Example.com",
    "normalized": "sam.patel@example.com",
    "name": "Sam Patel",
    "phone": "07700 900123",
    "company": "Patel Widgets Ltd",
    "special": "Type 1 diabetic, carries insulin",
    "emergency": "Alex Patel 07700 900456",
    "new_phone": "+44 7700 900321",
}
JO = {
    "email": "jo.bloggs@example.org",
    "name": "Jo Bloggs",
    "phone": "07700 900999",
    "company": "Bloggs Care",
}
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")


@pytest.fixture(scope="module")
def create_booking():
    return load_function("create_booking")


def checkout(create_booking, session_id: int, person: dict[str, str], **more: Any) -> dict:
    body = booking_body(
        session_id,
        firstName=person["name"].split()[0],
        lastName=person["name"].split()[1],
        email=f" {person['email']} ",
        phone=person["phone"],
        company=person["company"],
        specialRequirements=person.get("special", "none"),
        emergencyContact=person.get("emergency", "n/a"),
        **more,
    )
    result = create_booking.lambda_handler(
        rest_event("POST", "/api/bookings", body), FakeLambdaContext()
    )
    assert result["statusCode"] == 201, result["body"]
    return json.loads(result["body"])


def move_session_to_past(connection, session_id: int, days_ago: int = 30) -> None:
    connection.execute(
        text(
            "UPDATE course_schedules SET start_datetime = now() - make_interval(days => :d), "
            "end_datetime = now() - make_interval(days => :d) + interval '6 hours' "
            "WHERE id = :id"
        ),
        {"id": session_id, "d": days_ago},
    )


@pytest.fixture
def people(db, create_booking, admin_users_function) -> dict[str, int]:
    """Sam (two past bookings through the checkout, an admin edit, a legacy booking not
    yet linked) and Jo (one booking), as the system would hold them."""
    with db.begin() as connection:
        first = add_session(connection)
        second = add_session(connection, course_name="Paediatric First Aid")
    sam_booking = checkout(create_booking, first, SAM)
    sam_second = checkout(create_booking, second, SAM)
    jo_booking = checkout(create_booking, first, JO)
    sam_id, jo_id = sam_booking["customerId"], jo_booking["customerId"]
    with db.begin() as connection:
        for booking, intent in (
            (sam_booking, "pi_sam_1"),
            (sam_second, "pi_sam_2"),
            (jo_booking, "pi_jo_1"),
        ):
            connection.execute(
                text(
                    "UPDATE bookings SET status = 'confirmed', payment_status = 'paid', "
                    "stripe_payment_intent_id = :intent WHERE id = :id"
                ),
                {"intent": intent, "id": booking["bookingId"]},
            )
        move_session_to_past(connection, first)
        move_session_to_past(connection, second, days_ago=10)
        connection.execute(
            text(
                "INSERT INTO payments (booking_id, amount, status, stripe_payment_intent_id) "
                "SELECT id, payment_amount, 'succeeded', stripe_payment_intent_id FROM bookings"
            )
        )
        connection.execute(
            text(
                "INSERT INTO payment_checkouts (checkout_key, generation, payment_intent_id, "
                "course_schedule_id, number_of_attendees, amount_pence) "
                "SELECT md5(stripe_payment_intent_id), 1, stripe_payment_intent_id, "
                "course_schedule_id, 1, 7500 FROM bookings"
            )
        )
    # Their confirmation emails: Sam's first sent (its content dropped), the others queued.
    for booking in (sam_booking, sam_second, jo_booking):
        run_transaction(partial(enqueue_booking_email, booking_id=booking["bookingId"]))
    with db.begin() as connection:
        connection.execute(
            text("UPDATE email_outbox SET status = 'sent', payload = NULL WHERE dedupe_key = :id"),
            {"id": str(sam_booking["bookingId"])},
        )
    status, _, _ = call(
        admin_users_function,
        "PATCH",
        f"/api/admin/users/{sam_id}",
        body={
            "address_line1": "1 Fargate",
            "city": "Sheffield",
            "notes": "prefers mornings",
            "phone": SAM["new_phone"],
        },
    )
    assert status == 200
    return {"sam": sam_id, "jo": jo_id, "session": first}


def export_of(function, user_id: int) -> dict:
    status, body, _ = call(function, "GET", f"/api/admin/users/{user_id}/data-export")
    assert status == 200, body
    return body


def erase(function, user_id: int, **body: Any) -> tuple[int, dict]:
    status, answer, _ = call(
        function,
        "POST",
        f"/api/admin/users/{user_id}/erase",
        body={"reason": "erasure request, ticket 4711"} | body,
    )
    return status, answer


def rows_as_json(connection, sql: str, **parameters: Any) -> list[dict]:
    return list(
        connection.execute(
            text(f"SELECT to_jsonb(t) FROM ({sql}) AS t ORDER BY 1"), parameters
        ).scalars()
    )


# --- subject access ---------------------------------------------------------------------


def test_the_export_holds_every_stored_field_about_the_person(db, admin_users_function, people):
    document = export_of(admin_users_function, people["sam"])

    with db.connect() as connection:
        user = rows_as_json(connection, "SELECT * FROM users WHERE id = :id", id=people["sam"])[0]
        bookings = rows_as_json(
            connection, "SELECT * FROM bookings WHERE user_id = :id", id=people["sam"]
        )
        user_columns = set(
            connection.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = 'users'"
                )
            ).scalars()
        )
    assert set(document["user"]) >= user_columns - {"password_hash"}
    assert "password_hash" not in document["user"]
    for column, value in user.items():
        if column not in ("password_hash", "total_spent"):
            assert document["user"][column] == value, column
    assert document["user"]["total_spent"] == "150.00"
    assert document["user"]["address_line1"] == "1 Fargate"
    assert document["consents"] == {"marketing_consent": False, "newsletter_subscribed": False}
    assert len(document["bookings"]) == len(bookings) == 2
    for exported, stored in zip(document["bookings"], bookings, strict=True):
        for column, value in stored.items():
            if column != "payment_amount":
                assert exported[column] == value, column
        assert exported["contact_details"]["specialRequirements"] == SAM["special"]
        assert exported["contact_details"]["email"] == f"{SAM['email']}"
    assert {booking["course_name"] for booking in document["bookings"]} == {
        "Emergency First Aid at Work",
        "Paediatric First Aid",
    }
    assert len(document["payments"]) == 2
    assert [entry["action"] for entry in document["audit_entries"]] == ["edit", "data_export"]
    assert document["audit_entries"][0]["changes"]["notes"] == {
        "old": None,
        "new": "prefers mornings",
    }


def test_the_export_holds_nothing_about_anyone_else(admin_users_function, people):
    serialised = json.dumps(export_of(admin_users_function, people["sam"])).lower()

    for value in (JO["email"], JO["name"], JO["phone"], JO["company"], "pi_jo_1"):
        assert value.lower() not in serialised
    assert SAM["normalized"] in serialised


def test_the_export_is_audited_with_the_admin_and_the_time(db, admin_users_function, people):
    export_of(admin_users_function, people["sam"])

    with db.connect() as connection:
        entry = connection.execute(
            text(
                "SELECT actor, actor_id, action, "
                "changed_at > now() - interval '1 minute' AS recent "
                "FROM user_audit_log WHERE user_id = :id AND action = 'data_export'"
            ),
            {"id": people["sam"]},
        ).one()
    assert tuple(entry) == (ADMIN_EMAIL, ADMIN_ID, "data_export", True)


def test_the_export_of_an_unknown_user_is_404_and_audits_nothing(db, admin_users_function):
    status, body, _ = call(admin_users_function, "GET", "/api/admin/users/999/data-export")

    assert status == 404, body
    with db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM user_audit_log")).scalar() == 0


def test_operators_export_by_email_from_the_command_line(db, people, capsys):
    assert main(["gdpr", "export", "--email", " SAM.patel@example.com"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["user"]["id"] == people["sam"]
    assert document["audit_entries"][-1]["action"] == "data_export"
    assert document["audit_entries"][-1]["actor"].startswith("rft-cli:")
    assert main(["gdpr", "export", "--email", "nobody@example.com"]) == 1


def test_an_export_to_a_file_is_readable_by_its_owner_only(db, people, tmp_path):
    output = tmp_path / "sam.json"
    output.write_text("an older file, once readable by all\n")
    output.chmod(0o644)

    assert (
        main(["gdpr", "export", "--email", "sam.patel@example.com", "--output", str(output)]) == 0
    )

    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert json.loads(output.read_text())["user"]["id"] == people["sam"]


# --- erasure --------------------------------------------------------------------------


def text_columns(connection) -> list[tuple[str, str]]:
    """Every text and JSON column of every table, whoever added it."""
    return [
        (row.table_name, row.column_name)
        for row in connection.execute(
            text(
                "SELECT c.table_name, c.column_name FROM information_schema.columns AS c "
                "JOIN information_schema.tables AS t USING (table_schema, table_name) "
                "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
                "AND c.data_type = ANY(:types) ORDER BY 1, 2"
            ),
            {"types": list(TEXT_TYPES)},
        )
    ]


def traces(connection, values: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, value) wherever one of the values appears, in any case."""
    found = []
    for table, column in text_columns(connection):
        for value in values:
            hit = connection.execute(
                text(
                    f'SELECT 1 FROM "{table}" WHERE strpos(lower("{column}"::text), :v) > 0 LIMIT 1'
                ),
                {"v": value.lower()},
            ).first()
            if hit:
                found.append((table, column, value))
    return found


def personal_values(person: dict[str, str]) -> list[str]:
    values = [value for key, value in person.items() if key != "normalized"]
    return [*values, person["phone"].replace(" ", ""), person["email"].lower()]


def test_erasure_leaves_no_trace_of_the_person_in_any_text_or_json_column(
    db, admin_users_function, people
):
    with db.begin() as connection:
        insert_legacy_bookings(
            connection,
            people["session"],
            [contact(f"  {SAM['email'].upper()}", SAM["name"], phone=SAM["phone"])],
        )
        assert len(traces(connection, personal_values(SAM))) >= 5
    export_of(admin_users_function, people["sam"])

    status, result = erase(admin_users_function, people["sam"])

    assert status == 200, result
    assert result["bookings_redacted"] == 3  # two checkouts and the legacy booking
    with db.connect() as connection:
        assert traces(connection, personal_values(SAM)) == []
        assert len(traces(connection, personal_values(JO))) >= 4  # Jo is untouched
        erased = connection.execute(
            text("SELECT email, erased_at IS NOT NULL AS erased FROM users WHERE id = :id"),
            {"id": people["sam"]},
        ).one()
        details = (
            connection.execute(
                text("SELECT DISTINCT contact_details::text FROM bookings WHERE user_id = :id"),
                {"id": people["sam"]},
            )
            .scalars()
            .all()
        )
    assert erased == (f"erased-{people['sam']}@erased.invalid", True)
    with db.connect() as connection:
        checkouts = (
            connection.execute(text("SELECT payment_intent_id FROM payment_checkouts ORDER BY 1"))
            .scalars()
            .all()
        )
    assert checkouts == ["pi_jo_1"]
    assert len(details) == 1 and json.loads(details[0])["name"] == ERASED_MARKER
    with db.connect() as connection:
        emails = connection.execute(
            text("SELECT status, payload IS NULL FROM email_outbox ORDER BY id")
        ).all()
    assert [tuple(email) for email in emails] == [
        ("sent", True),  # Sam's first: sent, and its address forgotten
        ("suppressed", True),  # Sam's second: never sent now
        ("pending", False),  # Jo's
    ]


def money_and_statistics(connection) -> dict[str, Any]:
    return {
        "bookings": rows_as_json(
            connection,
            "SELECT id, booking_reference, course_schedule_id, user_id, status, payment_status, "
            "payment_amount, payment_method, stripe_payment_intent_id, number_of_attendees, "
            "created_at FROM bookings",
        ),
        "payments": rows_as_json(connection, "SELECT * FROM payments"),
        "revenue": rows_as_json(
            connection,
            "SELECT status, payment_status, sum(payment_amount) AS total, count(*) AS n "
            "FROM bookings GROUP BY 1, 2",
        ),
        "statistics": rows_as_json(
            connection,
            "SELECT id, role, customer_type, total_bookings, total_spent, first_booking_at, "
            "last_booking_at, created_at FROM users",
        ),
        "counts": rows_as_json(
            connection,
            "SELECT role, customer_type, has_bookings, sum(total) AS total FROM user_counts "
            "GROUP BY 1, 2, 3 HAVING sum(total) <> 0",
        ),
    }


def test_revenue_statistics_and_booking_records_are_unchanged_by_erasure(
    db, admin_users_function, people
):
    with db.connect() as connection:
        before = money_and_statistics(connection)

    status, _ = erase(admin_users_function, people["sam"])

    assert status == 200
    with db.connect() as connection:
        assert money_and_statistics(connection) == before
        assert stats_mismatches(connection) == []


def test_the_audit_keeps_who_when_and_why_and_older_entries_lose_their_values(
    db, admin_users_function, people
):
    export_of(admin_users_function, people["sam"])

    status, _ = erase(admin_users_function, people["sam"], reason="  ticket 4711 by post ")

    assert status == 200
    with db.connect() as connection:
        entries = connection.execute(
            text(
                "SELECT actor, actor_id, action, reason, changes FROM user_audit_log "
                "WHERE user_id = :id ORDER BY id"
            ),
            {"id": people["sam"]},
        ).all()
    assert [(e.action, e.actor, e.actor_id) for e in entries] == [
        ("edit", ADMIN_EMAIL, ADMIN_ID),
        ("data_export", ADMIN_EMAIL, ADMIN_ID),
        ("erasure", ADMIN_EMAIL, ADMIN_ID),
    ]
    assert entries[0].changes == {
        "address_line1": ERASED_MARKER,
        "city": ERASED_MARKER,
        "notes": ERASED_MARKER,
        "phone": ERASED_MARKER,
    }
    assert entries[2].reason == "ticket 4711 by post"
    assert entries[2].changes == {"bookings_redacted": 2}


def test_a_reason_quoting_the_persons_details_is_refused_and_nothing_changes(
    db, admin_users_function, people
):
    for reason in (f"asked by {SAM['email']}", "Sam Patel asked", "called from 07700 900321"):
        status, body = erase(admin_users_function, people["sam"], reason=reason)

        assert status == 422, reason
        assert body["errors"][0]["field"] == "reason"
    with db.connect() as connection:
        assert (
            connection.execute(
                text("SELECT erased_at FROM users WHERE id = :id"), {"id": people["sam"]}
            ).scalar()
            is None
        )


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "ok", "extra": 1}])
def test_an_erasure_without_a_proper_reason_is_refused(admin_users_function, people, body):
    status, answer, _ = call(
        admin_users_function, "POST", f"/api/admin/users/{people['sam']}/erase", body=body
    )

    assert status == 422
    assert answer["errors"]


def test_an_admin_cannot_erase_their_own_account_even_forced(db, admin_users_function):
    status, body = erase(admin_users_function, ADMIN_ID, force=True)

    assert (status, body["message"]) == (
        409,
        "you cannot erase your own account; ask another admin",
    )
    status, _, _ = call(admin_users_function, "GET", "/api/admin/users")
    assert status == 200


def test_staff_are_refused_unless_forced(db, admin_users_function):
    with db.begin() as connection:
        staff_id = add_staff_user(connection, "trainer@reactfast.co.uk", role="instructor")
        customer_id = add_user(connection, "customer@example.com")
        connection.execute(  # their edit of a customer, and a failed sign-in of theirs
            text(
                "INSERT INTO user_audit_log (user_id, actor, actor_id, changes) VALUES "
                "(:customer, 'Trainer@reactfast.co.uk', :staff, '{}')"
            ),
            {"customer": customer_id, "staff": staff_id},
        )
        connection.execute(
            text(
                "INSERT INTO admin_login_failures (email_normalized) "
                "VALUES ('trainer@reactfast.co.uk')"
            )
        )

    status, body = erase(admin_users_function, staff_id)

    assert status == 409
    assert "staff" in body["message"] and body["errors"][0]["field"] == "force"
    status, body = erase(admin_users_function, staff_id, force=True)
    assert status == 200 and body["forced"] == ["staff"]
    with db.connect() as connection:
        row = connection.execute(
            text("SELECT email, name, password_hash, role FROM users WHERE id = :id"),
            {"id": staff_id},
        ).one()
    assert row == (f"erased-{staff_id}@erased.invalid", None, None, "instructor")
    with db.connect() as connection:
        assert traces(connection, ["trainer@reactfast.co.uk"]) == []
        assert (
            connection.execute(
                text("SELECT is_active FROM users WHERE id = :id"), {"id": staff_id}
            ).scalar()
            is False
        )


def test_a_customer_with_a_session_yet_to_run_is_refused_unless_forced(
    db, admin_users_function, create_booking, people
):
    with db.begin() as connection:
        upcoming = add_session(connection)
    booking = checkout(create_booking, upcoming, JO)

    status, body = erase(admin_users_function, people["jo"])

    assert status == 409
    assert "session yet to run" in body["message"]
    with db.connect() as connection:
        assert traces(connection, [JO["email"]])
    status, body = erase(admin_users_function, people["jo"], force=True)
    assert status == 200 and body["forced"] == ["upcoming_session"]
    with db.connect() as connection:
        seat = connection.execute(
            text("SELECT status, user_id FROM bookings WHERE id = :id"),
            {"id": booking["bookingId"]},
        ).one()
    assert seat == ("pending", people["jo"])  # the seat stays taken


def test_erasing_twice_or_an_unknown_user_is_refused(admin_users_function, people):
    assert erase(admin_users_function, people["sam"])[0] == 200

    status, body = erase(admin_users_function, people["sam"])

    assert status == 409 and "already erased" in body["message"]
    assert erase(admin_users_function, 99_999)[0] == 404


# --- suppression ------------------------------------------------------------------------


def test_the_backfill_never_recreates_an_erased_person_from_old_bookings(
    db, admin_users_function, people
):
    assert erase(admin_users_function, people["sam"])[0] == 200
    with db.begin() as connection:
        # Old rows reappear (a restored backup; the legacy app's own copy).
        old = insert_legacy_bookings(
            connection, people["session"], [contact(SAM["email"], SAM["name"])]
        )
    messages = [
        EmailKeyRangeMessage(
            version=2,
            batch_id="by-email",
            first_email_key=MIN_EMAIL_KEY,
            last_email_key=MAX_EMAIL_KEY,
        ),
        BookingRangeMessage(
            version=1, batch_id="by-id", first_booking_id=1, last_booking_id=10_000
        ),
    ]

    for message in messages * 2:  # each replayed too
        result = process_batch(message)

        assert (result.customers_created, result.bookings_linked) == (0, 0)
    with db.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM users WHERE email_normalized = :e"),
                {"e": SAM["normalized"]},
            ).scalar()
            == 0
        )
        assert (
            connection.execute(
                text("SELECT reason FROM backfill_unlinkable WHERE booking_id = :id"),
                {"id": old[0]},
            ).scalar()
            == "erased"
        )

    report = run_retention(years=7, dry_run=False)

    assert report.resurfaced_bookings == 1
    with db.connect() as connection:
        assert traces(connection, personal_values(SAM)) == []


def test_a_new_checkout_after_erasure_creates_a_fresh_customer(
    db, admin_users_function, create_booking, people
):
    assert erase(admin_users_function, people["sam"])[0] == 200
    with db.begin() as connection:
        session_id = add_session(connection)

    booking = checkout(create_booking, session_id, SAM)

    assert booking["customerId"] not in (None, people["sam"])
    with db.begin() as connection:
        # Bookings made after the erasure are a new relationship: the backfill links them.
        later = insert_legacy_bookings(connection, session_id, [contact(SAM["email"])])
        connection.execute(
            text("UPDATE bookings SET created_at = now() + interval '1 second' WHERE id = :id"),
            {"id": later[0]},
        )
    process_batch(
        BookingRangeMessage(
            version=1, batch_id="new", first_booking_id=later[0], last_booking_id=later[0]
        )
    )
    with db.connect() as connection:
        assert (
            connection.execute(
                text("SELECT user_id FROM bookings WHERE id = :id"), {"id": later[0]}
            ).scalar()
            == booking["customerId"]
        )


# --- duplicates merged into the person (issue 14) ---------------------------------------

SAM_AT_WORK = {
    "email": "sam.patel@gmial.com",
    "name": "Sam Patel",
    "phone": "07700 900555",
    "company": "Patel Holdings",
    "special": "Carries an EpiPen",
    "emergency": "Robin Patel 07700 900888",
}


@pytest.fixture
def sam_merged(db, create_booking, admin_users_function, people) -> int:
    """Sam's second record (another address, phone and company) merged into Sam, with
    its candidate pair found first and a pair with Jo marked as two people."""
    with db.begin() as connection:
        session_id = add_session(connection, course_name="Basic Life Support")
    duplicate = checkout(create_booking, session_id, SAM_AT_WORK)["customerId"]
    with db.begin() as connection:
        move_session_to_past(connection, session_id, days_ago=5)
    scan_queued(budget_seconds=60)
    status, body, _ = call(
        admin_users_function,
        "POST",
        f"/api/admin/users/{people['sam']}/not-duplicate",
        body={"duplicate_id": people["jo"]},
    )
    assert status == 200, body
    status, body, _ = call(
        admin_users_function,
        "POST",
        f"/api/admin/users/{people['sam']}/merge",
        body={"duplicate_id": duplicate},
    )
    assert status == 200, body
    assert body["conflicts"]["phone"]["discarded"] == SAM_AT_WORK["phone"]
    return duplicate


def test_the_export_holds_the_aliases_merged_records_and_merges(
    admin_users_function, people, sam_merged
):
    document = export_of(admin_users_function, people["sam"])

    assert [alias["email"] for alias in document["email_aliases"]] == [SAM_AT_WORK["email"]]
    [record] = document["merged_records"]
    assert (record["id"], record["merged_into"], record["phone"]) == (
        sam_merged,
        people["sam"],
        SAM_AT_WORK["phone"],
    )
    assert "password_hash" not in record
    [merge] = document["merges"]
    assert (merge["survivor_id"], merge["duplicate_id"]) == (people["sam"], sam_merged)
    assert {entry["action"] for entry in document["audit_entries"]} >= {"merge", "data_export"}
    assert len(document["bookings"]) == 3
    assert main(["gdpr", "export", "--email", SAM_AT_WORK["email"]]) == 0


def test_erasing_a_person_erases_the_records_merged_into_them_and_leaves_no_trace(
    db, admin_users_function, people, sam_merged
):
    status, result = erase(admin_users_function, people["sam"])

    assert status == 200, result
    assert result["bookings_redacted"] == 3
    with db.connect() as connection:
        assert traces(connection, personal_values(SAM) + personal_values(SAM_AT_WORK)) == []
        assert len(traces(connection, personal_values(JO))) >= 4
        erased = connection.execute(
            text("SELECT id FROM users WHERE erased_at IS NOT NULL ORDER BY id")
        ).scalars()
        assert list(erased) == sorted([people["sam"], sam_merged])
        assert connection.execute(text("SELECT count(*) FROM user_email_aliases")).scalar() == 0
        merge = connection.execute(text("SELECT conflicts, actor FROM user_merges")).one()
        assert set(merge.conflicts.values()) == {ERASED_MARKER}
        assert merge.actor == ADMIN_EMAIL
        assert stats_mismatches(connection) == []
    status, body, _ = call(
        admin_users_function,
        "POST",
        f"/api/admin/users/{people['sam']}/unmerge",
        body={"duplicate_id": sam_merged},
    )
    assert status == 409 and "erased" in body["message"], body


def test_a_merged_record_is_erased_through_the_person_it_was_merged_into(
    db, admin_users_function, people, sam_merged
):
    status, body = erase(admin_users_function, sam_merged)

    assert status == 409, body
    assert f"erase user {people['sam']}" in body["message"]
    with db.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM users WHERE erased_at IS NOT NULL")
            ).scalar()
            == 0
        )


# --- retention ------------------------------------------------------------------------


def add_customer_with_history(
    connection, email: str, *, created_years_ago: float, booked_years_ago: float | None
) -> int:
    user_id = connection.execute(
        text(
            "INSERT INTO users (email, name, phone, role, created_at) VALUES "
            "(:email, 'Old Customer', '07700 900777', 'customer', "
            "now() - make_interval(days => :days)) RETURNING id"
        ),
        {"email": email, "days": int(created_years_ago * 365.25)},
    ).scalar_one()
    if booked_years_ago is not None:
        when = datetime.now(UTC) - timedelta(days=int(booked_years_ago * 365.25))
        session_id = add_session(connection)
        connection.execute(
            text(
                "UPDATE course_schedules SET start_datetime = :when, "
                "end_datetime = CAST(:when AS timestamptz) + interval '6 hours' WHERE id = :id"
            ),
            {"when": when, "id": session_id},
        )
        connection.execute(
            text(
                "INSERT INTO bookings (booking_reference, course_schedule_id, user_id, status, "
                "payment_status, payment_amount, contact_details, created_at) VALUES "
                "(md5(:ref), :session, :user, 'completed', 'paid', 75, "
                "json_build_object('email', CAST(:email AS text), 'name', 'Old Customer'), "
                ":when)"
            ),
            {
                "ref": f"R-{email}",
                "session": session_id,
                "user": user_id,
                "email": email,
                "when": when,
            },
        )
    return user_id


def test_the_retention_dry_run_matches_its_apply(db):
    with db.begin() as connection:
        stale = [
            add_customer_with_history(
                connection, f"old{n}@example.com", created_years_ago=9, booked_years_ago=8
            )
            for n in range(5)
        ]
        stale.append(
            add_customer_with_history(
                connection, "never@example.com", created_years_ago=8, booked_years_ago=None
            )
        )
        recent = add_customer_with_history(
            connection, "recent@example.com", created_years_ago=9, booked_years_ago=2
        )
        new = add_customer_with_history(
            connection, "new@example.com", created_years_ago=1, booked_years_ago=None
        )
        staff = add_staff_user(connection, "old.staff@reactfast.co.uk")
        connection.execute(
            text("UPDATE users SET created_at = now() - interval '10 years' WHERE id = :id"),
            {"id": staff},
        )
        insert_legacy_bookings(  # not yet linked, 8 years old: erased with its person
            connection, add_session(connection), [contact("OLD0@example.com")]
        )
        connection.execute(
            text(
                "UPDATE bookings SET created_at = now() - interval '8 years' WHERE user_id IS NULL"
            )
        )
        second_record = add_customer_with_history(
            connection, "old0.second@example.com", created_years_ago=9, booked_years_ago=8
        )
        before = money_and_statistics(connection)
    merge_users(stale[0], second_record, actor=Staff(id=ADMIN_ID, email=ADMIN_EMAIL, role="admin"))
    stale.append(second_record)  # merged into a stale customer: erased with them

    plan = run_retention(years=7, dry_run=True)
    applied = run_retention(years=7, dry_run=False)

    assert (plan.customers, plan.bookings, plan.audit_entries, plan.resurfaced_bookings) == (
        applied.customers,
        applied.bookings,
        applied.audit_entries,
        applied.resurfaced_bookings,
    )
    assert (applied.customers, applied.bookings) == (7, 7)
    with db.connect() as connection:
        erased = set(
            connection.execute(text("SELECT id FROM users WHERE erased_at IS NOT NULL")).scalars()
        )
        assert traces(connection, ["old0@example.com", "never@example.com"]) == []
        after = money_and_statistics(connection)
    assert erased == set(stale)
    assert {recent, new, staff}.isdisjoint(erased)
    assert after["revenue"] == before["revenue"] and after["payments"] == before["payments"]
    again = run_retention(years=7, dry_run=True)
    assert (again.customers, again.bookings) == (0, 0)


def test_retention_deletes_checkout_records_older_than_thirty_days(db):
    """A checkout never paid holds its participants' names and health data under a hash
    no erasure can find: retention is what removes it (issue 23, outcome 9)."""
    with db.begin() as connection:
        session_id = add_session(connection)
        connection.execute(
            text(
                "INSERT INTO payment_checkouts (checkout_key, generation, payment_intent_id, "
                "course_schedule_id, number_of_attendees, amount_pence, participant_details, "
                "created_at) "
                "SELECT 'key-' || days, 0, 'pi_abandoned_' || days, :session, 2, 15000, "
                "CAST(:participants AS jsonb), now() - make_interval(days => days) "
                "FROM unnest(CAST(:ages AS integer[])) AS days"
            ),
            {
                "session": session_id,
                "participants": json.dumps([{"firstName": "Jo", "medicalConditions": "asthma"}]),
                "ages": [0, 2, 29, 31, 400],
            },
        )

    plan = run_retention(years=7, dry_run=True)
    applied = run_retention(years=7, dry_run=False)

    assert plan.old_checkouts == applied.old_checkouts == 2
    with db.connect() as connection:
        kept = connection.execute(
            text("SELECT payment_intent_id FROM payment_checkouts ORDER BY created_at DESC")
        ).scalars()
        assert list(kept) == ["pi_abandoned_0", "pi_abandoned_2", "pi_abandoned_29"]


def test_retention_erases_a_customer_the_backfill_created_today_from_old_bookings(db):
    with db.begin() as connection:
        backfilled = add_customer_with_history(
            connection, "backfilled@example.com", created_years_ago=0, booked_years_ago=8
        )
        new = add_customer_with_history(
            connection, "new@example.com", created_years_ago=0, booked_years_ago=None
        )

    plan = run_retention(years=7, dry_run=True)
    applied = run_retention(years=7, dry_run=False)

    assert (plan.customers, applied.customers) == (1, 1)
    with db.connect() as connection:
        erased = set(
            connection.execute(text("SELECT id FROM users WHERE erased_at IS NOT NULL")).scalars()
        )
    assert erased == {backfilled}
    assert new not in erased


def test_retention_keeps_a_customer_whose_merged_record_booked_recently_unlinked(db):
    with db.begin() as connection:
        survivor = add_customer_with_history(
            connection, "kept@example.com", created_years_ago=9, booked_years_ago=8
        )
        duplicate = add_customer_with_history(
            connection, "kept.work@example.com", created_years_ago=9, booked_years_ago=8
        )
    merge_users(survivor, duplicate, actor=Staff(id=ADMIN_ID, email=ADMIN_EMAIL, role="admin"))
    with db.begin() as connection:  # booked last month under the merged address, not linked yet
        insert_legacy_bookings(
            connection, add_session(connection), [contact("kept.work@example.com")]
        )

    plan = run_retention(years=7, dry_run=True)
    applied = run_retention(years=7, dry_run=False)

    assert (plan.customers, applied.customers) == (0, 0)
    with db.connect() as connection:
        assert traces(connection, ["kept.work@example.com"])


def test_retention_from_the_command_line_prints_its_counts(db, capsys):
    with db.begin() as connection:
        add_customer_with_history(
            connection, "old@example.com", created_years_ago=9, booked_years_ago=8
        )

    assert main(["gdpr", "retention", "--dry-run"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert main(["gdpr", "retention", "--apply"]) == 0
    applied = json.loads(capsys.readouterr().out)

    assert (planned["dry_run"], applied["dry_run"]) == (True, False)
    assert planned["customers"] == applied["customers"] == 1
    assert planned["bookings"] == applied["bookings"] == 1


def test_the_nightly_retention_is_scheduled_and_disabled_by_default():
    template = load_template(PROJECT_ROOT / "template.yaml")
    nightly = template["Resources"]["RetentionFunction"]["Properties"]["Events"]["Nightly"]

    assert template["Parameters"]["RetentionScheduleState"]["Default"] == "DISABLED"
    assert nightly["Type"] == "ScheduleV2"
    assert nightly["Properties"]["State"] == {"Ref": "RetentionScheduleState"}
    assert json.loads(nightly["Properties"]["Input"]) == {"dry_run": False}


def test_the_command_line_retention_allows_statements_as_long_as_the_function_does(
    db, monkeypatch, capsys
):
    seen = []

    def recording_retention(**options):
        seen.append(os.environ.get("DB_SOCKET_TIMEOUT_SECONDS"))  # read by the new engine
        return real_retention(**options)

    real_retention = privacy.run_retention
    monkeypatch.setattr(privacy, "run_retention", recording_retention)
    assert main(["gdpr", "retention", "--dry-run"]) == 0
    capsys.readouterr()

    template = load_template(PROJECT_ROOT / "template.yaml")
    variables = template["Resources"]["RetentionFunction"]["Properties"]["Environment"]
    assert seen == [RETENTION_SOCKET_TIMEOUT_SECONDS]
    assert variables["Variables"]["DB_SOCKET_TIMEOUT_SECONDS"] == RETENTION_SOCKET_TIMEOUT_SECONDS


def test_the_retention_function_counts_on_a_dry_run_and_erases_otherwise(db):
    retention = load_function("gdpr_retention")
    with db.begin() as connection:
        old = add_customer_with_history(
            connection, "old@example.com", created_years_ago=9, booked_years_ago=8
        )

    planned = retention.lambda_handler({"dry_run": True}, FakeLambdaContext())
    with db.connect() as connection:
        assert traces(connection, ["old@example.com"])
    applied = retention.lambda_handler({"dry_run": False}, FakeLambdaContext())

    assert (planned["customers"], applied["customers"]) == (1, 1)
    with db.connect() as connection:
        assert connection.execute(
            text("SELECT erased_at IS NOT NULL FROM users WHERE id = :id"), {"id": old}
        ).scalar()
        assert traces(connection, ["old@example.com"]) == []


def run_at_once(*jobs) -> list[BaseException]:
    """Start every job on its own thread at the same instant; the errors they raised."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.parametrize("round_number", range(4))
def test_erasure_and_backfill_batches_at_the_same_time_leave_no_trace_and_no_new_customer(
    db, database_url, people, round_number
):
    """The person's unlinked legacy bookings, then one erasure and three backfill
    batches over them at once, each on its own connection."""
    email = f"race{round_number}@example.com"
    with db.begin() as connection:
        user_id = add_user(connection, email, name="Race Person")
        insert_legacy_bookings(
            connection, people["session"], [contact(f" {email.upper()}", "Race Person")] * 6
        )

    def erase_now() -> None:
        with transaction_at(database_url) as connection:
            erase_users(connection, [user_id], actor=Actor("test"), reason="race")

    def backfill_now(n: int) -> None:
        process_batch(
            BookingRangeMessage(
                version=1, batch_id=f"race-{n}", first_booking_id=1, last_booking_id=100_000
            )
        )

    errors = run_at_once(erase_now, *(partial(backfill_now, n) for n in range(3)))

    assert errors == []
    with db.connect() as connection:
        assert traces(connection, [email]) == []
        assert (
            connection.execute(
                text("SELECT count(*) FROM users WHERE name = 'Race Person'")
            ).scalar()
            == 0
        )
        assert stats_mismatches(connection) == []


def test_an_erasure_finds_unlinked_bookings_by_the_email_key_index_not_by_reading_all(db):
    with db.begin() as connection:
        session_id = add_session(connection)
        user_id = add_user(connection, "needle@example.com")
        insert_legacy_bookings(
            connection, session_id, [contact(f"hay{n}@example.com") for n in range(5000)]
        )
        connection.execute(text("ANALYZE bookings"))
        plan = "\n".join(
            connection.execute(
                text(f"EXPLAIN {LINK_UNLINKED}"),
                {"user_ids": [user_id], "whitespace": EMAIL_WHITESPACE},
            ).scalars()
        )

    assert "ix_bookings_unlinked_email_key" in plan, plan


def test_an_erasure_while_backfill_batches_run_is_409_to_try_again_not_a_timeout(
    db, admin_users_function, database_settings
):
    """Batches hold the erasure lock shared; an erasure waits for them only for less
    than the socket timeout, then is refused, and nothing is half-done."""
    database_settings(DB_SOCKET_TIMEOUT_SECONDS="2")
    with db.begin() as connection:
        user_id = add_user(connection, "waiting@example.com")
    with db.begin() as batch:
        batch.execute(text(locks.WAIT_FOR_ERASURES))
        status, answer = erase(admin_users_function, user_id)
    after_batches = erase(admin_users_function, user_id)

    assert status == 409
    assert "try the erasure again" in answer["message"]
    assert after_batches[0] == 200


def test_an_erasure_waiting_for_the_persons_row_is_409_not_a_timeout(
    db, admin_users_function, database_settings
):
    """A backfill batch (or an edit) holding the person's row: the same bounded wait."""
    database_settings(DB_SOCKET_TIMEOUT_SECONDS="2")
    with db.begin() as connection:
        user_id = add_user(connection, "busy@example.com")
    with db.begin() as batch:
        batch.execute(text("SELECT 1 FROM users WHERE id = :id FOR UPDATE"), {"id": user_id})
        status, answer = erase(admin_users_function, user_id)

    assert status == 409
    assert "try the erasure again" in answer["message"]
