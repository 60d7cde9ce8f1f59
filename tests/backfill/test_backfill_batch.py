"""One backfill batch on real PostgreSQL: linking, identity rules, unlinkable rows,
redelivery and crashes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from rft_common.backfill import service as backfill
from rft_common.backfill.service import BatchRangeMismatch, process_batch
from tests.backfill_helpers import contact, insert_legacy_bookings, key_message, message, state
from tests.factories import add_session, add_staff_user, stats_mismatches

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def session_id(db) -> int:
    with db.begin() as connection:
        return add_session(connection)


def add_bookings(db, session_id, contacts, **fields) -> list[int]:
    with db.begin() as connection:
        return insert_legacy_bookings(connection, session_id, contacts, **fields)


@pytest.fixture(params=[2, 1], ids=["version 2", "version 1"])
def whole_batch(request):
    """A message covering every booking given: all email keys, or the ids' range."""

    def make(ids: list[int], batch_id: str = "batch-1"):
        if request.param == 1:
            return message(ids[0], ids[-1], batch_id)
        return key_message(batch_id=batch_id)

    return make


def scalar(db, sql: str, **parameters):
    with db.connect() as connection:
        return connection.execute(text(sql), parameters).scalar_one()


def test_email_variants_of_one_person_link_to_one_customer(db, session_id, whole_batch):
    ids = add_bookings(
        db,
        session_id,
        [
            contact("sam.patel@example.com"),
            contact(" Sam.Patel@Example.com"),
            contact("SAM.PATEL@EXAMPLE.COM  "),
            contact("\tsam.patel@example.com\n"),
        ],
    )

    result = process_batch(whole_batch(ids))

    with db.connect() as connection:
        customers = connection.execute(text("SELECT * FROM users")).all()
        links = connection.execute(text("SELECT DISTINCT user_id FROM bookings")).scalars().all()
    assert (result.bookings_linked, result.customers_created, result.unlinkable) == (4, 1, 0)
    assert len(customers) == 1
    assert customers[0].email == "sam.patel@example.com"
    assert customers[0].role == "customer"
    assert links == [customers[0].id]


def test_statistics_equal_a_recomputation_with_cancelled_and_refunded_bookings(db, session_id):
    first = add_bookings(db, session_id, [contact("jo@example.com")] * 3)
    add_bookings(db, session_id, [contact("jo@example.com")], status="cancelled")
    add_bookings(
        db, session_id, [contact("jo@example.com")], status="cancelled", payment_status="refunded"
    )
    last = add_bookings(db, session_id, [contact("jo@example.com")], payment_status="failed")

    process_batch(message(first[0], last[-1]))

    with db.connect() as connection:
        customer = connection.execute(text("SELECT * FROM users")).one()
        assert stats_mismatches(connection) == []
    assert (customer.total_bookings, customer.total_spent) == (4, Decimal("300.00"))


def test_bookings_without_a_usable_email_are_recorded_once_with_the_reason(
    db, session_id, whole_batch
):
    ids = add_bookings(
        db,
        session_id,
        [
            contact(None),
            {"name": "No email key"},
            contact("   "),
            contact("sam at example.com"),
            contact("sam@"),
            contact("jo@example.com"),
        ],
    )

    first = process_batch(whole_batch(ids))
    second = process_batch(whole_batch(ids))

    with db.connect() as connection:
        recorded = connection.execute(
            text("SELECT booking_id, reason FROM backfill_unlinkable ORDER BY booking_id")
        ).all()
        linked = connection.execute(
            text("SELECT id FROM bookings WHERE user_id IS NOT NULL")
        ).scalars()
        assert list(linked) == [ids[5]]
    assert [tuple(row) for row in recorded] == [
        (ids[0], "missing_email"),
        (ids[1], "missing_email"),
        (ids[2], "missing_email"),
        (ids[3], "malformed_email"),
        (ids[4], "malformed_email"),
    ]
    assert (first.unlinkable, second.unlinkable) == (5, 0)


