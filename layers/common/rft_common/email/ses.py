"""Sending one message through Amazon SES (v2 API, raw MIME) with boto3.

The message is built with the standard library (``multipart/alternative``: plain text,
then HTML), so what SES, or the emulated SES locally, receives is exactly what a mail
client reads, headers included. The client is made on first use (boto3 costs a cold
start 50-100 ms; the booking never imports this module). Locally and in tests
``AWS_ENDPOINT_URL`` points boto3 at moto's SES.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import cache
from typing import Any

from rft_common.core.settings import get_settings
from rft_common.email.templates import Rendered, one_line

PERMANENT_ERRORS = frozenset(
    {"MessageRejected", "BadRequestException", "MailFromDomainNotVerifiedException"}
)
"""SES answers that sending again will not change: the message goes straight to ``dead``."""


class SendFailed(Exception):
    def __init__(self, code: str, *, permanent: bool) -> None:
        super().__init__(code)
        self.code = code
        self.permanent = permanent


@cache
def _client() -> Any:
    import boto3

    return boto3.client("sesv2")


def build_message(recipient: str, rendered: Rendered, *, kind: str) -> EmailMessage:
    settings = get_settings()
    message = EmailMessage()
    message["From"] = one_line(settings.email_from)
    message["To"] = Address(addr_spec=one_line(recipient))
    if settings.email_reply_to:
        message["Reply-To"] = one_line(settings.email_reply_to)
    message["Subject"] = one_line(rendered.subject)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="reactfasttraining.co.uk")
    message["Auto-Submitted"] = "auto-generated"
    message["X-RFT-Kind"] = kind
    for name, value in rendered.headers:
        message[name] = one_line(value)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def send(recipient: str, rendered: Rendered, *, kind: str) -> str:
    """Send one message; SES's message id, or ``SendFailed``."""
    from botocore.exceptions import ClientError

    settings = get_settings()
    message = build_message(recipient, rendered, kind=kind)
    request: dict[str, Any] = {
        "FromEmailAddress": one_line(settings.email_from),
        "Destination": {"ToAddresses": [one_line(recipient)]},
        "Content": {"Raw": {"Data": message.as_bytes()}},
    }
    if settings.ses_configuration_set:
        request["ConfigurationSetName"] = settings.ses_configuration_set
    try:
        return _client().send_email(**request)["MessageId"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "ClientError")
        raise SendFailed(code, permanent=code in PERMANENT_ERRORS) from None
