"""``rft seed legacy``: realistic legacy bookings, the same for the same arguments."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from rft_common.backfill.service import normalized_email_or_reason
from rft_common.core.emails import normalize_email
from rft_tools.data.legacy import STAFF, seed_legacy

pytestmark = pytest.mark.usefixtures("db")

BOOKINGS = 4000
CUSTOMERS = 1400

CHECKSUM = text("""
    SELECT count(*),
           md5(string_agg(concat_ws('|', booking_reference, course_schedule_id, status,
                                    payment_status, payment_amount, number_of_attendees,
                                    contact_details::text, created_at), ',' ORDER BY id))
    FROM bookings
""")


def seed(db, **arguments):
    with db.begin() as connection:
        return seed_legacy(
            connection, **({"bookings": BOOKINGS, "customers": CUSTOMERS} | arguments)
        )


def raw_emails(db) -> list[str | None]:
    with db.connect() as connection:
        return list(
            connection.execute(text("SELECT contact_details ->> 'email' FROM bookings")).scalars()
        )


def python_normalized(raw: str | None) -> str | None:
    try:
        return normalize_email(raw or "")
    except ValueError:
        return None


def test_the_same_arguments_give_the_same_bookings(db):
    seed(db)
    with db.begin() as connection:
        first = connection.execute(CHECKSUM).one()
        connection.execute(
            text("TRUNCATE users, courses, course_schedules, bookings RESTART IDENTITY CASCADE")
        )

    seed(db)

    with db.connect() as connection:
        assert connection.execute(CHECKSUM).one() == first


def test_another_seed_gives_other_bookings(db):
    seed(db)
    with db.connect() as connection:
        first = connection.execute(CHECKSUM).one()

    seed(db, seed=2)

    with db.connect() as connection:
        both = connection.execute(CHECKSUM).one()
    assert both.count == 2 * BOOKINGS
    assert both.md5 != first.md5


def test_bookings_carry_the_mess_the_live_data_has(db):
    seed(db)
    emails = raw_emails(db)
    staff = {email.lower() for email, _, _ in STAFF}

    with db.connect() as connection:
        statuses = dict(
            connection.execute(
                text("SELECT status || '/' || payment_status, count(*) FROM bookings GROUP BY 1")
            ).all()
        )
        corporate = connection.execute(
            text("SELECT count(*) FROM bookings WHERE contact_details ->> 'company' IS NOT NULL")
        ).scalar_one()
        absent = connection.execute(
            text("SELECT count(*) FROM bookings WHERE NOT (contact_details::jsonb ? 'email')")
        ).scalar_one()
    reasons = [normalized_email_or_reason(raw)[1] for raw in emails]
    assert any(raw and raw != raw.strip() for raw in emails)
    assert any(raw and raw.strip() != raw.strip().lower() for raw in emails)
    assert absent > 0
    assert reasons.count("missing_email") > BOOKINGS * 0.004
    assert reasons.count("malformed_email") > BOOKINGS * 0.004
    assert sum(1 for raw in emails if raw and raw.strip().lower() in staff) > 0
    assert statuses["cancelled/refunded"] > 0
    assert statuses["cancelled/paid"] > 0
    assert statuses["pending/pending"] > 0
    assert corporate > 0


def test_every_person_books_and_regulars_book_often(db):
    seed(db)
    staff = {email.lower() for email, _, _ in STAFF}
    people = [
        email
        for email, _ in map(normalized_email_or_reason, raw_emails(db))
        if email and email not in staff
    ]
    bookings_per_person = sorted((people.count(p) for p in set(people)), reverse=True)

    assert CUSTOMERS * 0.95 < len(bookings_per_person) <= CUSTOMERS
    assert bookings_per_person[0] >= 10


def test_the_backfill_rule_and_normalize_email_agree_on_every_generated_email(db):
    seed(db)

    verdicts = [
        (normalized_email_or_reason(raw)[0], python_normalized(raw)) for raw in raw_emails(db)
    ]

    assert [ours for ours, _ in verdicts] == [theirs for _, theirs in verdicts]
