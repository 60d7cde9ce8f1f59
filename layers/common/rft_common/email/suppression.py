"""SES bounce and complaint notifications: the addresses never to send to again.

SES publishes the configuration set's events to EventBridge (``detail-type``
``Email Bounced`` / ``Email Complaint Received``; ``detail`` is SES's event record) or,
through SNS, as a JSON ``Message`` with ``notificationType``/``eventType``. A permanent
bounce or a complaint puts each named recipient on ``email_suppressions``; a transient
bounce (mailbox full) does not. The outbox checks the list before every send.
"""

from __future__ import annotations

import json
from typing import Any

from rft_common.core.emails import EMAIL_WHITESPACE, normalized_email_sql
from rft_common.db.postgres import Connection, run_transaction

SUPPRESS = f"""
    INSERT INTO email_suppressions (email_normalized, reason)
    SELECT DISTINCT {normalized_email_sql("email")}, :reason
    FROM unnest(CAST(:emails AS text[])) AS email
    ON CONFLICT (email_normalized) DO NOTHING
"""


def _ses_record(event: dict[str, Any]) -> dict[str, Any]:
    """SES's event record, from an EventBridge event or an SNS notification."""
    if isinstance(event.get("detail"), dict):
        return event["detail"]
    if isinstance(event.get("Message"), str):
        return json.loads(event["Message"])
    return event


def addresses_to_suppress(event: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(reason, addresses) an SES notification asks to suppress; (None, []) for others."""
    record = _ses_record(event)
    kind = record.get("eventType") or record.get("notificationType")
    if kind == "Bounce":
        bounce = record.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return None, []
        return "bounce", [r["emailAddress"] for r in bounce.get("bouncedRecipients") or []]
    if kind == "Complaint":
        complaint = record.get("complaint") or {}
        return "complaint", [r["emailAddress"] for r in complaint.get("complainedRecipients") or []]
    return None, []


def suppress(connection: Connection, reason: str, emails: list[str]) -> None:
    connection.execute(
        SUPPRESS, {"reason": reason, "emails": emails, "whitespace": EMAIL_WHITESPACE}
    )


def handle_notification(event: dict[str, Any]) -> int:
    """Suppress what the notification names; how many addresses it named."""
    reason, emails = addresses_to_suppress(event)
    if reason and emails:
        run_transaction(lambda connection: suppress(connection, reason, emails))
    return len(emails)
