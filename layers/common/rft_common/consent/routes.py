"""``/api/unsubscribe/{token}``: the unsubscribe link every marketing email carries.

Public: the signed token (``consent.tokens``) is the authority, no sign-in.

- ``POST`` unsubscribes at once (RFC 8058 one-click: a mail client posts
  ``List-Unsubscribe=One-Click``, form-encoded or multipart; the body is not needed and
  not read). The answer is a small HTML confirmation for a browser (``Accept: text/html``,
  the page's own button) and JSON for anything else. Using a link again changes nothing.
- ``GET`` shows a page with one button that posts the same URL. Opening the link never
  unsubscribes by itself: mail scanners open links.

An unknown or altered token is 404 with nothing about anyone (a page for a browser,
the shared error shape otherwise). Pages carry no script,
nothing from the token and no personal data; they are not cached, indexed or referred.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, cast

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel

from rft_common.consent.service import unsubscribe
from rft_common.consent.tokens import UNKNOWN_LINK, verify_unsubscribe_token
from rft_common.core.errors import NotFound
from rft_common.core.observability import logger, metrics
from rft_common.core.settings import get_settings
from rft_common.core.vocabulary import MARKETING_EMAIL, RENEWAL_REMINDERS
from rft_common.http.api import ERROR_RESPONSES, ErrorResponse, domain_error_response

router = Router()

HTML = "text/html; charset=utf-8"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}
"""The token is in the URL: no page may send it on, frame it, or be indexed."""
WHAT = {
    MARKETING_EMAIL: "emails about our courses and offers",
    RENEWAL_REMINDERS: "reminders to renew your first aid certificate",
}
TOKEN = Annotated[
    str, Path(description="The signed token of the link (person and purpose)", max_length=400)
]


class Unsubscribed(BaseModel):
    unsubscribed: bool
    purpose: str


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} | React Fast Training</title>
<style>
body {{ font-family: system-ui, sans-serif; line-height: 1.5; color: #1a1a1a;
       background: #f5f7fa; margin: 0; }}
main {{ max-width: 36rem; margin: 3rem auto; padding: 2rem; background: #fff;
       border-radius: 8px; }}
h1 {{ font-size: 1.5rem; margin-top: 0; }}
button {{ font: inherit; font-size: 1.125rem; padding: 0.75rem 1.5rem; border: 0;
          border-radius: 6px; background: #0b5fff; color: #fff; cursor: pointer; }}
button:focus {{ outline: 3px solid #ffbf47; outline-offset: 2px; }}
</style>
</head>
<body>
<main>
<h1>{escape(title)}</h1>
{body}
</main>
</body>
</html>
"""


def _contact() -> str:
    settings = get_settings()
    return (
        f"<p>Questions? Call {escape(settings.company_phone)} or email "
        f"{escape(settings.company_email)}.</p>"
    )


def confirm_page(purpose: str) -> str:
    return _page(
        "Unsubscribe",
        f"<p>Stop sending me {escape(WHAT[purpose])}?</p>\n"
        '<form method="post">\n'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">\n'
        '<button type="submit">Unsubscribe</button>\n'
        "</form>\n" + _contact(),
    )


def done_page(purpose: str) -> str:
    return _page(
        "You are unsubscribed",
        f'<p role="status">We will not send you {escape(WHAT[purpose])} again. '
        "You can close this page.</p>\n"
        "<p>Booking confirmations and messages about courses you have booked still come "
        "to you.</p>\n" + _contact(),
    )


def unknown_page() -> str:
    return _page(
        "Link not recognised",
        f"<p>{escape(UNKNOWN_LINK)} Please use the link in the latest email from us, or "
        "contact us and we will unsubscribe you.</p>\n" + _contact(),
    )


def _html(status: int, page: str) -> Response[str]:
    return Response(status_code=status, content_type=HTML, body=page, headers=PAGE_HEADERS)


def _wants_html() -> bool:
    request = cast(APIGatewayProxyEvent, router.current_event)
    return "text/html" in (request.headers.get("accept") or request.headers.get("Accept") or "")


def _not_a_link(unknown: NotFound) -> Response[str]:
    """404: a page for a browser, the shared error shape for anything else."""
    return _html(404, unknown_page()) if _wants_html() else domain_error_response(unknown)


HTML_PAGE = {"text/html": {"schema": {"type": "string"}}}
NOT_A_LINK = {
    "description": "Not a link this service made (a page for `Accept: text/html`)",
    "content": {"application/json": {"model": ErrorResponse}, **HTML_PAGE},
}


@router.get(
    "/api/unsubscribe/<token>",
    summary="The unsubscribe page of an email's link",
    description="A small HTML page (no script) with one button that posts the same URL. "
    "Opening it unsubscribes nobody.",
    tags=["unsubscribe"],
    responses={
        200: {"description": "The page", "content": HTML_PAGE},
        404: NOT_A_LINK,
        **{status: ERROR_RESPONSES[status] for status in (422, 500, 503)},
    },
)
def unsubscribe_page(token: TOKEN) -> Response[str]:
    try:
        _, purpose = verify_unsubscribe_token(token)
    except NotFound as unknown:
        return _not_a_link(unknown)
    return _html(200, confirm_page(purpose))


@router.post(
    "/api/unsubscribe/<token>",
    summary="Unsubscribe (RFC 8058 one-click)",
    description="Records an objection for the link's person and purpose at once; "
    "using it again changes nothing. Mail clients post `List-Unsubscribe=One-Click` "
    "(`application/x-www-form-urlencoded` or `multipart/form-data`); any body is "
    "accepted and none is read. `Accept: text/html` gets a confirmation page, anything "
    "else JSON.",
    tags=["unsubscribe"],
    responses={
        200: {
            "description": "Unsubscribed (now or before)",
            "content": {"application/json": {"model": Unsubscribed}, **HTML_PAGE},
        },
        404: NOT_A_LINK,
        **{status: ERROR_RESPONSES[status] for status in (422, 500, 503)},
    },
)
def post_unsubscribe(token: TOKEN) -> Response[str]:
    try:
        user_id, purpose = verify_unsubscribe_token(token)
    except NotFound as unknown:
        return _not_a_link(unknown)
    recorded = unsubscribe(user_id, purpose)
    logger.info("unsubscribed", extra={"customer_id": user_id, "purpose": purpose, "new": recorded})
    if recorded:
        metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
    if _wants_html():
        return _html(200, done_page(purpose))
    return Response(
        status_code=200,
        content_type="application/json",
        body=Unsubscribed(unsubscribed=True, purpose=purpose).model_dump_json(),
    )
