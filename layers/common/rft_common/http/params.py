"""Parameters and answers that several admin routes share: a user id in the path, a
page's size and cursor, and "no such user"."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from rft_common.db.paging import MAX_PAGE_SIZE
from rft_common.http.api import error_doc

UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]
AttendeeId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[
    str | None,
    Query(max_length=1000, description="`nextCursor` of the previous page (same query)"),
]
NOT_FOUND = {404: error_doc("No user has this id")}
