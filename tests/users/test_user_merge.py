"""Merging duplicate customers: bookings, statistics, aliases, audit, refusals, unmerge.

Routes are called through the handler; concurrency at the domain level with real
parallel connections (one thread, one connection, like one Lambda each).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import text

from rft_common.backfill.service import process_batch
from rft_common.checkout.bookings import BookingRequest, place_booking
from rft_common.core.errors import Conflict
from rft_common.staff.tokens import Staff
from rft_common.users.merges import USER_REFERENCES_KEPT, USER_REFERENCES_MOVED, merge_users
from tests.admin_helpers import ADMIN_EMAIL, ADMIN_ID, add_user, call
from tests.backfill_helpers import contact, insert_legacy_bookings, message
from tests.factories import (
    add_session,
    add_staff_user,
    booking_body,
    legacy_insert_booking,
    stats_mismatches,
)
from tests.users.test_admin_users_export import export

pytestmark = pytest.mark.usefixtures("signed_in_admin", "customer_accounts_on")

ADMIN = Staff(id=ADMIN_ID, email=ADMIN_EMAIL, role="admin")
SURVIVOR_EMAIL = "sam.patel@gmail.com"
DUPLICATE_EMAIL = "sam.patel@gmial.com"


@pytest.fixture
def session_id(db) -> int:
    with db.begin() as connection:
        return add_session(connection, max_capacity=12)


@pytest.fixture
def pair(db, session_id) -> tuple[int, int]:
    """A survivor with one paid booking and a duplicate with two (one cancelled)."""
    with db.begin() as connection:
        survivor = add_user(
            connection, SURVIVOR_EMAIL, name="Sam Patel", phone="07700 900123", city="Leeds"
        )
        duplicate = add_user(
            connection,
            DUPLICATE_EMAIL,
            name="Sam Patel",
            phone="+44 7700 900123",
            city="Sheffield",
            company_name="Acme Ltd",
            postcode="S1 2HE",
        )
        for number, (user_id, status, paid) in enumerate(
            [
                (survivor, "confirmed", "paid"),
                (duplicate, "completed", "paid"),
                (duplicate, "cancelled", "refunded"),
            ]
        ):
            legacy_insert_booking(
                connection,
                session_id=session_id,
                email=SURVIVOR_EMAIL if user_id == survivor else DUPLICATE_EMAIL,
                user_id=user_id,
                status=status,
                payment_status=paid,
                reference=f"RFT-MERGE-{number}",
            )
    return survivor, duplicate


def rows(db, sql: str, **parameters) -> list:
    with db.connect() as connection:
        return connection.execute(text(sql), parameters).all()


def merge(function, survivor: int, duplicate: int, key: str = "duplicateId"):
    return call(function, "POST", f"/api/admin/users/{survivor}/merge", body={key: duplicate})


def test_a_merge_moves_bookings_fills_blanks_reports_conflicts_and_keeps_statistics_exact(
    db, admin_users_function, pair
):
    survivor, duplicate = pair
    duplicate_bookings = [
        row.id for row in rows(db, "SELECT id FROM bookings WHERE user_id = :u", u=duplicate)
    ]

    status, body, _ = merge(admin_users_function, survivor, duplicate, key="duplicate_id")

    assert status == 200, body
    assert body["moved_booking_ids"] == sorted(duplicate_bookings)
    assert body["filled"] == {
        "company_name": "Acme Ltd",
        "postcode": "S1 2HE",
        "customer_type": "corporate",
    }
    assert body["conflicts"] == {"city": {"kept": "Leeds", "discarded": "Sheffield"}}
    assert body["alias"] == DUPLICATE_EMAIL
    assert (body["total_bookings"], body["total_spent"]) == (2, "150.00")
    users = {row.id: row for row in rows(db, "SELECT * FROM users")}
    assert users[duplicate].merged_into == survivor
    assert (users[duplicate].total_bookings, users[duplicate].total_spent) == (0, Decimal(0))
    assert users[survivor].company_name == "Acme Ltd"
    assert users[survivor].city == "Leeds"
    with db.connect() as connection:
        assert stats_mismatches(connection) == []
    assert [tuple(row) for row in rows(db, "SELECT email, user_id FROM user_email_aliases")] == [
        (DUPLICATE_EMAIL, survivor)
    ]


def test_the_audit_trail_names_the_admin_and_every_moved_booking(db, admin_users_function, pair):
    survivor, duplicate = pair
    _, body, _ = merge(admin_users_function, survivor, duplicate)

    record = rows(db, "SELECT * FROM user_merges")[0]
    assert (record.survivor_id, record.duplicate_id, record.actor, record.actor_id) == (
        survivor,
        duplicate,
        ADMIN_EMAIL,
        ADMIN_ID,
    )
    assert record.moved_booking_ids == body["moved_booking_ids"]
    audit = {row.user_id: row for row in rows(db, "SELECT * FROM user_audit_log")}
    assert audit[survivor].actor == audit[duplicate].actor == ADMIN_EMAIL
    assert audit[survivor].actor_id == audit[duplicate].actor_id == ADMIN_ID
    assert audit[survivor].action == audit[duplicate].action == "merge"
    assert audit[survivor].changes["movedBookingIds"]["new"] == body["moved_booking_ids"]
    assert audit[survivor].changes["mergedUser"] == {"old": None, "new": duplicate}
    assert audit[survivor].changes["companyName"] == {"old": None, "new": "Acme Ltd"}
    assert audit[duplicate].changes == {"mergedInto": {"old": None, "new": survivor}}


def test_a_merged_user_answers_301_with_the_survivor_and_leaves_the_list(
    db, admin_users_function, pair
):
    survivor, duplicate = pair
    merge(admin_users_function, survivor, duplicate)

    status, body, result = call(admin_users_function, "GET", f"/api/admin/users/{duplicate}")
    assert status == 301
    assert body["merged_into"] == survivor
    assert result["multiValueHeaders"]["Location"] == [f"/api/admin/users/{survivor}"]
    status, _, result = call(admin_users_function, "GET", f"/api/admin/users/{duplicate}/bookings")
    assert result["multiValueHeaders"]["Location"] == [f"/api/admin/users/{survivor}/bookings"]

    for query in ({}, {"search": "patel"}, {"role": "customer"}):
        status, page, _ = call(admin_users_function, "GET", "/api/admin/users", query=query)
        listed = page.get("data", page.get("items"))
        expected = {survivor} if query else {survivor, ADMIN_ID}  # and the signed-in admin
        assert {user["id"] for user in listed} == expected
        assert page["total"] == len(expected)


def test_the_export_leaves_merged_users_out(db, admin_users_function, pair, export_bucket):
    survivor, duplicate = pair
    merge(admin_users_function, survivor, duplicate)

    _, csv = export(admin_users_function)

    assert SURVIVOR_EMAIL in csv
    assert DUPLICATE_EMAIL not in csv


def test_an_alias_links_a_later_checkout_and_a_later_backfill_to_the_survivor(
    db, admin_users_function, pair, session_id
):
    survivor, duplicate = pair
    merge(admin_users_function, survivor, duplicate)

    outcome = place_booking(
        BookingRequest.model_validate(
            booking_body(session_id, email=" Sam.Patel@GMIAL.com", firstName="Samuel")
        )
    )
    with db.begin() as connection:
        [legacy] = insert_legacy_bookings(connection, session_id, [contact(DUPLICATE_EMAIL)])
    process_batch(message(legacy, legacy))

    assert outcome.body["customerId"] == survivor
    assert rows(db, "SELECT user_id FROM bookings WHERE id = :id", id=legacy)[0].user_id == survivor
    with db.connect() as connection:
        assert stats_mismatches(connection) == []
    assert rows(db, "SELECT total_bookings FROM users WHERE id = :id", id=survivor)[0][0] == 4


def test_an_idempotent_replay_after_a_merge_names_the_survivor(db, session_id):
    with db.begin() as connection:
        survivor = add_user(connection, SURVIVOR_EMAIL, name="Sam Patel")
    request = BookingRequest.model_validate(booking_body(session_id, email=DUPLICATE_EMAIL))
    first = place_booking(request, idempotency_key="checkout-1")
    merge_users(survivor, first.body["customerId"], actor=ADMIN)

    replay = place_booking(request, idempotency_key="checkout-1")

    assert replay.replayed
    assert replay.body["customerId"] == survivor
    assert replay.body["bookingId"] == first.body["bookingId"]


def test_an_alias_cannot_become_another_users_email_and_a_merged_user_cannot_be_edited(
    db, admin_users_function, pair
):
    survivor, duplicate = pair
    with db.begin() as connection:
        other = add_user(connection, "someone@example.com")
    merge(admin_users_function, survivor, duplicate)

    path = f"/api/admin/users/{other}"
    status, body, _ = call(admin_users_function, "PATCH", path, body={"email": DUPLICATE_EMAIL})
    assert status == 409
    assert (
        body["message"]
        == f"{DUPLICATE_EMAIL} is already an alias (merged email) of user {survivor}"
    )
    assert body["errors"][0]["field"] == "email"
    path = f"/api/admin/users/{duplicate}"
    status, body, _ = call(admin_users_function, "PATCH", path, body={"city": "York"})
    assert status == 409
    assert f"merged into user {survivor}" in body["message"]


@pytest.mark.parametrize(
    "case",
    [
        "itself",
        "staff_into_customer",
        "customer_into_staff",
        "already_merged",
        "survivor_merged",
        "duplicate_absorbed_others",
    ],
)
def test_refusals_are_409_with_the_reason_and_change_nothing(db, admin_users_function, pair, case):
    survivor, duplicate = pair
    with db.begin() as connection:
        staff = add_staff_user(connection, "mark.taylor@reactfasttraining.co.uk", "instructor")
        third = add_user(connection, "third@example.com")
    if case in ("already_merged", "survivor_merged", "duplicate_absorbed_others"):
        merge_users(survivor, duplicate, actor=ADMIN)
    target, source, reason = {
        "itself": (survivor, survivor, "cannot be merged into itself"),
        "staff_into_customer": (survivor, staff, "only customers can be merged"),
        "customer_into_staff": (staff, survivor, "only customers can be merged"),
        "already_merged": (third, duplicate, f"was already merged into user {survivor}"),
        "survivor_merged": (duplicate, third, f"was already merged into user {survivor}"),
        "duplicate_absorbed_others": (third, survivor, f"already absorbed user {duplicate}"),
    }[case]
    before = rows(db, "SELECT * FROM users ORDER BY id") + rows(
        db, "SELECT id, user_id FROM bookings ORDER BY id"
    )

    status, body, _ = merge(admin_users_function, target, source)

    assert status == 409, body
    assert reason in body["message"]
    after = rows(db, "SELECT * FROM users ORDER BY id") + rows(
        db, "SELECT id, user_id FROM bookings ORDER BY id"
    )
    assert after == before


def test_an_unknown_user_is_404_and_a_bad_body_is_422(db, admin_users_function, pair):
    survivor, _ = pair
    status, body, _ = merge(admin_users_function, survivor, 999_999)
    assert (status, body["errors"][0]["field"]) == (404, "duplicate_id")
    status, body, _ = call(
        admin_users_function, "POST", f"/api/admin/users/{survivor}/merge", body={"id": 3}
    )
    assert status == 422


def test_two_admins_merging_the_same_pair_at_once_get_one_merge(db, pair):
    survivor, duplicate = pair
    start = threading.Barrier(4)

    def attempt(direction: int) -> str:
        start.wait()
        try:
            first, second = (survivor, duplicate) if direction % 2 == 0 else (duplicate, survivor)
            merge_users(
                first,
                second,
                actor=Staff(id=direction + 1, email=f"admin{direction}@example.com", role="admin"),
            )
        except Conflict:
            return "refused"
        return "merged"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, range(4)))

    assert sorted(outcomes) == ["merged", "refused", "refused", "refused"]
    assert len(rows(db, "SELECT * FROM user_merges")) == 1
    assert len(rows(db, "SELECT * FROM user_email_aliases")) == 1
    assert len(rows(db, "SELECT * FROM bookings WHERE user_id IS NOT NULL")) == 3
    with db.connect() as connection:
        assert stats_mismatches(connection) == []


def test_checkouts_racing_a_merge_all_end_on_the_survivor(db, pair):
    survivor, duplicate = pair
    with db.begin() as connection:
        sessions = [add_session(connection) for _ in range(8)]
    requests = [
        BookingRequest.model_validate(booking_body(session, email=DUPLICATE_EMAIL))
        for session in sessions
    ]
    start = threading.Barrier(len(requests) + 1)

    def checkout(request: BookingRequest) -> int:
        start.wait()
        return place_booking(request).body["bookingId"]

    def merge_now() -> None:
        start.wait()
        merge_users(survivor, duplicate, actor=ADMIN)

    with ThreadPoolExecutor(max_workers=len(requests) + 1) as pool:
        merged = pool.submit(merge_now)
        booked = list(pool.map(checkout, requests))
        merged.result()

    owners = rows(db, "SELECT user_id FROM bookings WHERE id = ANY(:ids)", ids=booked)
    assert [row.user_id for row in owners] == [survivor] * len(booked)
    assert rows(db, "SELECT count(*) FROM bookings WHERE user_id = :u", u=duplicate)[0][0] == 0
    with db.connect() as connection:
        assert stats_mismatches(connection) == []


def test_an_unmerge_puts_everything_back_including_bookings_made_through_the_alias(
    db, admin_users_function, pair, session_id
):
    survivor, duplicate = pair
    before = rows(db, "SELECT id, user_id FROM bookings ORDER BY id")
    survivor_before = rows(db, "SELECT * FROM users WHERE id = :id", id=survivor)[0]
    merge(admin_users_function, survivor, duplicate)
    later = place_booking(
        BookingRequest.model_validate(booking_body(session_id, email=DUPLICATE_EMAIL))
    ).body["bookingId"]

    path = f"/api/admin/users/{survivor}/unmerge"
    status, body, _ = call(admin_users_function, "POST", path, body={"duplicateId": duplicate})

    assert status == 200, body
    assert later in body["returned_booking_ids"]
    assert (
        rows(db, "SELECT id, user_id FROM bookings WHERE id <> :l ORDER BY id", l=later) == before
    )
    assert rows(db, "SELECT user_id FROM bookings WHERE id = :l", l=later)[0].user_id == duplicate
    survivor_after = rows(db, "SELECT * FROM users WHERE id = :id", id=survivor)[0]
    for field in ("company_name", "postcode", "customer_type", "city"):
        assert getattr(survivor_after, field) == getattr(survivor_before, field)
    assert rows(db, "SELECT * FROM user_email_aliases") == []
    assert rows(db, "SELECT merged_into FROM users WHERE id = :id", id=duplicate)[0][0] is None
    with db.connect() as connection:
        assert stats_mismatches(connection) == []
    status, body, _ = call(admin_users_function, "POST", path, body={"duplicateId": duplicate})
    assert status == 409


def test_a_merge_older_than_30_days_cannot_be_undone(db, pair):
    from rft_common.users.merges import unmerge_users

    survivor, duplicate = pair
    merge_users(survivor, duplicate, actor=ADMIN)
    with db.begin() as connection:
        connection.execute(text("UPDATE user_merges SET merged_at = now() - interval '31 days'"))

    with pytest.raises(Conflict, match="older than 30 days"):
        unmerge_users(survivor, duplicate, actor=ADMIN)


def test_every_reference_to_users_is_either_moved_or_kept_by_a_merge(db):
    references = {
        (row.table_name, row.column_name)
        for row in rows(
            db,
            """
            SELECT c.conrelid::regclass::text AS table_name, a.attname AS column_name
            FROM pg_constraint AS c
            JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
            WHERE c.contype = 'f' AND c.confrelid = 'users'::regclass
            """,
        )
    }
    assert references == USER_REFERENCES_MOVED | USER_REFERENCES_KEPT
