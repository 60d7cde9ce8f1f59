"""Renewal reminders on a real PostgreSQL and the emulated SES: certificates with known
expiry dates, issued by the certificates job; the daily run (``run_reminders``) on the
days given; what reaches SES read back as ``rft mail list`` reads it."""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import text

from rft_common.certificates.service import issue_certificates
from rft_common.consent.tokens import verify_unsubscribe_token
from rft_common.core import settings
from rft_common.email import outbox
from rft_common.renewals.reminders import run_reminders
from rft_tools.local.mail import sent_mail
from tests.admin_helpers import add_user
from tests.renewals.test_renewals import (
    add_course,
    add_session_ending,
    taken_on_for_expiry,
    uk_today,
)

pytestmark = pytest.mark.usefixtures("db", "local_ses")


@pytest.fixture(autouse=True)
def reminder_settings(monkeypatch):
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "test-unsubscribe-key")
    monkeypatch.setenv("PUBLIC_API_URL", "https://api.example.test")
    settings.get_settings.cache_clear()
    yield
    settings.get_settings.cache_clear()


def consent(connection, user_id: int, basis: str = "explicit_consent") -> None:
    connection.execute(
        text(
            "INSERT INTO consent_events (user_id, purpose, basis, source) "
            "VALUES (:user_id, 'renewal_reminders', :basis, 'admin')"
        ),
        {"user_id": user_id, "basis": basis},
    )


def customer(connection, email: str, name: str, basis: str | None = "explicit_consent") -> int:
    user_id = add_user(connection, email, name=name)
    if basis:
        consent(connection, user_id, basis)
    return user_id


def booking(
    connection, session_id: int, booker: int | None, attendees: list[int | None], **options
) -> int:
    """A completed booking made by ``booker`` for ``attendees`` (a user id, or None for a
    person named only); position 1 is the first attendee."""
    booking_id = connection.execute(
        text(
            "INSERT INTO bookings (booking_reference, course_schedule_id, user_id, status, "
            "payment_status, payment_amount, contact_details) VALUES "
            "('RFT-' || md5(random()::text), :session_id, :booker, :status, 'paid', 75, '{}') "
            "RETURNING id"
        ),
        {"session_id": session_id, "booker": booker, "status": options.get("status", "completed")},
    ).scalar_one()
    for position, user_id in enumerate(attendees, start=1):
        connection.execute(
            text(
                "INSERT INTO booking_attendees (booking_id, position, user_id, first_name, "
                "last_name) VALUES (:booking_id, :position, :user_id, 'Named', :last)"
            ),
            {
                "booking_id": booking_id,
                "position": position,
                "user_id": user_id,
                "last": f"Person{position}",
            },
        )
    return booking_id


def certified(db, people: dict[str, tuple[int | None, list[int | None]]], expires_in: int):
    """Sessions whose certificates expire ``expires_in`` days from today; issued."""
    today = uk_today()
    with db.begin() as connection:
        course = add_course(connection, "Emergency First Aid at Work")
        session_id = add_session_ending(
            connection, course, taken_on_for_expiry(today + timedelta(days=expires_in))
        )
        for booker, attendees in people.values():
            booking(connection, session_id, booker, attendees)
    issue_certificates()
    return today


def reminders(db) -> list[tuple]:
    with db.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT u.name, r.stage, coalesce(r.skipped_reason, 'sent'), "
                    "(SELECT count(*) FROM renewal_reminders AS same "
                    " WHERE same.outbox_id = r.outbox_id) "
                    "FROM renewal_reminders AS r JOIN users AS u ON u.id = r.recipient_id "
                    "ORDER BY r.stage DESC, u.name, r.certificate_id"
                )
            )
        ]


def messages(db) -> list[tuple]:
    with db.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT recipient, payload -> 'stage', jsonb_array_length(payload -> 'people')"
                    " FROM email_outbox WHERE kind = 'renewal_reminder' ORDER BY id"
                )
            )
        ]


