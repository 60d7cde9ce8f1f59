"""Issue 23, outcome 4: the sessions list speaks the booking site's vocabulary.

The site's calendar reads ``COURSE_TYPE_CONFIG[courseType].color`` for every session in the
month shown (``src/config/courseTypes.config.ts``): any other code crashes ``/booking``.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from rft_common.db.tables import COURSE_TYPES
from rft_tools.data.demo import seed_demo
from rft_tools.data.legacy import COURSES as LEGACY_COURSES
from rft_tools.operations import migrations
from tests.conftest import load_function, rest_event, scratch_database
from tests.factories import add_session

SITE_COURSE_TYPES = {
    "EFAW",
    "FAW",
    "PAEDIATRIC",
    "EMERGENCY_PAEDIATRIC",
    "ACTIVITY_FIRST_AID",
    "CPR_AED",
    "ANNUAL_SKILLS_REFRESHER",
    "OXYGEN_THERAPY",
}


@pytest.fixture(scope="module")
def checkout_function():
    return load_function("create_booking", "sessions")


def listed_sessions(handler, context, **query) -> list[dict]:
    event = rest_event("GET", "/api/courses/sessions/available", query=query or None)
    response = handler.lambda_handler(event, context)
    assert response["statusCode"] == 200
    return json.loads(response["body"])


def test_the_stored_codes_are_the_sites_codes():
    assert set(COURSE_TYPES) == SITE_COURSE_TYPES


@pytest.mark.usefixtures("db")
def test_a_paediatric_session_is_listed_with_the_sites_code_venue_and_instructor_fields(
    db, checkout_function, lambda_context
):
    with db.begin() as connection:
        session_id = add_session(
            connection, course_name="Paediatric First Aid", course_type="PAEDIATRIC"
        )
        elsewhere = add_session(connection, course_name="Emergency First Aid at Work")
        connection.execute(
            text("UPDATE course_schedules SET venue = 'Chesterfield Hall' WHERE id = :id"),
            {"id": elsewhere},
        )

    sessions = {item["id"]: item for item in listed_sessions(checkout_function, lambda_context)}

    assert sessions[session_id]["courseType"] == "PAEDIATRIC"
    assert sessions[session_id]["venueCode"] == "SHEFFIELD"
    assert sessions[elsewhere]["venueCode"] is None
    assert sessions[session_id]["instructorName"] is None
    filtered = listed_sessions(checkout_function, lambda_context, course="paediatric")
    assert [item["id"] for item in filtered] == [session_id]


@pytest.mark.usefixtures("db")
def test_the_database_refuses_a_code_the_site_does_not_know(db):
    with pytest.raises(DBAPIError, match="ck_courses_course_type"), db.begin() as connection:
        add_session(connection, course_name="Paediatric First Aid", course_type="PFA")
    with pytest.raises(DBAPIError, match="course_type"), db.begin() as connection:
        connection.execute(text("INSERT INTO courses (name, price) VALUES ('No code', 75)"))


@pytest.mark.usefixtures("db")
def test_demo_sessions_list_only_site_codes(db, checkout_function, lambda_context):
    with db.begin() as connection:
        seed_demo(connection)

    codes = {item["courseType"] for item in listed_sessions(checkout_function, lambda_context)}

    assert codes == {"EFAW", "FAW", "PAEDIATRIC"}
    assert {course[4] for course in LEGACY_COURSES} <= SITE_COURSE_TYPES


def test_the_migration_gives_todays_courses_their_codes(postgres_server_url, capfd):
    url = scratch_database(postgres_server_url, "rft_course_type_test")
    migrations.upgrade(url, "0013_session_seats")
    engine = create_engine(url)
    names = {
        "Emergency First Aid at Work": "EFAW",
        "First Aid at Work": "FAW",
        "First Aid at Work Requalification": "FAW",
        "Paediatric First Aid": "PAEDIATRIC",
        "Emergency Paediatric First Aid": "EMERGENCY_PAEDIATRIC",
        "Activity First Aid": "ACTIVITY_FIRST_AID",
        "CPR and AED": "CPR_AED",
        "Annual Skills Refresher": "ANNUAL_SKILLS_REFRESHER",
        "Oxygen Therapy": "OXYGEN_THERAPY",
        "Mental Health First Aid": "EFAW",
    }
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO courses (name, price) SELECT unnest(CAST(:names AS text[])), 75"),
                {"names": list(names)},
            )

        migrations.upgrade(url, "head")

        with engine.connect() as connection:
            stored = dict(connection.execute(text("SELECT name, course_type FROM courses")).all())
        assert stored == names
        assert "'Mental Health First Aid'" in capfd.readouterr().err
    finally:
        engine.dispose()
