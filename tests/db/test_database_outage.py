"""PostgreSQL unreachable: 503 with a clear message; recovery without a cold start."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from pg8000.exceptions import InterfaceError
from sqlalchemy import create_engine, text

from rft_common.core.settings import get_settings
from rft_common.db import postgres
from rft_common.db import postgres as db
from rft_tools.local.db import EmbeddedServer, embedded_url, ensure_database, start_embedded
from rft_tools.operations.migrations import upgrade
from rft_tools.paths import LOCAL_DIR
from tests.conftest import load_function, rest_event
from tests.factories import add_session, booking_body
from tests.payment_helpers import stripe_event, webhook_event

pytestmark = pytest.mark.usefixtures("db", "customer_accounts_on")

BACKEND = "SELECT pg_backend_pid()"
UNREACHABLE = "postgresql+pg8000://postgres@/rft?unix_sock=/nonexistent/.s.PGSQL.5432"


@pytest.fixture
def database_down(monkeypatch, database_url):
    """Point the warm handler at a database that does not answer, then restore it."""
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    get_settings.cache_clear()
    db.reset_pool()
    yield
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    db.reset_pool()


@pytest.fixture(scope="module")
def create_booking():
    return load_function("create_booking")


def test_health_is_503_when_the_database_is_unreachable(
    database_down, create_booking, lambda_context
):
    response = create_booking.lambda_handler(rest_event("GET", "/api/health"), lambda_context)

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["message"] == "the database is not reachable"


def test_a_booking_is_503_with_a_clear_message_and_no_stack_trace(
    database_down, create_booking, lambda_context, captured_logs
):
    event = rest_event("POST", "/api/bookings", booking_body(1))

    response = create_booking.lambda_handler(event, lambda_context)

    assert response["statusCode"] == 503
    assert json.loads(response["body"]) == {
        "message": "the database is not reachable",
        "errors": [],
    }
    assert "sam.patel@example.com" not in captured_logs.getvalue().lower()


@pytest.mark.usefixtures("stripe_keys")
def test_the_checkout_routes_and_the_webhook_are_503_in_their_own_shapes(
    database_down, create_booking, lambda_context
):
    intent = {
        "courseSessionId": 1,
        "amount": 7500,
        "bookingData": {
            "firstName": "Sam",
            "lastName": "Patel",
            "email": "sam.patel@example.com",
            "numberOfParticipants": 1,
        },
    }
    event_payload = stripe_event("payment_intent.succeeded", {"id": "pi_x", "metadata": {}})
    webhook = load_function("stripe_webhook", "outage")

    answers = [
        create_booking.lambda_handler(
            rest_event("POST", "/api/bookings/create-payment-intent", intent), lambda_context
        ),
        create_booking.lambda_handler(
            rest_event("GET", "/api/courses/sessions/available"), lambda_context
        ),
        webhook.lambda_handler(webhook_event(event_payload), lambda_context),
    ]

    assert [answer["statusCode"] for answer in answers] == [503, 503, 503]
    assert json.loads(answers[0]["body"])["success"] is False
    assert json.loads(answers[2]["body"])["message"] == "the database is not reachable"


@pytest.fixture
def book(create_booking, lambda_context) -> Callable[[int], int]:
    """Books a seat of a session through the warm checkout; answers the status code."""

    def booked(session_id: int) -> int:
        event = rest_event("POST", "/api/bookings", booking_body(session_id))
        return create_booking.lambda_handler(event, lambda_context)["statusCode"]

    return booked


@pytest.fixture
def stoppable_database(monkeypatch):
    """A PostgreSQL of this test's own, which it may stop and start again."""
    data_dir = LOCAL_DIR / "pg-outage"
    server = start_embedded(data_dir)
    server.owned = True
    url = embedded_url(data_dir, "rft_outage")
    ensure_database(url, recreate=True)
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    db.reset_pool()
    engine = create_engine(url, pool_pre_ping=True)
    yield server, engine
    engine.dispose()
    db.reset_pool()
    # The test may have restarted it through a handle of its own: stop it whoever started it.
    EmbeddedServer(data_dir, owned=True, system_user=server.system_user).stop()
    get_settings.cache_clear()


def test_a_warm_handler_recovers_when_postgresql_comes_back(stoppable_database, book):
    server, engine = stoppable_database
    with engine.begin() as connection:
        sessions = [add_session(connection) for _ in range(3)]

    before = book(sessions[0])
    server.stop()
    during = book(sessions[1])
    server = start_embedded(server.data_dir)
    after = book(sessions[2])

    assert (before, during, after) == (201, 503, 201)
    with engine.connect() as connection:
        booked = connection.execute(text("SELECT count(*) FROM bookings")).scalar_one()
    assert booked == 2


def test_a_warm_handler_whose_connection_was_closed_meanwhile_still_books(
    engine, book, caplog, database_settings
):
    """Nothing pings a pooled connection before use: the booking's first statement finds
    it dead (here the server ended it, as a restart or RDS Proxy's idle timeout does),
    and the booking runs again on a new one, once. Discarding the dead one is not an
    error: nothing is logged at ERROR."""
    database_settings(DB_POOL_SIZE="1")
    with engine.begin() as connection:
        sessions = [add_session(connection) for _ in range(2)]

    before = book(sessions[0])
    backend = postgres.run_transaction(lambda pooled: pooled.execute(BACKEND).one()[0])
    with engine.connect() as connection:
        ended = connection.execute(
            text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}
        ).scalar_one()
    with caplog.at_level(logging.WARNING):
        after = book(sessions[1])

    assert ended is True
    assert (before, after) == (201, 201)
    assert [
        record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
    ] == []
    with engine.connect() as connection:
        booked = connection.execute(
            text("SELECT count(*) FROM bookings WHERE course_schedule_id = ANY(:ids)"),
            {"ids": sessions},
        ).scalar_one()
    assert booked == 2


def test_closing_a_connection_whose_server_is_gone_succeeds_and_a_second_close_raises(engine):
    dbapi_connection = db.connect(db.connection_arguments())
    backend = dbapi_connection.cursor()
    backend.execute("SELECT pg_backend_pid()")
    (pid,) = backend.fetchone()
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    dbapi_connection.close()

    with pytest.raises(InterfaceError, match="connection is closed"):
        dbapi_connection.close()
