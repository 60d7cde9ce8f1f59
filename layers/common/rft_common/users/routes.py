"""The admin users API under /api/admin/users: admins only.

Every request passes the admin gate (``rft_common.staff.gate``) before it is routed;
routes ask ``acting_admin`` who is acting. Logs name the admin by their user id
(never their email).

The shapes are the admin dashboard's (its Users pages are deployed and are this API's
only client): the list is ``{data, total, limit, offset, nextCursor}`` with camelCase
rows, the detail one flat snake_case object, and the export the CSV file itself.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BeforeValidator, Field

from rft_common.core.observability import logger
from rft_common.http.api import ErrorResponse, error_doc, ok_doc
from rft_common.http.csv_responses import csv_export_response, csv_responses, wants_json
from rft_common.http.params import NOT_FOUND, Cursor, Limit, UserId
from rft_common.staff.gate import ADMIN_ERRORS, READ_ERRORS, SECURITY, acting_admin
from rft_common.users.export import export_users
from rft_common.users.listing import (
    DEFAULT_PAGE_SIZE,
    CustomerType,
    Role,
    SortOrder,
    UserFilters,
    UserListQuery,
    UserPage,
    UserSort,
    list_users,
)
from rft_common.users.profiles import (
    BookingPage,
    UserDetail,
    UserUpdate,
    get_user_detail,
    list_user_bookings,
    update_user,
)

router = Router()

TAGS = ["admin users"]


class MergedAwayResponse(ErrorResponse):
    merged_into: int = Field(description="The survivor's id")


MERGED_AWAY = {
    301: {
        "description": "The user was merged into another: `Location` is the survivor's "
        "same resource (a browser's fetch follows it)",
        "headers": {"Location": {"schema": {"type": "string"}}},
        "content": {"application/json": {"model": MergedAwayResponse}},
    }
}


# --- parameters shared by the list and the export --------------------------------------

Search = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="Case-insensitive substring of name, email, phone or company "
        "(`%` and `_` match themselves; a phone number matches whatever its spacing)",
    ),
]
RoleFilter = Annotated[Role | None, Query(description="Only users with this role")]
CustomerTypeFilter = Annotated[CustomerType | None, Query(alias="customerType")]
HasBookingsFilter = Annotated[
    bool | None,
    Query(alias="hasBookings", description="Whether users have any booking not cancelled"),
]
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: Any) -> Any:
    """Only ``YYYY-MM-DD``: pydantic would also read ``0`` as a Unix time (1970-01-01)."""
    if isinstance(value, str) and not ISO_DAY.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]
CreatedFrom = Annotated[
    Day | None, Query(alias="createdFrom", description="Created on or after (UK date)")
]
CreatedTo = Annotated[Day | None, Query(alias="createdTo", description="Created on or before")]
LastBookingFrom = Annotated[
    Day | None,
    Query(alias="lastBookingFrom", description="Latest booking made on or after (UK date)"),
]
LastBookingTo = Annotated[
    Day | None, Query(alias="lastBookingTo", description="Latest booking made on or before")
]
Sort = Annotated[UserSort, Query(description="Ties are broken by id, in the same direction")]
Order = Annotated[SortOrder, Query()]


@router.get(
    "/api/admin/users",
    summary="Search, filter, sort and page users",
    description="Page with `cursor` (keyset: fast at any depth, no skips or repeats) "
    "or with `offset` (the dashboard's paging), not both. The rows are under `data` and "
    "`total` counts every match, because the dashboard's Users page reads exactly that "
    "(it crashes without `data`): its contract, over our earlier `items`.",
    tags=TAGS,
    security=SECURITY,
    responses={**ok_doc("A page of users and the total", UserPage), **READ_ERRORS},
)
def get_users(
    search: Search = None,
    role: RoleFilter = None,
    customer_type: CustomerTypeFilter = None,
    has_bookings: HasBookingsFilter = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    last_booking_from: LastBookingFrom = None,
    last_booking_to: LastBookingTo = None,
    sort: Sort = UserSort.CREATED_AT,
    order: Order = SortOrder.DESC,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    offset: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> UserPage:
    filters = UserFilters(
        search=search,
        role=role,
        customer_type=customer_type,
        has_bookings=has_bookings,
        created_from=created_from,
        created_to=created_to,
        last_booking_from=last_booking_from,
        last_booking_to=last_booking_to,
    )
    query = UserListQuery(
        filters, sort=sort, order=order, limit=limit, cursor=cursor, offset=offset
    )
    return list_users(query)


@router.get(
    "/api/admin/users/export",
    summary="Export the filtered users as CSV",
    description="Answers the CSV file itself, in the list's order with the list's filters "
    "and sort: the admin dashboard saves the response body as the file without looking "
    "at the status or the headers, so the file must be the body (the dashboard's "
    "contract, over our earlier choice of always answering a JSON link). A file too "
    "big for a Lambda response is written to S3 and answered with 303 to it, which the "
    "browser follows. `Accept: application/json` (without `text/csv`) always gets the "
    "JSON link instead, for scripts.",
    tags=TAGS,
    security=SECURITY,
    responses={**csv_responses("users-YYYY-MM-DD.csv"), **READ_ERRORS},
)
def get_users_export(
    search: Search = None,
    role: RoleFilter = None,
    customer_type: CustomerTypeFilter = None,
    has_bookings: HasBookingsFilter = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    last_booking_from: LastBookingFrom = None,
    last_booking_to: LastBookingTo = None,
    sort: Sort = UserSort.CREATED_AT,
    order: Order = SortOrder.DESC,
    file_format: Annotated[
        Literal["csv"] | None, Query(alias="format", description="Only `csv` (the default)")
    ] = None,
) -> Response[Any]:
    filters = UserFilters(
        search=search,
        role=role,
        customer_type=customer_type,
        has_bookings=has_bookings,
        created_from=created_from,
        created_to=created_to,
        last_booking_from=last_booking_from,
        last_booking_to=last_booking_to,
    )
    as_link = wants_json(router.current_event.headers.get("accept"))
    exported = export_users(filters, sort, order, inline=not as_link)
    return csv_export_response(
        exported, as_link=as_link, what="users", admin_id=acting_admin(router).id
    )


@router.get(
    "/api/admin/users/<user_id>",
    summary="One user, as the dashboard's user page reads it",
    description="One flat snake_case object with no envelope: profile, `is_active`, "
    "statistics, the next upcoming sessions and the first page of bookings (newest "
    "first; `bookings_next_cursor` continues at /bookings). The dashboard's user page "
    "reads exactly this shape, so it wins over the camelCase of the list.",
    tags=TAGS,
    security=SECURITY,
    responses={**ok_doc("The user", UserDetail), **MERGED_AWAY, **NOT_FOUND, **READ_ERRORS},
)
def get_user(user_id: UserId) -> UserDetail:
    return get_user_detail(user_id)


@router.get(
    "/api/admin/users/<user_id>/bookings",
    summary="A user's booking history, newest first, a page at a time",
    description="Snake_case, like the detail whose `bookings_next_cursor` it continues.",
    tags=TAGS,
    security=SECURITY,
    responses={
        **ok_doc("A page of bookings", BookingPage),
        **MERGED_AWAY,
        **NOT_FOUND,
        **READ_ERRORS,
    },
)
def get_user_bookings(
    user_id: UserId, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> BookingPage:
    return list_user_bookings(user_id, limit=limit, cursor=cursor)


@router.patch(
    "/api/admin/users/<user_id>",
    summary="Edit a user's contact details and preferences, or deactivate a staff account",
    description="Takes and returns the detail's snake_case field names. Only the fields "
    "sent change; `null` clears an optional one. Role and statistics cannot be set here; "
    "`is_active` only for staff, and never your own. Every change is recorded in the "
    "audit log with the signed-in admin's id and email, the old and the new values.",
    tags=TAGS,
    security=SECURITY,
    responses={
        **ok_doc("The user after the edit", UserDetail),
        **NOT_FOUND,
        409: error_doc(
            "The new email already belongs to another user or is another user's alias "
            "(the user is named in the message), or this user was merged into another"
        ),
        **ADMIN_ERRORS,
    },
)
def patch_user(user_id: UserId, update: UserUpdate) -> UserDetail:
    admin = acting_admin(router)
    detail = update_user(user_id, update, actor=admin)
    logger.info(
        "user edited",
        extra={
            "admin_id": admin.id,
            "user_id": user_id,
            "fields": sorted(update.model_fields_set),
        },
    )
    return detail
