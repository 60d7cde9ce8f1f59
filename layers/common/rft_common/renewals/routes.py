"""GET /api/admin/renewals and its CSV export: whose certificate expires soon.

Admins only: the admin users function's gate (``admit``) runs before these routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from rft_common.db.paging import DEFAULT_PAGE_SIZE
from rft_common.http.api import ok_doc
from rft_common.http.csv_responses import csv_export_response, csv_responses, wants_json
from rft_common.http.params import Cursor, Limit
from rft_common.renewals.service import (
    DEFAULT_WITHIN_DAYS,
    MAX_WITHIN_DAYS,
    RenewalPage,
    export_renewals,
    list_renewals,
)
from rft_common.staff.gate import READ_ERRORS, SECURITY, acting_admin

router = Router()

TAGS = ["admin renewals"]
WithinDays = Annotated[
    int,
    Query(
        alias="withinDays",
        ge=0,
        le=MAX_WITHIN_DAYS,
        description="Certificates expiring from today to today + withinDays (UK dates)",
    ),
]
MayContact = Annotated[
    bool | None,
    Query(alias="mayContact", description="Only attendees who may (true) or may not be contacted"),
]
DESCRIPTION = (
    "Certificates (one per attendee of a completed session, valid for the course's "
    "validity, 3 years by default) expiring in the window, unless their holder has been "
    "booked as an attendee onto a later session of the same course type (pending, "
    "confirmed or completed), whoever booked it. Each row names the attendee and who "
    "booked them. `may_contact` is the attendee's marketing consent: only those may be "
    "sent a reminder."
)


@router.get(
    "/api/admin/renewals",
    summary="Customers whose certificate expires soon and who have not re-booked",
    description=DESCRIPTION + " Pages by `cursor`.",
    tags=TAGS,
    security=SECURITY,
    responses={**ok_doc("A page of renewals and the total", RenewalPage), **READ_ERRORS},
)
def get_renewals(
    within_days: WithinDays = DEFAULT_WITHIN_DAYS,
    may_contact: MayContact = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> RenewalPage:
    return list_renewals(
        within_days=within_days, may_contact=may_contact, limit=limit, cursor=cursor
    )


@router.get(
    "/api/admin/renewals/export",
    summary="The renewals list as CSV",
    description=DESCRIPTION + " The whole window, soonest expiry first, answered exactly "
    "as the users export answers: the CSV itself, or 303 to it in S3 when too big for a "
    "response, or a JSON link for `Accept: application/json`.",
    tags=TAGS,
    security=SECURITY,
    responses={**csv_responses("renewals-YYYY-MM-DD.csv"), **READ_ERRORS},
)
def get_renewals_export(
    within_days: WithinDays = DEFAULT_WITHIN_DAYS, may_contact: MayContact = None
) -> Response[Any]:
    as_link = wants_json(router.current_event.headers.get("accept"))
    exported = export_renewals(within_days=within_days, may_contact=may_contact, inline=not as_link)
    return csv_export_response(
        exported, as_link=as_link, what="renewals", admin_id=acting_admin(router).id
    )
