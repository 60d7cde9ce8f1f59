"""Email: the outbox drained into SES (moto's, over HTTP, as ``make run`` has it), and the
paid booking's transaction with its outbox write."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.booking import _add_sessions, _percentiles
from bench.environment import fresh_database, use_database
from rft_tools.cfn_template import load_template
from rft_tools.local.aws import LOCAL_CREDENTIALS, start_moto_server
from rft_tools.paths import PROJECT_ROOT

QUEUE_MESSAGES = """
    INSERT INTO email_outbox (kind, dedupe_key, recipient, payload)
    SELECT 'booking_confirmation', 'bench-' || i, 'bench' || i || '@example.com',
           jsonb_build_object('reference', 'RFT-BENCH-' || i, 'name', 'Bench Customer',
                              'course', 'Emergency First Aid at Work',
                              'starts_at', now() + interval '14 days',
                              'ends_at', now() + interval '14 days 6 hours',
                              'venue', 'Sheffield', 'places', 1, 'amount', 75.00)
    FROM generate_series(1, :count) AS i
"""


def _drain_rate(url: str, count: int) -> dict[str, Any]:
    from rft_common.email import outbox

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(QUEUE_MESSAGES), {"count": count})
    started = time.perf_counter()
    result = outbox.drain()
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        pending = connection.execute(text(outbox.PENDING_COUNT)).scalar_one()
    engine.dispose()
    return {
        "messages": count,
        "sent": result.sent,
        "left_pending": pending,
        "seconds": round(seconds, 1),
        "per_s": round(result.sent / seconds, 1),
    }


def _paid_booking_latency(sessions: list[int]) -> list[float]:
    """Milliseconds per paid booking transaction (price check, customer, insert, outbox
    write): ``create_booking`` with a succeeded PaymentIntent, Stripe's retrieve left out
    (it runs before the transaction, over the network)."""
    from rft_common.checkout.bookings import BookingRequest, create_booking
    from rft_common.checkout.stripe_api import PaymentIntent
    from rft_common.db.postgres import run_transaction

    samples = []
    for number, session_id in enumerate(sessions):
        request = BookingRequest.model_validate(
            {
                "courseSessionId": session_id,
                "firstName": "Bench",
                "lastName": "Customer",
                "email": f"paid{number}@example.com",
                "numberOfParticipants": 1,
                "totalAmount": 75.00,
            }
        )
        payment = PaymentIntent(
            id=f"pi_bench_{uuid.uuid4().hex}",
            status="succeeded",
            amount=7500,
            currency="gbp",
            metadata={},
        )
        started = time.perf_counter()
        run_transaction(
            lambda connection, request=request, payment=payment: create_booking(
                connection, request, link_customer=True, payment=payment
            )
        )
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def run(server_url: str, flags_file: Path, *, quick: bool) -> dict[str, Any]:
    from rft_common.core import settings
    from rft_common.email import ses
    from rft_tools.local.mail import local_email_environment

    url = fresh_database(server_url, "bench_email")
    use_database(url, str(flags_file))
    server, endpoint = start_moto_server()
    try:
        os.environ.update(LOCAL_CREDENTIALS | {"AWS_ENDPOINT_URL": endpoint})
        os.environ.update(local_email_environment(load_template(PROJECT_ROOT / "template.yaml")))
        os.environ["SES_SEND_RATE"] = "1000000"  # the sender's own speed; SES's rate paces it
        settings.get_settings.cache_clear()
        ses._client.cache_clear()
        drained = _drain_rate(url, 1000 if quick else 10_000)
        samples = 200 if quick else 2000
        sessions = _add_sessions(url, samples + 1, capacity=1000)
        _paid_booking_latency(sessions[:1])  # warm up
        paid = _paid_booking_latency(sessions[1:])
    finally:
        server.stop()
        os.environ.pop("AWS_ENDPOINT_URL", None)
        os.environ.pop("SES_SEND_RATE", None)
        ses._client.cache_clear()
        settings.get_settings.cache_clear()
    return {"drain": drained, "paid_booking": _percentiles(paid) | {"samples": len(paid)}}