def test_a_customer_keeps_non_blank_details_and_gets_blank_ones_filled(db, session_id, whole_batch):
    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (email, name, role, customer_type) "
                "VALUES ('jo@example.com', 'Jo Existing', 'customer', 'individual')"
            )
        )
    ids = add_bookings(
        db,
        session_id,
        [
            contact("JO@example.com", name="Jo From Legacy", phone=" ", company=None),
            contact("jo@example.com", name="Someone Else", phone="07700 900123", company="Acme"),
        ],
    )

    result = process_batch(whole_batch(ids))

    with db.connect() as connection:
        customer = connection.execute(text("SELECT * FROM users")).one()
    assert result.customers_created == 0
    assert (customer.name, customer.phone, customer.company_name) == (
        "Jo Existing",
        "07700 900123",
        "Acme",
    )
    assert customer.customer_type == "individual"


def test_a_new_customer_takes_each_detail_from_its_earliest_booking_that_has_it(
    db, session_id, whole_batch
):
    ids = add_bookings(
        db,
        session_id,
        [
            contact("jo@example.com", name="", phone=None),
            contact("jo@example.com", name="Jo Bloggs", phone="0114 000 0001"),
            contact("jo@example.com", name="Jo B", phone="0114 000 0002", company="Bloggs Ltd"),
        ],
    )

    process_batch(whole_batch(ids))

    with db.connect() as connection:
        customer = connection.execute(text("SELECT * FROM users")).one()
    assert (customer.name, customer.phone, customer.company_name, customer.customer_type) == (
        "Jo Bloggs",
        "0114 000 0001",
        "Bloggs Ltd",
        "corporate",
    )


def test_a_new_customer_is_dated_from_their_first_booking_and_a_found_one_keeps_its_date(
    db, session_id, whole_batch
):
    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (email, name, role, customer_type, created_at) VALUES "
                "('found@example.com', 'Found', 'customer', 'individual', '2025-06-01T12:00Z')"
            )
        )
    ids = add_bookings(
        db,
        session_id,
        [
            contact("jo@example.com"),
            contact("jo@example.com"),
            contact("found@example.com"),
            contact(None),
        ],
    )
    booked = ["2021-03-04T09:00Z", "2019-05-06T10:00Z", "2018-01-02T08:00Z", "2017-01-01T08:00Z"]
    with db.begin() as connection:
        for booking_id, created_at in zip(ids, booked, strict=True):
            connection.execute(
                text("UPDATE bookings SET created_at = :created_at WHERE id = :id"),
                {"created_at": created_at, "id": booking_id},
            )

    process_batch(whole_batch(ids))

    with db.connect() as connection:
        dates = dict(
            connection.execute(
                text(
                    "SELECT email, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
                    "FROM users"
                )
            ).all()
        )
    assert dates == {"jo@example.com": "2019-05-06 10:00", "found@example.com": "2025-06-01 12:00"}


def test_a_staff_email_links_to_the_staff_user_unchanged(db, session_id, whole_batch):
    with db.begin() as connection:
        staff_id = add_staff_user(connection, "Trainer@ReactFast.co.uk", role="instructor")
    before = state(db)["users"]
    ids = add_bookings(
        db, session_id, [contact(" trainer@reactfast.co.uk", name="Other Name", phone="0")]
    )

    result = process_batch(whole_batch(ids))

    with db.connect() as connection:
        staff = connection.execute(text("SELECT * FROM users")).one()
        linked_to = scalar(db, "SELECT user_id FROM bookings WHERE id = :id", id=ids[0])
    assert (result.bookings_linked, result.customers_created) == (1, 0)
    assert linked_to == staff_id
    assert (staff.role, staff.name, staff.phone, staff.password_hash) == (
        "instructor",
        "Staff",
        None,
        "bcrypt$hash",
    )
    assert [row[:7] for row in state(db)["users"]] == [row[:7] for row in before]


def test_already_linked_bookings_in_the_range_are_left_alone(db, session_id, whole_batch):
    with db.begin() as connection:
        other = add_staff_user(connection, "admin@reactfast.co.uk")
    ids = add_bookings(db, session_id, [contact("jo@example.com"), contact("jo@example.com")])
    with db.begin() as connection:
        connection.execute(
            text("UPDATE bookings SET user_id = :other WHERE id = :id"),
            {"other": other, "id": ids[0]},
        )

    result = process_batch(whole_batch(ids))

    assert result.bookings_linked == 1
    assert scalar(db, "SELECT user_id FROM bookings WHERE id = :id", id=ids[0]) == other


