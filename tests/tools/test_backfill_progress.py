"""``rft backfill status --watch``: the frame it draws (rich's recording console) and
when it stops."""

from __future__ import annotations

import io
import re
from dataclasses import replace

from rich.console import Console

from rft_tools.operations.backfill import BackfillStatus, QueueDepth
from rft_tools.operations.backfill_progress import progress_view, watch

RUNNING = BackfillStatus(
    bookings_total=1_000_000,
    bookings_linked=735_000,
    bookings_unlinked=265_000,
    unlinkable={"missing_email": 10_000, "malformed_email": 6_000},
    remaining_linkable=249_000,
    customers_created=250_000,
    progress_percent=74.69,
    batches_queued=120,
    batches_done=380,
    rate_per_second=12_450.0,
    eta_seconds=20.0,
    queue=QueueDepth("https://sqs/q", 110, 8, 2, "https://sqs/dlq", 0),
    as_of="2026-11-24T16:00:00+00:00",
)
DONE = replace(
    RUNNING,
    bookings_linked=984_000,
    bookings_unlinked=16_000,
    remaining_linkable=0,
    progress_percent=100.0,
    batches_queued=0,
    batches_done=500,
    rate_per_second=None,
    eta_seconds=None,
    queue=QueueDepth("https://sqs/q", 0, 0, 0, "https://sqs/dlq", 0),
)


def recorder() -> Console:
    return Console(record=True, width=120, force_terminal=True, color_system=None)


def rendered(status: BackfillStatus) -> str:
    console = recorder()
    console.print(progress_view(status))
    return console.export_text()


def test_a_running_backfill_shows_bar_rate_eta_batches_and_queue():
    text = rendered(RUNNING)

    assert "74.7%" in text
    assert "735,000 / 984,000 bookings" in text
    assert "12,450 bookings/s" in text
    assert re.search(r"ETA\s+0:00:20", text)
    assert "380 done, 120 queued" in text
    assert "110 waiting, 8 in flight, 2 delayed" in text
    assert "running" in text
    bar = text.splitlines()[0]
    assert "━" in bar and bar.index("━") < bar.index("74.7%")


def test_a_finished_backfill_shows_a_full_bar_and_done():
    text = rendered(DONE)

    assert "100.0%" in text and "984,000 / 984,000 bookings" in text
    assert re.search(r"rate\s+-\s+ETA\s+-", text)
    assert "done, as of" in text


def test_watch_redraws_until_nothing_is_queued_or_in_flight():
    frames = iter([RUNNING, replace(RUNNING, bookings_linked=900_000), DONE, RUNNING])
    console = recorder()
    naps: list[float] = []

    last = watch(lambda: next(frames), console, interval_s=2.0, sleep=naps.append)

    assert last is DONE
    assert naps == [2.0, 2.0]
    assert "100.0%" in console.export_text()


def test_ctrl_c_stops_watching_quietly():
    console = recorder()

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    assert watch(lambda: RUNNING, console, sleep=interrupted) is RUNNING


def test_a_paused_backfill_says_so():
    assert "paused (flag backfill off), as of" in rendered(replace(RUNNING, paused=True))


def test_watch_prints_a_plain_line_per_reading_when_not_on_a_terminal():
    frames = iter([RUNNING, DONE])
    console = Console(file=io.StringIO(), force_terminal=False, width=80)

    watch(lambda: next(frames), console, sleep=lambda _: None)

    lines = console.file.getvalue().splitlines()
    assert lines == [
        "2026-11-24T16:00:00+00:00 74.7% 735,000 / 984,000 bookings, 12,450 bookings/s, "
        "ETA 0:00:20, 380 batches done, 120 queued, running",
        "2026-11-24T16:00:00+00:00 100.0% 984,000 / 984,000 bookings, rate -, ETA -, "
        "500 batches done, 0 queued, done",
    ]
