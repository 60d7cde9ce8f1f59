"""Renewal reminders: the daily run that tells people their certificate runs out (issue 26).

**When.** A certificate (not revoked) is at a stage of ``Settings.reminder_stages``
(days before its expiry, negative after it; 90, 30, 7 and -1 by default) from that
day until the next stage's day; the last stage lasts ``LAST_STAGE_DAYS``. So a run
that was off for a while (or is switched on for the first time) sends each
certificate its current stage only, never a string of stale ones.

**Who.** The certificate's holder (if they have an account), and whoever booked them
(if someone else): a booker gets ONE message per stage listing every person of theirs
due in the run. Each (certificate, stage, recipient) is judged once; the first reason
that applies skips it (``core.vocabulary.REMINDER_SKIP_REASONS``): the holder has been
booked again as an attendee onto a later session of the same course type
(``rebooked``), the recipient or holder is erased (``erased``), the recipient was merged
away (``merged``), their address is on ``email_suppressions`` (``suppressed``), their
current ``renewal_reminders`` consent is an objection (``objected``) or gives no basis
under ``Settings.reminder_policy`` (``no_lawful_basis``).

**Once.** The decision is a ``renewal_reminders`` row, unique on (certificate, stage,
recipient): ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` decides, in the same
statement, which messages go to the outbox, so a rerun or a concurrent run (which waits
for the first's commit on the unique index, then inserts nothing) sends nothing twice.
A run lists everyone with something due (one read), then works in batches of
``Settings.reminder_batch_size`` of them, one transaction each, each batch's statement
reaching its people's certificates through indexes: a booker's people are always in
their batch.

**What.** Each message names whose certificates, which course, the expiry date, and
links to the booking site's course page (``Settings.renewal_course_url``) tagged with
the reminder's id (``reminder=<id>``, with UTM tags) for attribution; it carries the
recipient's signed unsubscribe link (``consent.tokens``), which the email layer turns
into RFC 8058 ``List-Unsubscribe`` headers and a visible link. A later booking of the
same course type by the holder is attributed to their reminders (``booking_id_after``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rft_common.consent.tokens import unsubscribe_url
from rft_common.core.settings import get_settings
from rft_common.core.vocabulary import (
    BUSINESS_TIME_ZONE,
    EXPLICIT_CONSENT,
    RENEWAL_REMINDERS,
    SOFT_OPT_IN,
)
from rft_common.db.postgres import Connection, run_transaction

KIND = "renewal_reminder"
LAST_STAGE_DAYS = 30
"""How long the last stage stays due: a run switched on late reminds those whose
certificate ran out within this, not everyone whose ever did."""
POLICIES = {
    "consent_only": (EXPLICIT_CONSENT,),
    "soft_opt_in": (EXPLICIT_CONSENT, SOFT_OPT_IN),
}
"""``Settings.reminder_policy``: the current consent bases that allow a reminder."""
ATTRIBUTION_DAYS = 180
"""A booking made this long after a reminder still counts as renewed after it."""
SENT = "sent"
TRACKING = "utm_source=reminder&utm_medium=email&utm_campaign=renewal&reminder="

OPEN_CANDIDATES = """
    WITH parameters AS (
        SELECT coalesce(CAST(:today AS date),
                        (now() AT TIME ZONE CAST(:time_zone AS text))::date) AS today
    ), stages AS (
        SELECT stage, coalesce(lead(stage) OVER (ORDER BY stage DESC),
                               stage - CAST(:last_stage_days AS integer)) AS next_stage
        FROM unnest(CAST(:stages AS integer[])) AS given (stage)
    ), due AS (
        SELECT cert.id AS certificate_id, st.stage, cert.user_id AS holder_id,
               b.user_id AS booker_id
        FROM parameters AS p
        CROSS JOIN stages AS st
        JOIN certificates AS cert
          ON cert.status <> 'revoked'
         AND cert.expires_on > p.today + st.next_stage
         AND cert.expires_on <= p.today + st.stage
        JOIN bookings AS b ON b.id = cert.booking_id
    ), candidates AS (
        SELECT certificate_id, stage, holder_id AS recipient_id FROM due
        WHERE holder_id IS NOT NULL
        UNION ALL
        SELECT certificate_id, stage, booker_id FROM due
        WHERE booker_id IS NOT NULL AND booker_id IS DISTINCT FROM holder_id
    )
    SELECT c.recipient_id, c.certificate_id, c.stage FROM candidates AS c
    WHERE NOT EXISTS (
        SELECT FROM renewal_reminders AS r
        WHERE r.certificate_id = c.certificate_id AND r.stage = c.stage
          AND r.recipient_id = c.recipient_id)
    ORDER BY c.recipient_id, c.certificate_id
