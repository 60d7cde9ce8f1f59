"""Every email's words: one HTML and one plain-text Jinja2 template per kind (``templates/``).

HTML is autoescaped (a customer called ``<script>`` is printed as text); the plain text is
not HTML, so it is not escaped. The subject is built here and flattened to one line, and
every header value goes through ``one_line``: a name with a line break cannot add a header.
Dates and times are the company's (Europe/London), amounts are pounds (``£150.00``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rft_common.core.settings import get_settings

LONDON = ZoneInfo("Europe/London")
TEMPLATES = Path(__file__).parent / "templates"
WHAT_TO_BRING = (
    "Photo ID for registration",
    "A pen and notepad",
    "Comfortable clothing (there are practical exercises on the floor)",
    "Any medication you may need during the day",
)
UNPLACED_REASONS = {
    "session_full": "was fully booked",
    "already_booked": "already held a booking for this email",
    "session_cancelled": "was cancelled",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    headers: tuple[tuple[str, str], ...] = ()
    """Extra headers, e.g. RFC 8058 one-click unsubscribe for a message with a link."""


@cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def one_line(value: str) -> str:
    """``value`` with every run of whitespace (line breaks included) as one space."""
    return re.sub(r"\s+", " ", value).strip()


def uk_date(moment: datetime) -> str:
    """``Tuesday 12 January 2027`` in London."""
    local = moment.astimezone(LONDON)
    return f"{local:%A} {local.day} {local:%B %Y}"


def uk_time(moment: datetime) -> str:
    """``9:30am`` in London."""
    local = moment.astimezone(LONDON)
    hour = local.hour % 12 or 12
    return f"{hour}:{local:%M}{'am' if local.hour < 12 else 'pm'}"


def uk_day(day: date) -> str:
    """``Thursday 18 March 2027``: a calendar date (already the company's)."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def pounds(amount: Decimal | str | float) -> str:
    return f"£{Decimal(str(amount)):,.2f}"


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _booking_facts(payload: dict[str, Any]) -> dict[str, Any]:
    starts, ends = _moment(payload["starts_at"]), _moment(payload["ends_at"])
    return {
        "reference": payload["reference"],
        "name": payload["name"],
        "course": payload["course"],
        "date": uk_date(starts),
        "time": f"{uk_time(starts)} to {uk_time(ends)}",
        "venue": payload.get("venue") or "To be confirmed",
        "venue_address": payload.get("venue_address") or "",
        "places": payload["places"],
        "amount": pounds(payload["amount"]),
    }


def _booking_confirmation(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    facts = _booking_facts(payload) | {"what_to_bring": WHAT_TO_BRING}
    return f"Booking confirmed: {facts['course']}, {facts['date']} ({facts['reference']})", facts


def _booking_unplaced(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    facts = _booking_facts(payload)
    facts["reason"] = UNPLACED_REASONS.get(payload.get("reason") or "", "had no place left")
    return f"We have your payment for {facts['course']} ({facts['reference']})", facts


def _staff_password_reset(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    expires = _moment(payload["expires_at"])
    facts = {
        "name": payload["name"],
        "link": payload["link"],
        "minutes": payload["minutes"],
        "expires": f"{uk_time(expires)} on {uk_date(expires)}",
    }
    return "Reset your React Fast Training admin password", facts


def _staff_password_changed(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    changed = _moment(payload["changed_at"])
    how = "with a reset link" if payload.get("by_reset") else "while signed in"
    facts = {
        "name": payload["name"],
        "changed": f"{uk_date(changed)} at {uk_time(changed)}",
        "how": how,
    }
    return "Your React Fast Training admin password was changed", facts


def _renewal_reminder(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    expired = payload["stage"] <= 0
    people = [
        {
            "whose": "Your" if person["own"] else f"{person['name'] or 'Your delegate'}'s",
            "course": person["course"],
            "certificate_number": person["certificate_number"],
            "runs_out": "expired" if expired else "expires",
            "expires": uk_day(date.fromisoformat(person["expires_on"])),
            "link": person["link"],
        }
        for person in payload["people"]
    ]
    if len(people) == 1:
        only = people[0]
        subject = f"{only['whose']} {only['course']} certificate {only['runs_out']} on "
        subject += only["expires"]
    else:
        subject = f"{len(people)} first aid certificates " + (
            "have expired" if expired else "expire soon"
        )
    booked_for_others = any(not person["own"] for person in payload["people"])
    facts = {
        "name": payload["name"] or "customer",
        "heading": "Time to renew: " + ("certificate expired" if expired else "certificate due"),
        "people": people,
        "intro": (
            "You booked the people below onto one of our courses. "
            if booked_for_others
            else "Thank you for training with us. "
        )
        + (
            "Their first aid certificates have now run out."
            if expired and booked_for_others
            else "Your first aid certificate has now run out."
            if expired
            else "Here is when the certificates run out."
            if booked_for_others
            else "Here is when your certificate runs out."
        ),
        "why": "A first aider whose certificate has run out no longer counts as a first "
        "aider at work until they requalify (HSE guidance L74): booking the renewal "
        "before the expiry date keeps the cover unbroken.",
    }
    return subject, facts


KINDS = {
    "booking_confirmation": _booking_confirmation,
    "booking_unplaced": _booking_unplaced,
    "staff_password_reset": _staff_password_reset,
    "staff_password_changed": _staff_password_changed,
    "renewal_reminder": _renewal_reminder,
}
"""Every kind of message the outbox holds, and what makes its subject and template facts."""


def render(kind: str, payload: dict[str, Any]) -> Rendered:
    subject, facts = KINDS[kind](payload)
    settings = get_settings()
    facts["company"] = {"phone": settings.company_phone, "email": settings.company_email}
    subject = one_line(subject)
    facts["subject"] = subject
    headers: tuple[tuple[str, str], ...] = ()
    if payload.get("unsubscribe_url"):
        facts["unsubscribe_url"] = payload["unsubscribe_url"]
        headers = (
            ("List-Unsubscribe", f"<{one_line(payload['unsubscribe_url'])}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        )
    environment = _environment()
    return Rendered(
        subject=subject,
        text=environment.get_template(f"{kind}.txt").render(facts),
        html=environment.get_template(f"{kind}.html").render(facts),
        headers=headers,
    )
