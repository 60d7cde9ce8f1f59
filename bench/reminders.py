"""Renewal reminders: the daily run on the day the company switches it on.

1,000,000 completed bookings over the last 37 months (one session a day, seven course
types), a fifth of them group bookings of three (the booker and two other customers),
so every certificate issued is still in its three years or just out of it; certificates
issued by the certificates job itself. Every reminder is due for the first time: the
run sends each certificate in a stage window (90, 30, 7 days before expiry, 1 after)
its current stage. Consent: 60% explicit, 20% soft opt-in (skipped under the default
``consent_only``), 5% objected, the rest none; 1% of addresses suppressed. Measured:
the run (select, judge, record, queue, in batches) against ``RemindersFunction``'s
timeout, the rerun that finds everything decided, and the outbox drain of the queued
reminders unpaced (``SES_SEND_RATE`` paces it in the stack).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.environment import fresh_database, use_database
from rft_tools.cfn_template import load_template
from rft_tools.local.aws import LOCAL_CREDENTIALS, start_moto_server
from rft_tools.paths import PROJECT_ROOT

FULL = {"bookings": 1_000_000, "customers": 300_000, "drain": 10_000}
QUICK = {"bookings": 50_000, "customers": 15_000, "drain": 1_000}
DAYS = 37 * 31
COURSE_TYPES = ("EFAW", "FAW", "PAEDIATRIC", "EMERGENCY_PAEDIATRIC", "ACTIVITY_FIRST_AID",
                "CPR_AED", "OXYGEN_THERAPY")  # fmt: skip
"""The site's codes the sessions rotate through, but ANNUAL_SKILLS_REFRESHER: its
certificate number (``RFT-ANNUAL_SKILLS_REFRESHER-2026-00000001``, 41 characters) does
not fit ``certificates.certificate_number`` varchar(40), which fails the whole
certificates job (reported, not fixed here)."""

GENERATE = [
    """
    INSERT INTO users (email, name, role)
    SELECT 'bench' || i || '@example.com', 'Bench Customer ' || i, 'customer'
    FROM generate_series(1, :customers) AS i
    """,
    """
    INSERT INTO courses (name, price, course_type)
    SELECT 'Bench course ' || t, 75, t FROM unnest(CAST(:course_types AS text[])) AS t
    """,
    """
    INSERT INTO course_schedules (course_id, start_datetime, end_datetime, venue, max_capacity)
    SELECT (SELECT id FROM courses ORDER BY id OFFSET mod(d, :type_count) LIMIT 1),
           now() - d * interval '1 day' - interval '7 hours', now() - d * interval '1 day',
           'Sheffield', 100000
    FROM generate_series(1, :days) AS d
    """,
    """
    INSERT INTO bookings (booking_reference, course_schedule_id, user_id, status,
                          payment_status, payment_amount, number_of_attendees,
                          contact_details, created_at)
    SELECT 'BENCH-' || i, s.id, u.id, 'completed', 'paid', 75,
           CASE WHEN mod(i, 5) = 0 THEN 3 ELSE 1 END, '{}', s.start_datetime - interval '9 days'
    FROM generate_series(1, :bookings) AS i
    JOIN course_schedules AS s
      ON s.id = (SELECT min(id) FROM course_schedules) + mod(i::bigint * 7919, :days)
    JOIN users AS u ON u.id = (SELECT min(id) FROM users) + mod(i::bigint * 104729, :customers)
    """,
    """
    INSERT INTO booking_attendees (booking_id, position, user_id, first_name, last_name)
    SELECT b.id, p.position,
           CASE WHEN p.position = 1 THEN b.user_id
                ELSE (SELECT min(id) FROM users)
                     + mod(b.user_id::bigint * 31 + p.position, :customers)
           END,
           'Bench', 'Attendee'
    FROM bookings AS b CROSS JOIN LATERAL generate_series(1, b.number_of_attendees) AS p (position)
    """,
    """
    INSERT INTO consent_events (user_id, purpose, basis, source)
    SELECT id, 'renewal_reminders',
           CASE WHEN mod(id, 20) < 12 THEN 'explicit_consent'
                WHEN mod(id, 20) < 16 THEN 'soft_opt_in'
                WHEN mod(id, 20) = 16 THEN 'objection' ELSE 'none' END,
           'import'
    FROM users
    """,
    """
    INSERT INTO email_suppressions (email_normalized, reason)
    SELECT email_normalized, 'bounce' FROM users WHERE mod(id, 100) = 7
    """,
]


def _generate(url: str, sizes: dict[str, int]) -> dict[str, Any]:
    from rft_common.certificates.service import issue_certificates

    engine = create_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        for statement in GENERATE:
            connection.execute(
                text(statement),
                {
                    "customers": sizes["customers"],
                    "bookings": sizes["bookings"],
                    "days": DAYS,
                    "course_types": list(COURSE_TYPES),
                    "type_count": len(COURSE_TYPES),
                },
            )
    issued = issue_certificates()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()
    return {
        "certificates": issued.issued,
        "expired": issued.expired,
        "generate_s": round(time.perf_counter() - started, 1),
    }


def _drain(count: int) -> dict[str, Any]:
    """Send the ``count`` reminders left due through moto's SES, unpaced."""
    from rft_common.email import outbox

    started = time.perf_counter()
    result = outbox.drain(keep_going=lambda: time.perf_counter() - started < 600)
    seconds = time.perf_counter() - started
    return {
        "sent": result.sent,
        "seconds": round(seconds, 1),
        "per_s": round(result.sent / seconds, 1) if seconds else 0,
        "of": count,
    }