"""
"""Every (certificate, stage, recipient) due and not decided yet, in one read: each
certificate (not revoked) at its current stage, for its holder and for its booker. The
run's batches are slices of this list, by recipient."""

JUDGED = """
    WITH batch AS (
        SELECT * FROM unnest(CAST(:batch_recipients AS integer[]),
                             CAST(:batch_certificates AS bigint[]),
                             CAST(:batch_stages AS integer[]))
                      AS given (recipient_id, certificate_id, stage)
    ), due AS (
        SELECT batch.*, cert.user_id AS holder_id, cert.expires_on, cert.course_type,
               cert.certificate_number, s.start_datetime AS taken_at, c.name AS course_name,
               nullif(btrim(concat_ws(' ', a.first_name, a.last_name)), '') AS attendee_name
        FROM batch
        JOIN certificates AS cert ON cert.id = batch.certificate_id
        JOIN booking_attendees AS a ON a.id = cert.attendee_id
        JOIN bookings AS b ON b.id = cert.booking_id
        JOIN course_schedules AS s ON s.id = b.course_schedule_id
        JOIN courses AS c ON c.id = s.course_id
    ), consent AS (
        SELECT user_id, basis FROM current_consents
        WHERE user_id = ANY(:batch_recipients) AND purpose = :purpose
    ), judged AS (
        SELECT c.*, u.name AS recipient_name, u.email AS recipient_email,
               coalesce(holder.name, c.attendee_name) AS holder_name,
               CASE
                   WHEN EXISTS (
                       SELECT FROM booking_attendees AS again
                       JOIN bookings AS later ON later.id = again.booking_id
                       JOIN course_schedules AS ls ON ls.id = later.course_schedule_id
                       JOIN courses AS lc ON lc.id = ls.course_id
                       WHERE again.user_id = c.holder_id
                         AND ls.start_datetime > c.taken_at
                         AND later.status IN ('pending', 'confirmed', 'completed')
                         AND lc.course_type = c.course_type) THEN 'rebooked'
                   WHEN u.erased_at IS NOT NULL OR holder.erased_at IS NOT NULL THEN 'erased'
                   WHEN u.merged_into IS NOT NULL THEN 'merged'
                   WHEN EXISTS (
                       SELECT FROM email_suppressions AS sup
                       WHERE sup.email_normalized = u.email_normalized) THEN 'suppressed'
                   WHEN consent.basis = 'objection' THEN 'objected'
                   WHEN consent.basis IS NULL OR consent.basis <> ALL(:lawful_bases)
                       THEN 'no_lawful_basis'
               END AS skipped_reason
        FROM due AS c
        JOIN users AS u ON u.id = c.recipient_id
        LEFT JOIN users AS holder ON holder.id = c.holder_id
        LEFT JOIN consent ON consent.user_id = u.id
    )
"""
"""A batch of open (recipient, certificate, stage), judged now. Everything is reached by
primary key from the batch's arrays; the consent is read from ``current_consents`` for
the batch's people only (a constant filter on the view's ``DISTINCT ON`` key reaches
its index; a join would read the whole view)."""

