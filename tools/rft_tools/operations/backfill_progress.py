"""``rft backfill status --watch``: a progress bar with rate and ETA, redrawn until the
backfill is done (no batch queued or in flight) or Ctrl-C. When the output is not a
terminal (CI, a piped log) it prints one plain line per reading instead.

The rate and ETA are ``read_status``'s (bookings linked over the last minute, from
``backfill_batches``), not estimated from the redraws, so they are right from the
first frame and whoever else runs workers or enqueues.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from rft_tools.operations.backfill import BackfillStatus

BAR_WIDTH = 50


def _eta(seconds: float | None) -> str:
    return str(timedelta(seconds=round(seconds))) if seconds is not None else "-"


def progress_view(status: BackfillStatus) -> RenderableType:
    """One frame: the bar over the linkable bookings, then rate, ETA, batches, queue."""
    unlinkable = sum(status.unlinkable.values())
    linkable = status.bookings_total - unlinkable
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=max(linkable, 1), completed=status.bookings_linked, width=BAR_WIDTH),
        Text(f"{status.progress_percent:.1f}%", style="bold"),
        Text(f"{status.bookings_linked:,} / {linkable:,} bookings"),
    )
    rate = f"{status.rate_per_second:,.0f} bookings/s" if status.rate_per_second else "-"
    details = Table.grid(padding=(0, 2))
    details.add_row("rate", rate, "ETA", _eta(status.eta_seconds))
    details.add_row(
        "batches",
        f"{status.batches_done:,} done, {status.batches_queued:,} queued",
        "unlinkable",
        f"{unlinkable:,}",
    )
    if status.queue is not None:
        queue = status.queue
        details.add_row(
            "queue",
            f"{queue.visible:,} waiting, {queue.in_flight:,} in flight, {queue.delayed:,} delayed",
            "dead-letter",
            f"{queue.dead_letter_visible}",
        )
    return Group(bar, details, Text(f"{status.state}, as of {status.as_of}", style="dim"))


def progress_line(status: BackfillStatus) -> str:
    """One reading as a line of plain text, for output that is not a terminal."""
    linkable = status.bookings_total - sum(status.unlinkable.values())
    rate = f"{status.rate_per_second:,.0f} bookings/s" if status.rate_per_second else "rate -"
    return (
        f"{status.as_of} {status.progress_percent:.1f}% {status.bookings_linked:,} / "
        f"{linkable:,} bookings, {rate}, ETA {_eta(status.eta_seconds)}, "
        f"{status.batches_done:,} batches done, {status.batches_queued:,} queued, {status.state}"
    )


def watch(
    read: Callable[[], BackfillStatus],
    console: Console,
    *,
    interval_s: float = 2.0,
    sleep: Callable[[float], Any] = time.sleep,
) -> BackfillStatus:
    """Redraw ``read()`` every ``interval_s`` until nothing is queued or in flight.

    Ctrl-C stops it quietly; the last frame stays on the screen.
    """
    from rich.live import Live

    status = read()
    if not console.is_terminal:
        return _print_lines(status, read, console, interval_s, sleep)
    with Live(progress_view(status), console=console, auto_refresh=False) as live:
        try:
            while status.running:
                sleep(interval_s)
                status = read()
                live.update(progress_view(status), refresh=True)
        except KeyboardInterrupt:
            pass
    return status


def _print_lines(
    status: BackfillStatus,
    read: Callable[[], BackfillStatus],
    console: Console,
    interval_s: float,
    sleep: Callable[[float], Any],
) -> BackfillStatus:
    try:
        console.out(progress_line(status), highlight=False)
        while status.running:
            sleep(interval_s)
            status = read()
            console.out(progress_line(status), highlight=False)
    except KeyboardInterrupt:
        pass
    return status
