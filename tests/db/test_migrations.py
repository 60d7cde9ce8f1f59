"""Migrations: models agree with them, the round trip keeps legacy rows, collisions stop."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from rft_tools.operations import migrations
from tests.conftest import scratch_database
from tests.factories import stats_mismatches

BASELINE = "0001_legacy_baseline"
LEGACY_COLUMNS = {
    "users": "id, email, name, password_hash, role, created_at, updated_at",
    "courses": "id, name, category, duration, price, created_at, updated_at",
    "course_schedules": "id, course_id, start_datetime, end_datetime, venue, price, "
    "max_capacity, current_capacity, status, created_at, updated_at",
    "bookings": "id, booking_reference, course_schedule_id, user_id, status, payment_status, "
    "payment_amount, payment_method, stripe_payment_intent_id, number_of_attendees, "
    "contact_details::text, created_at, updated_at",
    "payments": "id, booking_id, amount, status, stripe_payment_intent_id, stripe_charge_id, "
    "created_at",
}
LEGACY_DATA = """
INSERT INTO users (email, name, password_hash, role)
SELECT 'Staff' || i || '@ReactFast.co.uk', 'Staff ' || i, 'hash' || i,
       CASE WHEN mod(i, 2) = 0 THEN 'admin' ELSE 'instructor' END
FROM generate_series(1, 6) AS i;
INSERT INTO courses (name, price) SELECT 'Course ' || i, 50 + i FROM generate_series(1, 3) AS i;
INSERT INTO course_schedules (course_id, start_datetime, end_datetime, venue, price)
SELECT 1 + mod(i, 3), now() + i * interval '1 day',
       now() + i * interval '1 day' + interval '6 hours',
       'Venue ' || i, 50 + mod(i, 3)
FROM generate_series(1, 20) AS i;
INSERT INTO bookings (booking_reference, course_schedule_id, user_id, status, payment_status,
                      payment_amount, number_of_attendees, contact_details, created_at)
SELECT 'RFT-LEGACY-' || i, 1 + mod(i, 20), CASE WHEN mod(i, 50) = 0 THEN 1 + mod(i, 6) END,
       (ARRAY['pending','confirmed','cancelled','completed','no_show'])[1 + mod(i, 5)],
       (ARRAY['pending','paid','refunded','failed'])[1 + mod(i, 4)],
       50 + mod(i, 3), 1 + mod(i, 4),
       json_build_object('name', 'Person ' || i,
                         'email', ' Person' || mod(i, 700) || '@Example.com',
                         'phone', '0770090' || i),
       now() - i * interval '1 hour'
FROM generate_series(1, :bookings) AS i;
INSERT INTO payments (booking_id, amount, status)
SELECT i, 50, 'succeeded' FROM generate_series(1, :bookings, 3) AS i;
"""


def legacy_checksums(connection) -> dict[str, tuple[int, str]]:
    return {
        table: tuple(
            connection.execute(
                text(
                    f"SELECT count(*), md5(string_agg(row({columns})::text, '|' ORDER BY id)) "
                    f"FROM {table}"
                )
            ).one()
        )
        for table, columns in LEGACY_COLUMNS.items()
    }


@pytest.fixture
def legacy_database(postgres_server_url):
    url = scratch_database(postgres_server_url, "rft_migrations_test")
    migrations.upgrade(url, BASELINE)
    engine = create_engine(url)
    yield url, engine
    engine.dispose()


def test_models_and_migrations_agree(database_url):
    """``alembic check``: no operations would be generated from the models."""
    migrations.check(database_url)


@pytest.mark.parametrize("bookings", [3000, 100_000])
def test_upgrade_downgrade_upgrade_leaves_every_legacy_row_as_it_was(legacy_database, bookings):
    url, engine = legacy_database
    with engine.begin() as connection:
        for statement in LEGACY_DATA.split(";")[:-1]:
            connection.execute(text(statement), {"bookings": bookings})
    with engine.connect() as connection:
        before = legacy_checksums(connection)
    assert before["bookings"][0] == bookings

    migrations.upgrade(url, "head")
    with engine.connect() as connection:
        assert legacy_checksums(connection) == before
        assert stats_mismatches(connection) == []
        staff_with_stats = connection.execute(
            text("SELECT count(*) FROM users WHERE total_bookings > 0")
        ).scalar_one()
    assert staff_with_stats == 3  # bookings i % 50 == 0 link to users 1, 3 and 5

    migrations.downgrade(url, "base")
    with engine.connect() as connection:
        assert legacy_checksums(connection) == before
    user_columns = {column["name"] for column in inspect(engine).get_columns("users")}
    assert user_columns == set(LEGACY_COLUMNS["users"].split(", "))
    assert not inspect(engine).has_table("idempotency_keys")

    migrations.upgrade(url, "head")
    with engine.connect() as connection:
        assert legacy_checksums(connection) == before


def test_staff_emails_colliding_when_normalised_stop_the_migration(legacy_database):
    url, engine = legacy_database
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (email, name, password_hash, role) VALUES "
                "('Jo@ReactFast.co.uk', 'Jo', 'h', 'admin'), "
                "('jo@reactfast.co.uk ', 'Jo B', 'h', 'instructor'), "
                "('ok@reactfast.co.uk', 'Ok', 'h', 'admin')"
            )
        )

    with pytest.raises(RuntimeError, match=r"users \[1, 2\] share .*'jo@reactfast.co.uk'"):
        migrations.upgrade(url, "head")

    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        emails = connection.execute(text("SELECT email FROM users ORDER BY id")).scalars().all()
    assert version == BASELINE
    assert emails == ["Jo@ReactFast.co.uk", "jo@reactfast.co.uk ", "ok@reactfast.co.uk"]
    assert "email_normalized" not in {c["name"] for c in inspect(engine).get_columns("users")}


def test_legacy_bookings_sharing_an_intent_are_listed_and_left_while_verified_ones_are_unique(
    legacy_database, capfd
):
    url, engine = legacy_database
    with engine.begin() as connection:
        for statement in LEGACY_DATA.split(";")[:-1]:
            connection.execute(text(statement), {"bookings": 30})
        connection.execute(
            text(
                "UPDATE bookings SET stripe_payment_intent_id = CASE WHEN id IN (4, 9) "
                "THEN 'pi_legacy_twice' WHEN id = 5 THEN 'pi_legacy_once' END WHERE id < 10"
            )
        )
        before = legacy_checksums(connection)

    migrations.upgrade(url, "head")

    output = capfd.readouterr().err
    assert "pi_legacy_twice: bookings 4, 9" in output
    assert "pi_legacy_once" not in output
    verified_copy = text(
        "INSERT INTO bookings (booking_reference, course_schedule_id, payment_amount, "
        "contact_details, stripe_payment_intent_id, payment_verified_at) "
        "VALUES (:reference, 1, 75, '{}', 'pi_verified', now())"
    )
    with engine.begin() as connection:
        assert legacy_checksums(connection) == before
        connection.execute(verified_copy, {"reference": "RFT-VERIFIED-1"})
    with (
        pytest.raises(IntegrityError, match="uq_bookings_stripe_payment_intent_id_verified"),
        engine.begin() as connection,
    ):
        connection.execute(verified_copy, {"reference": "RFT-VERIFIED-2"})