RECORD = f"""
    {JUDGED}, messages AS (
        SELECT recipient_id, stage,
               nextval(pg_get_serial_sequence('email_outbox', 'id')) AS outbox_id
        FROM (SELECT DISTINCT recipient_id, stage FROM judged
              WHERE skipped_reason IS NULL) AS sending
    ), recorded AS (
        INSERT INTO renewal_reminders
            (certificate_id, stage, recipient_id, outbox_id, skipped_reason)
        SELECT j.certificate_id, j.stage, j.recipient_id, m.outbox_id, j.skipped_reason
        FROM judged AS j
        LEFT JOIN messages AS m
          ON j.skipped_reason IS NULL AND m.recipient_id = j.recipient_id AND m.stage = j.stage
        ORDER BY j.certificate_id, j.stage, j.recipient_id
        ON CONFLICT DO NOTHING
        RETURNING id, certificate_id, stage, recipient_id, outbox_id, skipped_reason
    ), queued AS (
        INSERT INTO email_outbox (id, kind, dedupe_key, recipient, payload)
        SELECT r.outbox_id, '{KIND}', '{KIND}:' || r.outbox_id, j.recipient_email,
               jsonb_build_object(
                   'name', j.recipient_name, 'stage', r.stage, 'people', jsonb_agg(
                       jsonb_build_object(
                           'name', j.holder_name, 'own', j.holder_id = r.recipient_id,
                           'course', j.course_name, 'course_type', j.course_type,
                           'expires_on', j.expires_on,
                           'certificate_number', j.certificate_number,
                           'link', replace(replace(:course_url, '{{course_type}}', j.course_type),
                                           '{{course_slug}}',
                                           lower(replace(j.course_type, '_', '-')))
                               || CASE WHEN position('?' IN :course_url) > 0 THEN '&' ELSE '?'
                                  END || '{TRACKING}' || r.id)
                       ORDER BY j.holder_id = r.recipient_id DESC, j.expires_on, j.holder_name,
                                j.certificate_id))
        FROM recorded AS r
        JOIN judged AS j USING (certificate_id, stage, recipient_id)
        WHERE r.outbox_id IS NOT NULL
        GROUP BY r.outbox_id, r.recipient_id, r.stage, j.recipient_email, j.recipient_name
        RETURNING id, CAST(payload ->> 'stage' AS integer) AS stage
    )
    SELECT (SELECT coalesce(jsonb_agg(jsonb_build_array(m.outbox_id, m.recipient_id)), '[]')
            FROM messages AS m WHERE m.outbox_id IN (SELECT id FROM queued)) AS messages,
           (SELECT coalesce(jsonb_agg(jsonb_build_array(stage, outcome, count)), '[]')
            FROM (SELECT stage, coalesce(skipped_reason, '{SENT}') AS outcome, count(*)
                  FROM recorded GROUP BY 1, 2) AS counted) AS counts
"""
"""Record the batch's decisions and queue its messages, in one statement."""

PREVIEW = f"""
    {JUDGED}
    SELECT recipient_id, stage, coalesce(skipped_reason, '{SENT}') AS outcome,
           array_agg(certificate_number ORDER BY certificate_number) AS certificates
    FROM judged
    GROUP BY recipient_id, stage, skipped_reason
    ORDER BY recipient_id, stage DESC, outcome
"""
"""What a batch would record, per recipient, stage and outcome (``--dry-run``)."""

ADD_UNSUBSCRIBE_LINKS = """
    UPDATE email_outbox AS o
    SET payload = o.payload || jsonb_build_object('unsubscribe_url', given.url)
    FROM unnest(CAST(:ids AS bigint[]), CAST(:urls AS text[])) AS given (id, url)
    WHERE o.id = given.id
"""

ATTRIBUTE_RENEWALS = f"""
    WITH attributed AS (
        SELECT r.id, r.certificate_id, later.booking_id
        FROM renewal_reminders AS r
        JOIN certificates AS cert ON cert.id = r.certificate_id
        CROSS JOIN LATERAL (
            SELECT b.id AS booking_id
            FROM booking_attendees AS a
            JOIN bookings AS b ON b.id = a.booking_id
            JOIN course_schedules AS s ON s.id = b.course_schedule_id
            JOIN courses AS c ON c.id = s.course_id
            WHERE a.user_id = cert.user_id AND c.course_type = cert.course_type
              AND b.created_at > r.queued_at
              AND b.status IN ('pending', 'confirmed', 'completed')
            ORDER BY b.created_at, b.id
            LIMIT 1
        ) AS later
        WHERE r.outbox_id IS NOT NULL AND r.booking_id_after IS NULL
          AND r.queued_at > now() - make_interval(days => {ATTRIBUTION_DAYS})
    ), updated AS (
        UPDATE renewal_reminders AS r SET booking_id_after = attributed.booking_id
        FROM attributed WHERE r.id = attributed.id
        RETURNING r.certificate_id
    )
    SELECT count(DISTINCT certificate_id) FROM updated
"""
"""Attribute to each reminder sent the holder's first booking of the course type since
(the renewal it led to, or at least followed); how many certificates were renewed."""


@dataclass
class ReminderReport:
    """A run's outcome: per stage, reminders queued (``sent``) or skipped by reason."""

    dry_run: bool = False
    messages: int = 0
    renewals_booked: int = 0
    by_stage: dict[int, Counter[str]] = field(default_factory=dict)
    recipients: list[dict[str, Any]] = field(default_factory=list)
    """Dry run only: who would get what (user ids and certificate numbers, no addresses)."""

    def count(self, stage: int, outcome: str, how_many: int) -> None:
        self.by_stage.setdefault(stage, Counter())[outcome] += how_many

    def total(self, outcome: str) -> int:
        return sum(outcomes[outcome] for outcomes in self.by_stage.values())

    def skipped(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for outcomes in self.by_stage.values():
            total.update({o: n for o, n in outcomes.items() if o != SENT})
        return total

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "dry_run": self.dry_run,
            "messages": self.messages,
            "sent": self.total(SENT),
            "skipped": dict(sorted(self.skipped().items())),
            "renewals_booked": self.renewals_booked,
            "by_stage": {
                str(stage): dict(sorted(self.by_stage[stage].items()))
                for stage in sorted(self.by_stage, reverse=True)
            },
        }
        if self.dry_run:
            summary["recipients"] = self.recipients
        return summary


