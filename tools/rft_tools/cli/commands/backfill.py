"""``rft backfill enqueue | status | schema``: operate the backfill (docs/operations.md).

The queue is ``--queue-url``, else ``BACKFILL_QUEUE_URL``, else the running local
stack's (``.local/backfill.json``, which also points boto3 at its SQS endpoint).
The database is the local stack's, or ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from sqlalchemy import create_engine

from rft_tools.local.db import local_database

DEFAULT_BATCH_SIZE = 2000
MAX_BATCH_SIZE = 20_000


def register(subcommands: argparse._SubParsersAction) -> None:
    backfill = subcommands.add_parser(
        "backfill", help="link historical bookings to their customers through the queue"
    )
    verbs = backfill.add_subparsers(dest="verb", required=True)
    enqueue = verbs.add_parser(
        "enqueue",
        help="send the unlinked bookings not yet queued as batches (each customer in one batch)",
    )
    enqueue.add_argument(
        "--batch-size",
        type=_batch_size,
        default=DEFAULT_BATCH_SIZE,
        help=f"bookings per batch, about (default {DEFAULT_BATCH_SIZE}, at most {MAX_BATCH_SIZE})",
    )
    enqueue.add_argument("--dry-run", action="store_true", help="plan and print; send nothing")
    enqueue.add_argument(
        "--resend-queued",
        action="store_true",
        help="also send again the batches recorded as queued (after their messages were lost)",
    )
    enqueue.add_argument("--queue-url", help="the backfill queue (default: see above)")
    enqueue.set_defaults(handler=_enqueue)
    status = verbs.add_parser("status", help="progress, unlinkable bookings, queue depth, ETA")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--watch",
        action="store_true",
        help="redraw a progress bar with rate and ETA until done (Ctrl-C to stop)",
    )
    status.add_argument(
        "--check", action="store_true", help="exit 1 while linkable bookings remain unlinked"
    )
    status.add_argument("--queue-url", help="the backfill queue (default: see above)")
    status.set_defaults(handler=_status)
    verbs.add_parser(
        "schema", help="print the JSON Schema of a batch message (docs/backfill-message...)"
    ).set_defaults(handler=_schema)


def _batch_size(value: str) -> int:
    size = int(value)
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH_SIZE}")
    return size


def resolve_queue_url(given: str | None) -> str | None:
    """The queue to use; with the local stack's settings, also its SQS endpoint."""
    if given or os.environ.get("BACKFILL_QUEUE_URL"):
        return given or os.environ["BACKFILL_QUEUE_URL"]
    from rft_tools.local.aws import LOCAL_CREDENTIALS
    from rft_tools.local.sqs import local_backfill_settings

    local = local_backfill_settings()
    if not local:
        return None
    os.environ.setdefault("AWS_ENDPOINT_URL", local["AWS_ENDPOINT_URL"])
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    return local["BACKFILL_QUEUE_URL"]


def _sqs_unreachable(queue_url: str, error: Exception) -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    where = f" at {endpoint} (is `make run` still running?)" if endpoint else ""
    return f"cannot use the queue {queue_url}{where}: {type(error).__name__}: {error}"