def test_a_redelivered_batch_leaves_the_state_of_one_clean_run(db, session_id, whole_batch):
    ids = add_bookings(
        db,
        session_id,
        [contact(f"person{i % 7}@example.com", phone=f"0{i}") for i in range(40)]
        + [contact(None), contact("bad@@example.com")],
    )
    process_batch(whole_batch(ids))
    after_one_run = state(db)

    again = process_batch(whole_batch(ids))

    assert state(db) == after_one_run
    assert (again.bookings_linked, again.customers_created, again.unlinkable) == (0, 0, 0)
    assert scalar(db, "SELECT runs FROM backfill_batches") == 2
    assert scalar(db, "SELECT bookings_linked FROM backfill_batches") == 40


def test_a_batch_dying_after_creating_customers_and_links_leaves_nothing_and_its_retry_completes(
    db, session_id, monkeypatch, whole_batch
):
    ids = add_bookings(db, session_id, [contact(f"p{i % 5}@example.com") for i in range(20)])
    untouched = state(db)

    def crash(connection, parameters):
        assert parameters["customers_created"] == 5
        raise RuntimeError("Lambda timed out")

    with monkeypatch.context() as patch:
        patch.setattr(backfill, "_finish_batch", crash)
        with pytest.raises(RuntimeError):
            process_batch(whole_batch(ids))
    assert state(db) == untouched
    assert scalar(db, "SELECT count(*) FROM backfill_batches") == 0

    result = process_batch(whole_batch(ids))

    assert (result.bookings_linked, result.customers_created) == (20, 5)
    with db.connect() as connection:
        assert stats_mismatches(connection) == []
    assert scalar(db, "SELECT status FROM backfill_batches") == "done"


def test_an_unlinkable_booking_does_not_hold_back_later_bookings(db, session_id):
    ids = add_bookings(db, session_id, [contact(None)] + [contact("jo@example.com")] * 60)

    process_batch(message(ids[0], ids[29], batch_id="first"))
    process_batch(message(ids[30], ids[-1], batch_id="second"))

    assert scalar(db, "SELECT count(*) FROM bookings WHERE user_id IS NULL") == 1
    assert scalar(db, "SELECT count(*) FROM backfill_unlinkable") == 1


def test_a_batch_id_reused_with_another_range_is_refused(db, session_id):
    ids = add_bookings(db, session_id, [contact("jo@example.com")] * 3)
    process_batch(message(ids[0], ids[1], batch_id="b-1"))

    with pytest.raises(BatchRangeMismatch):
        process_batch(message(ids[0], ids[2], batch_id="b-1"))

    assert scalar(db, "SELECT count(*) FROM bookings WHERE user_id IS NULL") == 1


def test_bookings_outside_the_range_are_not_touched(db, session_id):
    ids = add_bookings(db, session_id, [contact(f"p{i}@example.com") for i in range(5)])

    process_batch(message(ids[1], ids[3]))

    with db.connect() as connection:
        unlinked = connection.execute(
            text("SELECT id FROM bookings WHERE user_id IS NULL ORDER BY id")
        ).scalars()
        assert list(unlinked) == [ids[0], ids[4]]


def test_history_gets_the_booker_as_the_one_attendee_and_then_certificates(
    db, session_id, whole_batch
):
    from rft_common.certificates.service import issue_certificates

    ids = add_bookings(
        db,
        session_id,
        [
            contact("sam.patel@example.com", "Sam Patel"),
            contact("not an email", "Jo Bloggs Smith"),
        ],
        status="completed",
    )

    process_batch(whole_batch(ids))
    process_batch(whole_batch(ids))  # a redelivery adds nothing
    issued = issue_certificates().issued

    with db.connect() as connection:
        attendees = connection.execute(
            text("SELECT * FROM booking_attendees ORDER BY booking_id")
        ).all()
        certificates = connection.execute(text("SELECT * FROM certificates")).all()
        sam = scalar(db, "SELECT id FROM users WHERE email = 'sam.patel@example.com'")
    assert [(a.position, a.first_name, a.last_name, a.email, a.user_id) for a in attendees] == [
        (1, "Sam", "Patel", "sam.patel@example.com", sam),
        (1, "Jo", "Bloggs Smith", None, None),
    ]
    assert issued == len(certificates) == 2
    assert {c.user_id for c in certificates} == {sam, None}