def _parameters(today: date | None) -> dict[str, Any]:
    settings = get_settings()
    if settings.reminder_policy not in POLICIES:
        raise ValueError(
            f"REMINDER_POLICY must be one of {', '.join(POLICIES)}, not "
            f"{settings.reminder_policy!r}"
        )
    return {
        "today": today,
        "time_zone": BUSINESS_TIME_ZONE,
        "stages": sorted(set(settings.reminder_stages), reverse=True),
        "last_stage_days": LAST_STAGE_DAYS,
        "lawful_bases": list(POLICIES[settings.reminder_policy]),
        "purpose": RENEWAL_REMINDERS,
        "course_url": settings.renewal_course_url,
    }


@dataclass(frozen=True)
class Batch:
    """One batch's outcome: the messages queued and (stage, outcome, reminders) counts;
    for a dry run, who would get what."""

    messages: int
    counts: list[tuple[int, str, int]]
    recipients: list[dict[str, Any]] = field(default_factory=list)


def record_batch(connection: Connection, parameters: dict[str, Any]) -> Batch:
    """Record and queue the batch given in ``parameters`` (``batch_*`` arrays)."""
    row = connection.execute(RECORD, parameters).one()
    messages = _json(row.messages)
    if messages:
        connection.execute(
            ADD_UNSUBSCRIBE_LINKS,
            {
                "ids": [outbox_id for outbox_id, _ in messages],
                "urls": [unsubscribe_url(user_id, RENEWAL_REMINDERS) for _, user_id in messages],
            },
        )
    counts = [(stage, outcome, how_many) for stage, outcome, how_many in _json(row.counts)]
    return Batch(len(messages), counts)


def preview_batch(connection: Connection, parameters: dict[str, Any]) -> Batch:
    """What ``record_batch`` would do, recording nothing."""
    rows = connection.execute(PREVIEW, parameters).all()
    return Batch(
        messages=sum(1 for row in rows if row.outcome == SENT),
        counts=[(row.stage, row.outcome, len(row.certificates)) for row in rows],
        recipients=[
            {
                "recipient_id": row.recipient_id,
                "stage": row.stage,
                "outcome": row.outcome,
                "certificates": list(row.certificates),
            }
            for row in rows
        ],
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _batches(candidates: list[Any], recipients_per_batch: int) -> Iterator[list[Any]]:
    """Slices of ``candidates`` (sorted by recipient) of at most ``recipients_per_batch``
    recipients each, each recipient's rows whole."""
    batch: list[Any] = []
    recipients = 0
    for row in candidates:
        if not batch or row.recipient_id != batch[-1].recipient_id:
            if recipients == recipients_per_batch:
                yield batch
                batch, recipients = [], 0
            recipients += 1
        batch.append(row)
    if batch:
        yield batch


def run_reminders(*, dry_run: bool = False, today: date | None = None) -> ReminderReport:
    """The daily run: every batch in its own transaction, then the attribution of
    renewals booked since. A dry run records nothing and reads the same batches."""
    parameters = _parameters(today)
    report = ReminderReport(dry_run=dry_run)
    work = preview_batch if dry_run else record_batch
    candidates = run_transaction(
        lambda connection: connection.execute(OPEN_CANDIDATES, parameters).all()
    )
    for batch_rows in _batches(candidates, get_settings().reminder_batch_size):
        batch_parameters = parameters | {
            "batch_recipients": [row.recipient_id for row in batch_rows],
            "batch_certificates": [row.certificate_id for row in batch_rows],
            "batch_stages": [row.stage for row in batch_rows],
        }
        batch = run_transaction(
            lambda connection, batch_parameters=batch_parameters: work(connection, batch_parameters)
        )
        report.messages += batch.messages
        report.recipients += batch.recipients
        for stage, outcome, how_many in batch.counts:
            report.count(stage, outcome, how_many)
    if not dry_run:
        report.renewals_booked = run_transaction(
            lambda connection: connection.execute(ATTRIBUTE_RENEWALS).scalar_one()
        )
    return report
