"""A customer's renewal reminders, for the admin detail page: those sent or due to them,
and those about their certificates sent to whoever booked them (``renewals.reminders``
writes them; this reads the table, so users need no import of that domain)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from rft_common.db.postgres import Connection

REMINDERS_SHOWN = 20
REMINDER_HISTORY = f"""
    SELECT r.id, r.queued_at, r.stage, r.recipient_id, r.skipped_reason,
           cert.certificate_number, cert.course_type, cert.expires_on,
           o.status AS email_status, r.booking_id_after
    FROM renewal_reminders AS r
    JOIN certificates AS cert ON cert.id = r.certificate_id
    LEFT JOIN email_outbox AS o ON o.id = r.outbox_id
    WHERE r.id IN (
        SELECT id FROM renewal_reminders WHERE recipient_id = :user_id
        UNION
        SELECT about.id FROM certificates AS held
        JOIN renewal_reminders AS about ON about.certificate_id = held.id
        WHERE held.user_id = :user_id)
    ORDER BY r.queued_at DESC, r.id DESC
    LIMIT {REMINDERS_SHOWN}
"""


class ReminderEntry(BaseModel):
    """One reminder decision: a certificate at one stage, for one recipient."""

    id: int
    queued_at: datetime = Field(description="When the daily run decided it")
    stage: int = Field(description="Days before the certificate's expiry; negative after it")
    recipient_id: int = Field(description="This customer, or whoever booked them")
    skipped_reason: str | None = Field(description="Why it was not sent; null if it was queued")
    email_status: str | None = Field(description="The message's outbox status (pending, sent...)")
    certificate_number: str
    course_type: str
    expires_on: date
    booking_id_after: int | None = Field(description="The renewal booked after it, if any")


def reminder_history(connection: Connection, user_id: int) -> list[ReminderEntry]:
    rows = connection.execute(REMINDER_HISTORY, {"user_id": user_id}).all()
    return [ReminderEntry(**row._asdict()) for row in rows]
