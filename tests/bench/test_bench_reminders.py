"""The reminders bench's data: its statements make bookings, attendees, consents and
suppressions the daily run judges (tiny sizes, the test database)."""

from __future__ import annotations

from sqlalchemy import text

from bench.reminders import _generate


def test_the_generated_switch_on_backlog_is_reminded_once(
    db, database_url, monkeypatch, database_settings
):
    from rft_common.core import settings

    database_settings(DB_SOCKET_TIMEOUT_SECONDS="60")
    from rft_common.renewals.reminders import run_reminders

    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "bench")
    settings.get_settings.cache_clear()

    generated = _generate(database_url, {"bookings": 3000, "customers": 900})
    first = run_reminders()
    again = run_reminders()

    assert generated["certificates"] == 3000 + 2 * 600  # a fifth are groups of three
    assert first.messages > 0 and set(first.skipped()) >= {"no_lawful_basis", "objected"}
    assert len(first.by_stage) == 4  # 90, 30, 7 and -1 all due somewhere
    assert (again.messages, again.total("sent")) == (0, 0)
    with db.connect() as connection:
        queued = connection.execute(
            text("SELECT count(*) FROM email_outbox WHERE kind = 'renewal_reminder'")
        ).scalar_one()
    assert queued == first.messages