def _enqueue(arguments: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from rft_tools.operations.backfill import enqueue

    queue_url = resolve_queue_url(arguments.queue_url)
    if queue_url is None and not arguments.dry_run:
        print(
            "no backfill queue: pass --queue-url, set BACKFILL_QUEUE_URL, or start `make run`",
            file=sys.stderr,
        )
        return 2
    with local_database() as url:
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                result = enqueue(
                    connection,
                    queue_url,
                    batch_size=arguments.batch_size,
                    dry_run=arguments.dry_run,
                    resend_queued=arguments.resend_queued,
                )
        except (BotoCoreError, ClientError) as error:
            print(_sqs_unreachable(str(queue_url), error), file=sys.stderr)
            return 1
        finally:
            engine.dispose()
    size = f"batch size {arguments.batch_size}"
    if result.dry_run:
        print(
            f"dry run: would enqueue {_count(result.batches, 'batch', 'batches')} "
            f"({_count(result.bookings, 'booking')}, {size})"
        )
        return 0
    if result.resent:
        print(f"sent again {_count(result.resent, 'batch', 'batches')} recorded as queued")
    if result.batches:
        print(
            f"enqueued {_count(result.batches, 'batch', 'batches')} "
            f"({_count(result.bookings, 'booking')}, {size}) to {queue_url}"
        )
    else:
        print("nothing new to enqueue: unlinked bookings are queued already or unlinkable")
    if result.failed:
        print(
            f"{result.failed} messages were refused by SQS and not recorded; run enqueue again",
            file=sys.stderr,
        )
        return 1
    return 0


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"


def _status(arguments: argparse.Namespace) -> int:
    from rft_common.aws.queues import sqs_client
    from rft_tools.operations.backfill import BackfillStatus, queue_depth, read_status

    queue_url = resolve_queue_url(arguments.queue_url)
    warned: set[str] = set()

    def read(connection: Any) -> BackfillStatus:
        status = read_status(connection)
        connection.rollback()
        status.paused = _paused_by_flag()
        if queue_url is not None:
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                status.queue = queue_depth(queue_url, sqs_client())
            except (BotoCoreError, ClientError) as error:
                if queue_url not in warned:
                    print(_sqs_unreachable(queue_url, error), file=sys.stderr)
                    warned.add(queue_url)
        return status

    with local_database() as url:
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                if arguments.watch:
                    from rich.console import Console

                    from rft_tools.operations.backfill_progress import watch

                    status = watch(lambda: read(connection), Console())
                else:
                    status = read(connection)
        finally:
            engine.dispose()
    if arguments.json:
        print(json.dumps(status.as_dict(), indent=2))
    elif not arguments.watch:
        print(_describe(status.as_dict()))
    return 1 if arguments.check and status.remaining_linkable > 0 else 0


def _describe(status: dict[str, Any]) -> str:
    unlinkable = sum(status["unlinkable"].values())
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in status["unlinkable"].items())
    lines = [
        f"bookings            {status['bookings_total']:>12,}",
        f"  linked            {status['bookings_linked']:>12,}  ({status['progress_percent']}%"
        " of linkable)",
        f"  unlinked          {status['bookings_unlinked']:>12,}",
        f"  unlinkable        {unlinkable:>12,}" + (f"  ({reasons})" if reasons else ""),
        f"  still to link     {status['remaining_linkable']:>12,}",
        f"customers created   {status['customers_created']:>12,}  (by the backfill)",
        f"batches             queued {status['batches_queued']:,}, done {status['batches_done']:,}",
    ]
    queue = status["queue"]
    if queue:
        lines.append(
            f"queue               visible {queue['visible']:,}, in flight {queue['in_flight']:,},"
            f" delayed {queue['delayed']:,}; dead-letter {queue['dead_letter_visible']}"
        )
    else:
        lines.append("queue               unknown (no queue URL)")
    if status["rate_per_second"]:
        eta = status["eta_seconds"]
        lines.append(
            f"rate                {status['rate_per_second']:,} bookings/s"
            + (f", ETA {eta:,.0f} s" if eta is not None else "")
        )
    lines.append(f"state               {status['state']}")
    return "\n".join(lines)


def _paused_by_flag() -> bool:
    """Whether the flag document these commands use (``RFT_FLAGS_FILE`` or the local
    stack's) has the ``backfill`` flag off; an unreadable one pauses nothing here."""
    from rft_common.aws.flags import BACKFILL
    from rft_tools.checks import flag_document

    try:
        document = flag_document.load(flag_document.flags_file())
        flag_document.validate(document)
    except flag_document.FlagDocumentError:
        return False
    return not document[BACKFILL]["default"]


def _schema(_: argparse.Namespace) -> None:
    from rft_common.backfill.service import message_json_schema

    print(json.dumps(message_json_schema(), indent=2))
