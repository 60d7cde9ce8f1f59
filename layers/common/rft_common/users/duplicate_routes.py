"""Duplicate customers in the admin users API: candidates, merge, unmerge, dismissal.

Served by the admin users function behind the same ``admit`` gate (flag, then admin
token) as ``rft_common.users.routes``. Bodies name the other user
``duplicateId`` or ``duplicate_id`` (the detail's snake_case convention).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from rft_common.core.observability import logger
from rft_common.db.paging import DEFAULT_PAGE_SIZE
from rft_common.http.api import error_doc, ok_doc
from rft_common.http.params import NOT_FOUND, Cursor, Limit, UserId
from rft_common.staff.gate import ADMIN_ERRORS, READ_ERRORS, SECURITY, acting_admin
from rft_common.staff.tokens import Staff
from rft_common.users.duplicates import (
    DuplicatePage,
    NotDuplicateMark,
    list_duplicates,
    mark_not_duplicate,
)
from rft_common.users.merges import (
    UNMERGE_WINDOW,
    MergeResult,
    UnmergeResult,
    merge_users,
    unmerge_users,
)
from rft_common.users.routes import TAGS

router = Router()

MAX_USER_ID = 2**31 - 1


class OtherUser(BaseModel):
    """The second user of a merge, unmerge or dismissal."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"duplicate_id": 42}, {"duplicateId": 42}]},
    )

    duplicate_id: int = Field(
        ge=1,
        le=MAX_USER_ID,
        validation_alias=AliasChoices("duplicate_id", "duplicateId"),
        description="The other user's id; also accepted as `duplicateId`",
    )


REFUSED = error_doc(
    "Refused, with the reason: a user and itself, staff accounts, a user already merged "
    "or one that absorbed others (merges do not chain), an erased user, or nothing to undo"
)


def _log(action: str, admin: Staff, **ids: Any) -> None:
    logger.info(action, extra={"admin_id": admin.id, **ids})


@router.get(
    "/api/admin/users/duplicates",
    summary="Customers who look like the same person, best first",
    description="Candidate pairs with a score (0-1) and the reasons: `same_phone` (E.164, "
    "UK numbers in any spelling), `same_name_and_company`, `email_typo_domain` (the same "
    "local part at a misspelt domain), `email_one_edit`, `same_name_similar_email`; "
    "`same_name` and `similar_name` only strengthen another reason. Merged users and "
    "pairs marked not a duplicate never appear. Pairs are found by a scan every 5 "
    "minutes of the customers written since (`pending_scan` counts those still waiting), "
    "so a new or edited customer's candidates appear within minutes. Page with `cursor`.",
    tags=TAGS,
    security=SECURITY,
    responses={**ok_doc("A page of candidate pairs", DuplicatePage), **READ_ERRORS},
)
def get_duplicates(limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None) -> DuplicatePage:
    return list_duplicates(limit=limit, cursor=cursor)


@router.post(
    "/api/admin/users/<user_id>/merge",
    summary="Merge a duplicate customer into this one",
    description="One transaction: the duplicate's bookings (and the idempotency records "
    "that replay them) move here, blank fields here are filled from the duplicate and "
    "conflicting values are kept here and reported, statistics are recomputed, the "
    "duplicate's email becomes an alias of this user (checkouts and the backfill link it "
    "here from now on), and the duplicate stays, hidden, its detail answering 301 to "
    "this user. Recorded in the audit log with every moved booking id.",
    tags=TAGS,
    security=SECURITY,
    responses={
        **ok_doc("What the merge did", MergeResult),
        **NOT_FOUND,
        409: REFUSED,
        **ADMIN_ERRORS,
    },
)
def post_merge(user_id: UserId, other: OtherUser) -> MergeResult:
    admin = acting_admin(router)
    result = merge_users(user_id, other.duplicate_id, actor=admin)
    _log(
        "users merged",
        admin,
        survivor_id=user_id,
        duplicate_id=other.duplicate_id,
        merge_id=result.merge_id,
        moved_bookings=len(result.moved_booking_ids),
    )
    return result


@router.post(
    "/api/admin/users/<user_id>/unmerge",
    summary="Undo a merge into this user",
    description=f"Within {UNMERGE_WINDOW.days} days, from the merge's record: the bookings "
    "it moved and those linked since through the alias go back, the alias is removed, "
    "fields it filled are cleared unless changed since, and the duplicate is listed again.",
    tags=TAGS,
    security=SECURITY,
    responses={
        **ok_doc("What the unmerge did", UnmergeResult),
        **NOT_FOUND,
        409: REFUSED,
        **ADMIN_ERRORS,
    },
)
def post_unmerge(user_id: UserId, other: OtherUser) -> UnmergeResult:
    admin = acting_admin(router)
    result = unmerge_users(user_id, other.duplicate_id, actor=admin)
    _log(
        "users unmerged",
        admin,
        survivor_id=user_id,
        duplicate_id=other.duplicate_id,
        merge_id=result.merge_id,
    )
    return result


@router.post(
    "/api/admin/users/<user_id>/not-duplicate",
    summary="Mark two users as different people",
    description="The pair never appears among the duplicates again.",
    tags=TAGS,
    security=SECURITY,
    responses={
        **ok_doc("The mark", NotDuplicateMark),
        **NOT_FOUND,
        409: error_doc("A user and itself"),
        **ADMIN_ERRORS,
    },
)
def post_not_duplicate(user_id: UserId, other: OtherUser) -> NotDuplicateMark:
    admin = acting_admin(router)
    mark = mark_not_duplicate(user_id, other.duplicate_id, actor=admin)
    _log("users marked not duplicate", admin, user_id=user_id, duplicate_id=other.duplicate_id)
    return mark