def test_each_stage_goes_once_with_one_click_unsubscribe_and_a_tagged_course_link(db, local_ses):
    with db.begin() as connection:
        ada = customer(connection, "ada@example.com", "Ada Holder")
    today = certified(db, {"ada": (ada, [ada])}, expires_in=60)

    days = [0, 0, 35, 36, 55, 61, 62, 100]  # the stage days and reruns; 100: all over
    reports = [run_reminders(today=today + timedelta(days=offset)) for offset in days]

    assert [report.total("sent") for report in reports] == [1, 0, 1, 0, 1, 1, 0, 0]
    assert reminders(db) == [
        ("Ada Holder", 90, "sent", 1),
        ("Ada Holder", 30, "sent", 1),
        ("Ada Holder", 7, "sent", 1),
        ("Ada Holder", -1, "sent", 1),
    ]
    assert outbox.drain().sent == 4
    mails = sent_mail(local_ses, to="ada@example.com")
    assert len(mails) == 4
    subjects = sorted(mail.subject for mail in mails)
    assert sum("certificate expired on" in subject for subject in subjects) == 1
    mail = next(mail for mail in mails if "expired" not in mail.subject)
    unsubscribe = mail.headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://api.example.test/api/unsubscribe/")
    assert mail.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unsubscribe.strip("<>").rsplit("/", 1)[1]
    assert verify_unsubscribe_token(token) == (ada, "renewal_reminders")
    assert unsubscribe.strip("<>") in mail.text and unsubscribe.strip("<>") in mail.html
    assert "Emergency First Aid at Work" in mail.text
    [link] = [word for word in mail.text.split() if "/courses/" in word]
    assert link.startswith("https://reactfasttraining.co.uk/courses/efaw?")
    tags = parse_qs(urlparse(link).query)
    assert tags["utm_source"] == ["reminder"]
    with db.connect() as connection:
        reminder_ids = connection.execute(text("SELECT id FROM renewal_reminders")).scalars()
        assert int(tags["reminder"][0]) in set(reminder_ids)
        payloads = connection.execute(
            text("SELECT count(*) FROM email_outbox WHERE payload IS NOT NULL")
        ).scalar_one()
    assert payloads == 0  # sent messages keep no content


def test_a_group_booking_reminds_its_booker_once_listing_everyone(db, local_ses):
    with db.begin() as connection:
        boss = customer(connection, "boss@example.com", "Bea Booker")
        staff = customer(connection, "staff@example.com", "Sam Staff", basis=None)
        keen = customer(connection, "keen@example.com", "Kim Keen")
        other_boss = customer(connection, "other@example.com", "Oli Other")
        other_staff = customer(connection, "other-staff@example.com", "Pat Person", basis=None)
    today = certified(
        db,
        {
            "group": (boss, [boss, staff, keen, None]),
            "second group of the same booker": (boss, [staff]),
            "booker not attending": (other_boss, [other_staff]),
        },
        expires_in=20,
    )

    report = run_reminders(today=today)

    assert reminders(db) == [
        ("Bea Booker", 30, "sent", 5),
        ("Bea Booker", 30, "sent", 5),
        ("Bea Booker", 30, "sent", 5),
        ("Bea Booker", 30, "sent", 5),
        ("Bea Booker", 30, "sent", 5),
        ("Kim Keen", 30, "sent", 1),
        ("Oli Other", 30, "sent", 1),
        ("Pat Person", 30, "no_lawful_basis", 0),
        ("Sam Staff", 30, "no_lawful_basis", 0),
        ("Sam Staff", 30, "no_lawful_basis", 0),
    ]
    assert sorted(messages(db)) == [
        ("boss@example.com", 30, 5),
        ("keen@example.com", 30, 1),
        ("other@example.com", 30, 1),
    ]
    assert report.messages == 3
    outbox.drain()
    [mail] = sent_mail(local_ses, to="boss@example.com")
    assert mail.subject == "5 first aid certificates expire soon"
    assert "Your Emergency First Aid at Work certificate" in mail.text
    assert mail.text.count("Book the renewal:") == 5
    assert "Named Person4's" in mail.text  # the attendee named only, no account


def test_reruns_and_concurrent_runs_send_nothing_twice(db, local_ses, monkeypatch):
    monkeypatch.setenv("REMINDER_BATCH_SIZE", "2")
    settings.get_settings.cache_clear()
    with db.begin() as connection:
        people = [customer(connection, f"p{n}@example.com", f"Person {n:02}") for n in range(9)]
    today = certified(
        db,
        {
            "booker with three": (people[0], people[0:3]),
            "pair": (people[3], people[3:5]),
            **{f"alone {n}": (people[n], [people[n]]) for n in range(5, 9)},
        },
        expires_in=5,
    )
    reports, barrier = [], threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        reports.append(run_reminders(today=today))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reports.append(run_reminders(today=today))

    assert len(reports) == 5
    # 9 holders reminded of their own certificate; the two bookers also of 2 + 1 others'
    assert sum(report.total("sent") for report in reports) == 9 + 3
    assert sum(report.messages for report in reports) == 9
    assert len(messages(db)) == 9
    assert outbox.drain().sent == 9
    assert len(sent_mail(local_ses)) == 9


