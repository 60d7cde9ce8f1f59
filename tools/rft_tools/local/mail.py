"""Email on the local stack: moto's SES, and reading what it was sent.

``local_email_environment`` is a ``LocalResource`` (``rft_tools.local.aws``): it verifies
the template's sending identity in the stack's moto server and returns the sender
settings the template passes as parameters. The email sender then runs exactly as in
AWS (SES v2 ``SendEmail`` with a raw MIME message), and moto keeps every message.

``sent_mail(endpoint)`` reads them back from moto's own data API (``/moto-api/data.json``)
and parses each MIME message: what ``rft mail list`` prints and what the tests read.
"""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import asdict, dataclass
from email import message_from_string, policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

LINK = re.compile(r"""https?://[^\s"'<>]+""")


@dataclass(frozen=True)
class Mail:
    id: str
    to: list[str]
    sender: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    links: list[str]

    def as_json(self) -> dict[str, Any]:
        found = asdict(self)
        found["from"] = found.pop("sender")
        return found


def _parameter_default(template: dict[str, Any], name: str) -> str:
    return str(((template.get("Parameters") or {}).get(name) or {}).get("Default") or "")


def local_email_environment(template: dict[str, Any]) -> dict[str, str]:
    identity = _parameter_default(template, "EmailIdentity")
    if not identity:
        return {}
    import boto3

    boto3.client("sesv2").create_email_identity(EmailIdentity=identity)
    return {
        "EMAIL_FROM": _parameter_default(template, "EmailFromAddress"),
        "EMAIL_REPLY_TO": _parameter_default(template, "EmailReplyTo"),
        "ADMIN_RESET_URL": _parameter_default(template, "AdminResetUrl"),
    }


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    return body.get_content() if body is not None else ""


def _unfolded(value: Any) -> str:
    """A header's value on one line, as a mail client shows it."""
    return " ".join(str(value).split())


def parse(message_id: str, raw: str) -> Mail:
    message = message_from_string(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = _part(message, "plain"), _part(message, "html")
    links = list(dict.fromkeys(LINK.findall(text) + LINK.findall(html)))
    return Mail(
        id=message_id,
        to=[address for _, address in getaddresses(message.get_all("To", []))],
        sender=_unfolded(message.get("From", "")),
        subject=_unfolded(message.get("Subject", "")),
        text=text,
        html=html,
        headers={name: _unfolded(value) for name, value in message.items()},
        links=[link.replace("&amp;", "&") for link in links],
    )


def sent_mail(endpoint: str, *, to: str | None = None) -> list[Mail]:
    """Every message the local SES at ``endpoint`` was sent, newest first."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as response:  # noqa: S310 - the local moto server
        data = json.load(response)
    raw_messages = (data.get("ses") or {}).get("RawMessage") or []
    found = [parse(item["id"], item["raw_data"]) for item in reversed(raw_messages)]
    if to is not None:
        wanted = to.strip().lower()
        found = [mail for mail in found if wanted in (address.lower() for address in mail.to)]
    return found
