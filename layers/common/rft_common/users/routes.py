"""The admin users API under /api/admin/users: admins only.

Every request passes ``admit`` before it is routed: the ``admin_users_api`` flag
first, then the bearer token (``rft_common.staff.tokens``). Doing this ahead of the resolver,
rather than in a route middleware, matters because Powertools validates parameters
before middlewares run: an anonymous caller must get 401, not a 422 describing the
inputs. ``admit`` records the admin in ``requestContext.authorizer``, where an API
Gateway authorizer would put it, and ``acting_admin`` reads it back (refusing, should
a route ever be reached without ``admit``). Logs name the admin by their user id
(never their email).

The shapes are the admin dashboard's (its Users pages are deployed and are this API's
only client): the list is ``{data, total, limit, offset, nextCursor}`` with camelCase
rows, the detail one flat snake_case object, and the export the CSV file itself.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal, cast

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BeforeValidator, Field

from rft_common.aws.flags import ADMIN_USERS_API, is_enabled
from rft_common.core.errors import DomainError, FeatureDisabled, Unauthorized
from rft_common.core.observability import logger, metrics
from rft_common.http.api import BEARER_SCHEME, ERROR_RESPONSES, ErrorResponse
from rft_common.staff.tokens import ADMIN_ROLE, Staff, authenticate_admin
from rft_common.users.export import CSV_CONTENT_TYPE, InlineCsv, UsersExport, export_users
from rft_common.users.listing import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
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

SECURITY: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]
TAGS = ["admin users"]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorResponse}}}


def _ok(description: str, model: type) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"application/json": {"model": model}}}}


ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("No bearer token, or one that is invalid, expired or not yet valid"),
    403: _error("A valid token whose role is not admin"),
    **ERROR_RESPONSES,
    503: _error("Database unreachable, the admin_users_api flag is off, or sign-in unconfigured"),
}
READ_ERRORS = {status: response for status, response in ADMIN_ERRORS.items() if status != 415}
"""A GET has no body, so no unsupported media type."""
NOT_FOUND = {404: _error("No user has this id")}


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


def admit(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its admin recorded, or a ``DomainError`` saying why not (logged,
    and counted in ``AdminRequestsRefused``)."""
    try:
        admin = _admitted_admin(event)
    except DomainError as refusal:
        logger.info("admin request refused", extra={"reason": refusal.message})
        metrics.add_metric(name="AdminRequestsRefused", unit=MetricUnit.Count, value=1)
        raise
    request_context = event.get("requestContext") or {}
    authorizer = {"principalId": str(admin.id), "email": admin.email, "role": ADMIN_ROLE}
    return {**event, "requestContext": {**request_context, "authorizer": authorizer}}


def _admitted_admin(event: dict[str, Any]) -> Staff:
    if not is_enabled(ADMIN_USERS_API):
        raise FeatureDisabled("the admin users API is switched off (feature flag admin_users_api)")
    return authenticate_admin(APIGatewayProxyEvent(event).headers.get("authorization"))


def acting_admin() -> Staff:
    """The admin whose token ``admit`` accepted for this request."""
    event = cast(APIGatewayProxyEvent, router.current_event)
    authorizer = event.request_context.authorizer
    if authorizer.get("role") != ADMIN_ROLE or not authorizer.principal_id:
        raise Unauthorized("sign in as an admin: send Authorization: Bearer <token>")
    return Staff(id=int(authorizer.principal_id), email=authorizer["email"], role=ADMIN_ROLE)


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
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[
    str | None,
    Query(max_length=1000, description="`nextCursor` of the previous page (same query)"),
]


@router.get(
    "/api/admin/users",
    summary="Search, filter, sort and page users",
    description="Page with `cursor` (keyset: fast at any depth, no skips or repeats) "
    "or with `offset` (the dashboard's paging), not both. The rows are under `data` and "
    "`total` counts every match, because the dashboard's Users page reads exactly that "
    "(it crashes without `data`): its contract, over our earlier `items`.",
    tags=TAGS,
    security=SECURITY,
    responses={**_ok("A page of users and the total", UserPage), **READ_ERRORS},
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


def csv_responses(file_name: str) -> dict[int | str, dict[str, Any]]:
    """The documented answers of a CSV export saved as ``file_name``."""
    return {
        200: {
            "description": "The CSV file itself (`Content-Disposition: attachment; "
            f"filename={file_name}`); with `Accept: application/json`, a download link",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"model": UsersExport},
            },
        },
        303: {
            "description": "The file is too big for a response (about 6 MB): `Location` is "
            "a presigned S3 URL of it, valid for 15 minutes (the bucket allows the admin "
            "origin)",
        },
    }


def wants_json(accept: str | None) -> bool:
    """Whether the caller asked for JSON rather than the file (scripts, not the dashboard)."""
    types = {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}
    return "application/json" in types and "text/csv" not in types


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
    return csv_export_response(exported, as_link=as_link, what="users")


def csv_export_response(
    exported: InlineCsv | UsersExport, *, as_link: bool, what: str
) -> Response[Any]:
    """The CSV itself, the JSON link (``as_link``), or 303 to the file in S3; the export
    of ``what`` logged with the admin who asked."""
    logger.info(
        f"{what} exported",
        extra={
            "admin_id": acting_admin().id,
            "rows": exported.rows,
            "file_name": exported.file_name,
            "inline": isinstance(exported, InlineCsv),
        },
    )
    if isinstance(exported, InlineCsv):
        return Response(
            status_code=200,
            content_type=CSV_CONTENT_TYPE,
            body=exported.text,
            headers={"Content-Disposition": f"attachment; filename={exported.file_name}"},
        )
    if as_link:
        return Response(
            status_code=200,
            content_type="application/json",
            body=exported.model_dump_json(by_alias=True),
        )
    return Response(
        status_code=303,
        content_type="text/plain; charset=utf-8",
        body=f"The export is at {exported.download_url}",
        headers={"Location": exported.download_url},
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
    responses={**_ok("The user", UserDetail), **MERGED_AWAY, **NOT_FOUND, **READ_ERRORS},
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
        **_ok("A page of bookings", BookingPage),
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
        **_ok("The user after the edit", UserDetail),
        **NOT_FOUND,
        409: _error(
            "The new email already belongs to another user or is another user's alias "
            "(the user is named in the message), or this user was merged into another"
        ),
        **ADMIN_ERRORS,
    },
)
def patch_user(user_id: UserId, update: UserUpdate) -> UserDetail:
    admin = acting_admin()
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