def test_every_skip_reason_is_recorded_and_a_dry_run_counts_them_without_recording(
    db, local_ses, monkeypatch
):
    with db.begin() as connection:
        sent = customer(connection, "sent@example.com", "A Sent")
        rebooked = customer(connection, "rebooked@example.com", "B Rebooked")
        erased = customer(connection, "erased@example.com", "C Erased")
        survivor = customer(connection, "survivor@example.com", "D Survivor", basis=None)
        merged = customer(connection, "merged@example.com", "D Merged")
        suppressed = customer(connection, "bounced@example.com", "E Suppressed")
        objected = customer(connection, "objected@example.com", "F Objected", "objection")
        nobody = customer(connection, "nobody@example.com", "G None", basis=None)
        soft = customer(connection, "soft@example.com", "H Soft", "soft_opt_in")
        connection.execute(
            text("INSERT INTO email_suppressions VALUES ('bounced@example.com', 'bounce')")
        )
    holders = [sent, rebooked, erased, merged, suppressed, objected, nobody, soft]
    today = certified(db, {n: (n, [n]) for n in holders}, expires_in=80)
    with db.begin() as connection:
        course = add_course(connection, "Emergency First Aid at Work, again")
        later = add_session_ending(connection, course, today + timedelta(days=30))
        booking(connection, later, rebooked, [rebooked], status="pending")
        connection.execute(
            text("UPDATE users SET erased_at = now() WHERE id = :id"), {"id": erased}
        )
        connection.execute(
            text("UPDATE users SET merged_into = :survivor WHERE id = :id"),
            {"survivor": survivor, "id": merged},
        )

    dry = run_reminders(today=today, dry_run=True)
    expected_skips = {
        "rebooked": 1,
        "erased": 1,
        "merged": 1,
        "suppressed": 1,
        "objected": 1,
        "no_lawful_basis": 2,
    }
    assert dry.as_dict()["skipped"] == expected_skips
    assert dry.total("sent") == 1
    assert {r["outcome"] for r in dry.recipients if r["recipient_id"] == soft} == {
        "no_lawful_basis"
    }
    assert reminders(db) == []  # the dry run recorded nothing

    real = run_reminders(today=today)
    assert real.as_dict()["skipped"] == expected_skips
    assert [(name, outcome) for name, _, outcome, _ in reminders(db)] == [
        ("A Sent", "sent"),
        ("B Rebooked", "rebooked"),
        ("C Erased", "erased"),
        ("D Merged", "merged"),
        ("E Suppressed", "suppressed"),
        ("F Objected", "objected"),
        ("G None", "no_lawful_basis"),
        ("H Soft", "no_lawful_basis"),
    ]

    monkeypatch.setenv("REMINDER_POLICY", "soft_opt_in")
    settings.get_settings.cache_clear()
    later_stage = run_reminders(today=today + timedelta(days=55))  # the 30-day stage
    assert later_stage.total("sent") == 2  # A Sent, and now H Soft
    assert later_stage.as_dict()["skipped"]["no_lawful_basis"] == 1


def test_erasure_removes_the_reminder_content_and_keeps_the_suppression(db, local_ses):
    from rft_common.customers.audit import Actor
    from rft_common.db.postgres import run_transaction
    from rft_common.privacy.service import erase_users

    with db.begin() as connection:
        gone = customer(connection, "gone@example.com", "Gina Gone")
        colleague = customer(connection, "colleague@example.com", "Col League")
        connection.execute(
            text("INSERT INTO email_suppressions VALUES ('gone@example.com', 'complaint')")
        )
    today = certified(db, {"group": (colleague, [colleague, gone])}, expires_in=80)
    run_reminders(today=today)
    assert messages(db) == [("colleague@example.com", 90, 2)]  # hers is suppressed

    run_transaction(
        lambda connection: erase_users(connection, [gone], actor=Actor("test"), reason="asked")
    )

    with db.connect() as connection:
        message = connection.execute(
            text("SELECT status, payload FROM email_outbox WHERE kind = 'renewal_reminder'")
        ).one()
        kept = connection.execute(text("SELECT email_normalized FROM email_suppressions"))
        kept = kept.scalars().all()
    assert tuple(message) == ("suppressed", None)  # it named her: never sent
    assert kept == ["gone@example.com"]
    assert outbox.drain().sent == 0
    run_reminders(today=today + timedelta(days=55))
    assert ("Gina Gone", 30, "sent", 1) not in reminders(db)


def test_rft_reminders_run_dry_run_prints_who_would_get_what(db, local_ses, capsys):
    from rft_tools.cli.main import main

    with db.begin() as connection:
        ada = customer(connection, "ada@example.com", "Ada Holder")
        bob = customer(connection, "bob@example.com", "Bob Nobasis", basis=None)
    certified(db, {"ada": (ada, [ada]), "bob": (bob, [bob])}, expires_in=3)

    assert main(["reminders", "run", "--dry-run"]) == 0

    printed = capsys.readouterr().out
    assert "stage 7" in printed and "sent 1" in printed and "no_lawful_basis 1" in printed
    assert f"user {ada}" in printed and "ada@example.com" not in printed
    assert reminders(db) == []


