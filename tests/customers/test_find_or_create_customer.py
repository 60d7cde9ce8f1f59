"""The identity rules (the database function ``rft_find_or_create_customers``, migration
0028) as each of their two statements applies them: the checkout's single customer and
the backfill's batch.

Both statements call the one function, so these check what each adds around it (its
``new_customers``) and the rules' promise that a found customer with nothing to fill is
not rewritten. The rules' other cases are tested through the paths that use them:
test_create_booking (blanks filled, staff unchanged, email variants),
test_booking_concurrency (one customer from parallel first bookings), test_backfill_batch
(the same rules per batch), test_backfill_concurrency (checkouts during a backfill) and
test_user_merge (an alias links to the survivor, also mid-merge).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from rft_common.backfill.service import process_batch
from rft_common.customers.identity import CustomerDetails, find_or_create_customer
from rft_common.db.postgres import run_transaction
from tests.admin_helpers import add_user
from tests.backfill_helpers import contact, insert_legacy_bookings, key_message
from tests.factories import add_session

pytestmark = pytest.mark.usefixtures("db")


def find_or_create(**details) -> tuple[int, bool]:
    customer = CustomerDetails(**details)
    return run_transaction(lambda connection: find_or_create_customer(connection, customer))


def backfill(db, email: str, **details) -> int:
    """Link one legacy booking by ``email``, cancelled and unpaid so that linking it
    changes none of its customer's statistics; the id of its customer."""
    with db.begin() as connection:
        session_id = add_session(connection)
        (booking_id,) = insert_legacy_bookings(
            connection,
            session_id,
            [contact(email, **details)],
            status="cancelled",
            payment_status="pending",
        )
    process_batch(key_message())
    with db.connect() as connection:
        return connection.execute(
            text("SELECT user_id FROM bookings WHERE id = :id"), {"id": booking_id}
        ).scalar_one()


def row_version(db, user_id: int) -> tuple:
    """The row's transaction id and contents: a rewrite changes the first."""
    with db.connect() as connection:
        return tuple(
            connection.execute(
                text(
                    "SELECT xmin::text, name, phone, company_name, customer_type, role "
                    "FROM users WHERE id = :id"
                ),
                {"id": user_id},
            ).one()
        )


def test_a_new_customer_is_created_with_trimmed_details_and_its_type(db):
    user_id, created = find_or_create(
        email="new@example.com", name="  Sam New ", phone=" ", company_name="Acme Ltd"
    )

    assert created is True
    assert row_version(db, user_id)[1:] == ("Sam New", None, "Acme Ltd", "corporate", "customer")
    assert find_or_create(email="new@example.com") == (user_id, False)


def test_a_found_customer_with_nothing_to_fill_is_not_rewritten_by_either_path(db):
    with db.begin() as connection:
        user_id = add_user(
            connection, "jo@example.com", name="Jo", phone="07700 900123", company_name="Acme"
        )
    before = row_version(db, user_id)

    found = find_or_create(email="jo@example.com", name="Jo Other", phone="07700 900999")
    linked_to = backfill(db, "JO@example.com ", name="Jo Legacy", company="Other Ltd")

    assert found == (user_id, False)
    assert linked_to == user_id
    assert row_version(db, user_id) == before


def test_a_staff_member_and_a_merged_alias_are_answered_unchanged(db):
    with db.begin() as connection:
        staff_id = add_user(connection, "admin@example.com", role="admin")
        survivor_id = add_user(connection, "kept@example.com", name="Kept")
        alias_id = add_user(connection, "alias@example.com")
        connection.execute(
            text("UPDATE users SET merged_into = :survivor WHERE id = :alias"),
            {"survivor": survivor_id, "alias": alias_id},
        )
    before = {user_id: row_version(db, user_id) for user_id in (staff_id, alias_id)}

    assert find_or_create(email="admin@example.com", name="Ad Min", phone="1") == (
        staff_id,
        False,
    )
    assert find_or_create(email="alias@example.com", name="Al", phone="2") == (
        survivor_id,
        False,
    )
    assert row_version(db, staff_id) == before[staff_id]
    assert row_version(db, alias_id)[1:] == before[alias_id][1:]  # never filled


def details(db, user_id: int) -> tuple:
    with db.connect() as connection:
        return tuple(
            connection.execute(
                text(
                    "SELECT name, phone, company_name, customer_type, details_source "
                    "FROM users WHERE id = :id"
                ),
                {"id": user_id},
            ).one()
        )


STRANGER = {"name": "Mallory Planted", "phone": "07000 666666", "company_name": "Squat Ltd"}


def test_a_paid_bookings_details_replace_an_unpaid_ones(db):
    user_id, _ = find_or_create(email="jo@example.com", paid=False, **STRANGER)
    assert details(db, user_id) == (
        "Mallory Planted", "07000 666666", "Squat Ltd", "corporate", "unpaid_booking"
    )  # fmt: skip

    find_or_create(email="jo@example.com", name="Jo Bloggs", paid=True)

    assert details(db, user_id) == ("Jo Bloggs", None, None, "individual", "paid_booking")


@pytest.mark.parametrize("source", ["paid_booking", "admin"])
def test_an_unpaid_booking_neither_overwrites_nor_fills_confirmed_details(db, source):
    user_id, _ = find_or_create(email="jo@example.com", name="Jo Bloggs", paid=True)
    with db.begin() as connection:
        connection.execute(
            text("UPDATE users SET details_source = :source WHERE id = :id"),
            {"source": source, "id": user_id},
        )

    find_or_create(email="jo@example.com", paid=False, **STRANGER)
    find_or_create(email="jo@example.com", name="Someone Else", phone="07111 111111", paid=True)

    assert details(db, user_id) == ("Jo Bloggs", "07111 111111", None, "individual", source)


def test_rows_of_no_known_source_are_only_filled_as_before(db):
    with db.begin() as connection:
        user_id = add_user(connection, "legacy@example.com", name="Old Name")

    find_or_create(email="legacy@example.com", name="New Name", phone="07222 222222", paid=True)

    assert details(db, user_id)[:2] == ("Old Name", "07222 222222")