def run(server_url: str, flags_file: Path, *, quick: bool) -> dict[str, Any]:
    from rft_common.core import settings
    from rft_common.email import ses
    from rft_common.renewals.reminders import run_reminders
    from rft_tools.local.mail import local_email_environment

    sizes = QUICK if quick else FULL
    url = fresh_database(server_url, "bench_reminders")
    os.environ.update({"DB_SOCKET_TIMEOUT_SECONDS": "600", "UNSUBSCRIBE_SECRET": "bench"})
    use_database(url, str(flags_file))  # the pool, with the socket timeout above
    generated = _generate(url, sizes)

    started = time.perf_counter()
    report = run_reminders()
    first_run_s = time.perf_counter() - started
    started = time.perf_counter()
    rerun = run_reminders()
    rerun_s = time.perf_counter() - started

    timeout_s = load_template(PROJECT_ROOT / "template.yaml")["Resources"]["RemindersFunction"][
        "Properties"
    ]["Timeout"]
    engine = create_engine(url)
    with engine.begin() as connection:  # drain a sample: the rest stays queued
        connection.execute(
            text(
                "UPDATE email_outbox SET next_attempt_at = now() + interval '1 day' "
                "WHERE id NOT IN (SELECT id FROM email_outbox ORDER BY id LIMIT :sample)"
            ),
            {"sample": sizes["drain"]},
        )
    engine.dispose()
    server, endpoint = start_moto_server()
    try:
        os.environ.update(LOCAL_CREDENTIALS | {"AWS_ENDPOINT_URL": endpoint})
        os.environ.update(local_email_environment(load_template(PROJECT_ROOT / "template.yaml")))
        os.environ["SES_SEND_RATE"] = "1000000"  # the sender's own speed, unpaced
        settings.get_settings.cache_clear()
        ses._client.cache_clear()
        drained = _drain(sizes["drain"])
    finally:
        server.stop()
        for name in ("AWS_ENDPOINT_URL", "SES_SEND_RATE"):
            os.environ.pop(name, None)
        ses._client.cache_clear()
        settings.get_settings.cache_clear()
    summary = report.as_dict()
    return {
        "bookings": sizes["bookings"],
        "customers": sizes["customers"],
        **generated,
        "first_run_s": round(first_run_s, 1),
        "timeout_s": timeout_s,
        "messages": report.messages,
        "reminders_sent": summary["sent"],
        "skipped": summary["skipped"],
        "by_stage": summary["by_stage"],
        "rerun_s": round(rerun_s, 1),
        "rerun_sent": rerun.total("sent"),
        "drain": drained,
    }