def test_the_sender_keeps_to_the_send_rate(db, local_ses, monkeypatch):
    import time

    monkeypatch.setenv("SES_SEND_RATE", "20")
    settings.get_settings.cache_clear()
    with db.begin() as connection:
        people = [customer(connection, f"r{n}@example.com", f"Rate {n}") for n in range(11)]
    today = certified(db, {n: (n, [n]) for n in people}, expires_in=5)
    run_reminders(today=today)

    started = time.monotonic()
    assert outbox.drain().sent == 11
    assert time.monotonic() - started >= 10 / 20


def test_the_scheduled_function_publishes_sent_and_skipped_by_reason(
    db, local_ses, lambda_context, capsys, monkeypatch
):
    import json

    from tests.conftest import load_function

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    with db.begin() as connection:
        ada = customer(connection, "ada@example.com", "Ada Holder")
        bob = customer(connection, "bob@example.com", "Bob Nobasis", basis=None)
        cat = customer(connection, "cat@example.com", "Cat Objects", "objection")
    certified(db, {n: (n, [n]) for n in (ada, bob, cat)}, expires_in=3)
    function = load_function("reminders")
    capsys.readouterr()

    summary = function.lambda_handler({"dry_run": False}, lambda_context)

    assert summary["sent"] == 1 and summary["by_stage"] == {
        "7": {"no_lawful_basis": 1, "objected": 1, "sent": 1}
    }
    documents = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and "_aws" in line
    ]
    skipped = {
        document["reason"]: document["RemindersSkipped"]
        for document in documents
        if "RemindersSkipped" in document
    }
    assert skipped == {"no_lawful_basis": [1.0], "objected": [1.0]}
    assert any(document.get("RemindersSent") in (1.0, [1.0]) for document in documents)


@pytest.mark.usefixtures("signed_in_admin")
def test_the_renewals_list_shows_the_last_reminder_per_certificate(
    db, local_ses, admin_users_function
):
    from tests.admin_helpers import call

    with db.begin() as connection:
        ada = customer(connection, "ada@example.com", "Ada Holder")
        bob = customer(connection, "bob@example.com", "Bob Nobasis", basis=None)
    today = certified(db, {n: (n, [n]) for n in (ada, bob)}, expires_in=40)
    run_reminders(today=today)
    run_reminders(today=today + timedelta(days=15))

    status, page, _ = call(admin_users_function, "GET", "/api/admin/renewals")

    assert status == 200, page
    last = {row["customer_id"]: row["last_reminder"] for row in page["data"]}
    assert last[bob] is None  # skipped: nothing was sent about it
    assert last[ada]["stage"] == 30 and last[ada]["sent_at"]


@pytest.mark.usefixtures("signed_in_admin")
def test_the_customer_detail_shows_their_reminder_history(db, local_ses, admin_users_function):
    from tests.admin_helpers import call

    with db.begin() as connection:
        boss = customer(connection, "boss@example.com", "Bea Booker")
        staff = customer(connection, "staff@example.com", "Sam Staff", basis=None)
    today = certified(db, {"group": (boss, [staff])}, expires_in=5)
    run_reminders(today=today)

    _, boss_detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{boss}")
    _, staff_detail, _ = call(admin_users_function, "GET", f"/api/admin/users/{staff}")

    [to_boss] = boss_detail["renewal_reminders"]
    assert (to_boss["stage"], to_boss["recipient_id"], to_boss["skipped_reason"]) == (7, boss, None)
    assert to_boss["email_status"] == "pending"
    about_staff = {
        (r["recipient_id"], r["skipped_reason"]) for r in staff_detail["renewal_reminders"]
    }
    assert about_staff == {(boss, None), (staff, "no_lawful_basis")}


def test_a_renewal_booked_after_a_reminder_is_attributed_to_it(db, local_ses):
    with db.begin() as connection:
        ada = customer(connection, "ada@example.com", "Ada Holder")
        bob = customer(connection, "bob@example.com", "Bob Later")
    today = certified(db, {n: (n, [n]) for n in (ada, bob)}, expires_in=20)
    assert run_reminders(today=today).renewals_booked == 0
    with db.begin() as connection:
        course = add_course(connection, "Emergency First Aid at Work, renewal")
        session_id = add_session_ending(connection, course, today + timedelta(days=10))
        renewal = booking(connection, session_id, ada, [ada], status="confirmed")

    again = run_reminders(today=today + timedelta(days=1))

    assert again.renewals_booked == 1
    with db.connect() as connection:
        attributed = connection.execute(
            text("SELECT recipient_id, booking_id_after FROM renewal_reminders ORDER BY id")
        ).all()
    assert [tuple(row) for row in attributed] == [(ada, renewal), (bob, None)]
    assert run_reminders(today=today + timedelta(days=2)).renewals_booked == 0
