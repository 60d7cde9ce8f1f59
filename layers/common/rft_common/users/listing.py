"""The admin users list: search, filters, sorts, keyset or offset paging, exact totals.

Each page is one statement over ``users`` (the statistics are columns the database
keeps), and migration 0004 gives every part of it an index:

- ``search`` is a case-insensitive substring of the search document (name,
  normalised email, phone digits, company), kept lowercased in
  ``users.search_document``: ``LIKE lower('%term%')``, which is what ``ILIKE`` does,
  with a cheaper recheck (migration 0011), on a trigram GIN index, which also serves
  email prefixes. ``%`` and ``_`` match themselves. Terms
  made only of phone characters are searched as digits, so ``0114 496 0000`` finds
  ``0114-4960000``. Terms under three characters cannot use trigrams and scan;
- every sort has a ``(key, id)`` btree; ``id`` breaks ties, so paging is stable and a
  keyset cursor visits every row exactly once;
- ``total`` is taken in the same snapshot as the page: summed from ``user_counts``
  (exact) when only role, customer type and has-bookings filter (or nothing does),
  otherwise counted with the page's own WHERE clause up to ``COUNT_LIMIT`` matches
  (``totalIsExact`` false beyond), so its cost is bounded however broad the search.

Dates filter by the company's calendar (Europe/London), both ends inclusive.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rft_common.core.errors import InvalidRequest
from rft_common.core.formatting import money
from rft_common.core.vocabulary import BUSINESS_TIME_ZONE
from rft_common.db.paging import (
    DEFAULT_PAGE_SIZE,
    READ_ONLY_SNAPSHOT,
    decode_cursor,
    encode_cursor,
    query_fingerprint,
)
from rft_common.db.postgres import Connection, run_transaction

Role = Literal["customer", "admin", "instructor"]
CustomerType = Literal["individual", "corporate"]
COUNT_LIMIT = 10_000
"""Searches and date filters count their matches exactly up to this many (the
convention of Elasticsearch's ``track_total_hits``)."""

PHONE_LIKE = re.compile(r"[0-9 +\-().]*[0-9][0-9 +\-().]*")
PHONE_SEPARATORS = str.maketrans("", "", " +-().")


class UserSort(StrEnum):
    NAME = "name"
    CREATED_AT = "createdAt"
    LAST_BOOKING_AT = "lastBookingAt"
    TOTAL_BOOKINGS = "totalBookings"
    TOTAL_SPENT = "totalSpent"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True)
class UserFilters:
    """What the list, its total and the export are restricted to; ``None`` is no filter."""

    search: str | None = None
    role: Role | None = None
    customer_type: CustomerType | None = None
    has_bookings: bool | None = None
    created_from: date | None = None
    created_to: date | None = None
    last_booking_from: date | None = None
    last_booking_to: date | None = None

    def __post_init__(self) -> None:
        search = " ".join((self.search or "").split()) or None
        object.__setattr__(self, "search", search)
        for start, end, field in (
            (self.created_from, self.created_to, "createdTo"),
            (self.last_booking_from, self.last_booking_to, "lastBookingTo"),
        ):
            if start and end and end < start:
                raise InvalidRequest(f"{field} is before the start of the range", field=field)

    @property
    def counted_in_user_counts(self) -> bool:
        """Whether ``user_counts`` can give the total (it is kept per these filters)."""
        return self.search is None and not any(
            (self.created_from, self.created_to, self.last_booking_from, self.last_booking_to)
        )


@dataclass(frozen=True)
class UserListQuery:
    filters: UserFilters
    sort: UserSort = UserSort.CREATED_AT
    order: SortOrder = SortOrder.DESC
    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None
    offset: int | None = None

    def __post_init__(self) -> None:
        if self.cursor is not None and self.offset is not None:
            raise InvalidRequest("use either cursor or offset, not both", field="offset")

    @property
    def fingerprint(self) -> str:
        return query_fingerprint(["users", self.sort, self.order, asdict(self.filters)])


class UserSummary(BaseModel):
    """A row of the dashboard's Users page."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: int
    email: str
    name: str | None
    phone: str | None
    role: Role
    customer_type: CustomerType | None
    company_name: str | None
    city: str | None
    postcode: str | None
    newsletter_subscribed: bool
    customer_since: datetime = Field(
        description="When the record was created: for a customer the backfill created, "
        "their first booking"
    )
    total_bookings: int = Field(description="Bookings whose status is not cancelled")
    total_spent: str = Field(
        description="GBP paid and not refunded, a decimal string", examples=["150.00"]
    )
    last_booking_date: datetime | None = Field(
        description="When the latest counted booking was made"
    )


class UserPage(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    data: list[UserSummary] = Field(description="The page's users (the dashboard reads `data`)")
    total: int = Field(
        description="Every user matching the filters, not just this page: exact up to "
        f"{COUNT_LIMIT:,} matches; beyond that {COUNT_LIMIT} with `totalIsExact` false (as "
        'search engines show "10,000+"), so a broad search answers as fast as a narrow '
        "one. Paging by offset or cursor still reaches every match. Without `search` or "
        "date filters the total is always exact, however large."
    )
    total_is_exact: bool = Field(
        description=f"false when more than {COUNT_LIMIT:,} users match and `total` is "
        f"{COUNT_LIMIT}, a lower bound"
    )
    limit: int
    offset: int | None = Field(description="Echoed in offset paging; null with a cursor")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class BoundSql(NamedTuple):
    """SQL text (a statement or a condition) and the values of its ``:name`` placeholders."""

    sql: str
    parameters: dict[str, Any]


SUMMARY_COLUMNS = """
    users.id, users.email, users.name, users.phone, users.role, users.customer_type,
    users.company_name, users.city, users.postcode, users.newsletter_subscribed,
    users.created_at, users.total_bookings, users.total_spent, users.last_booking_at
"""


def summary_from_row(row: Any) -> UserSummary:
    return UserSummary(
        id=row.id,
        email=row.email,
        name=row.name,
        phone=row.phone,
        role=row.role,
        customer_type=row.customer_type,
        company_name=row.company_name,
        city=row.city,
        postcode=row.postcode,
        newsletter_subscribed=row.newsletter_subscribed,
        customer_since=row.created_at,
        total_bookings=row.total_bookings,
        total_spent=money(row.total_spent),
        last_booking_date=row.last_booking_at,
    )


# --- sorting ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _timestamp(value: Any) -> datetime:
    parsed = datetime.fromisoformat(_text(value))
    if parsed.tzinfo is None:
        raise ValueError("expected a time zone")
    return parsed


def _optional_timestamp(value: Any) -> datetime | None:
    return None if value is None else _timestamp(value)


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("expected an integer")
    return value


def _decimal(value: Any) -> Decimal:
    parsed = Decimal(_text(value))
    if not parsed.is_finite():
        raise ValueError("expected a finite number")
    return parsed


# The expressions of migration 0004's sort indexes, written as they are indexed.
NAME_SORT_KEY = "lower(coalesce(users.name, ''))"
LAST_BOOKING_SORT_KEY = "coalesce(users.last_booking_at, '-infinity'::timestamptz)"
"""No booking sorts as -infinity: last when newest first, first when oldest first."""


@dataclass(frozen=True)
class SortKey:
    """How one sort orders rows and how a cursor resumes after a row (SQL fragments)."""

    expression: str
    """ORDER BY this, then ``id``: the leading columns of one of migration 0004's indexes."""
    cursor_value: str
    """Selected with every row; a cursor remembers it for the last row of a page."""
    parse: Callable[[Any], Any]
    """A cursor's JSON value back to a Python value; ``ValueError`` if malformed."""
    after_value: str
    """The cursor's value (``:after_value``) as something comparable with ``expression``."""


SORT_KEYS: dict[UserSort, SortKey] = {
    UserSort.NAME: SortKey(NAME_SORT_KEY, NAME_SORT_KEY, _text, "CAST(:after_value AS text)"),
    UserSort.CREATED_AT: SortKey(
        "users.created_at",
        "users.created_at",
        _timestamp,
        "CAST(:after_value AS timestamptz)",
    ),
    UserSort.LAST_BOOKING_AT: SortKey(
        LAST_BOOKING_SORT_KEY,
        "users.last_booking_at",
        _optional_timestamp,
        "coalesce(CAST(:after_value AS timestamptz), '-infinity'::timestamptz)",
    ),
    UserSort.TOTAL_BOOKINGS: SortKey(
        "users.total_bookings",
        "users.total_bookings",
        _integer,
        "CAST(:after_value AS integer)",
    ),
    UserSort.TOTAL_SPENT: SortKey(
        "users.total_spent",
        "users.total_spent",
        _decimal,
        "CAST(:after_value AS numeric)",
    ),
}
ORDER_BY: dict[SortOrder, str] = {
    SortOrder.ASC: "ORDER BY {key} ASC, users.id ASC",
    SortOrder.DESC: "ORDER BY {key} DESC, users.id DESC",
}
AFTER: dict[SortOrder, str] = {
    SortOrder.ASC: "({key}, users.id) > ({after_value}, CAST(:after_id AS integer))",
    SortOrder.DESC: "({key}, users.id) < ({after_value}, CAST(:after_id AS integer))",
}
"""Rows after a cursor's position, in the query's order: a keyset condition that the
sort's ``(key, id)`` index seeks to."""


def order_by(sort: UserSort, order: SortOrder) -> str:
    return ORDER_BY[order].format(key=SORT_KEYS[sort].expression)


def _after(query: UserListQuery) -> BoundSql:
    """Rows after the cursor's position, in the query's order (a keyset condition)."""
    assert query.cursor is not None
    key = SORT_KEYS[query.sort]
    position = decode_cursor(query.cursor, query.fingerprint)
    try:
        value, last_id = position
        value = key.parse(value)
        last_id = _integer(last_id)
    except (ValueError, ArithmeticError):
        raise InvalidRequest("not a cursor issued by this API", field="cursor") from None
    condition = AFTER[query.order].format(key=key.expression, after_value=key.after_value)
    return BoundSql(condition, {"after_value": value, "after_id": last_id})


# --- filtering -------------------------------------------------------------------------


def search_pattern(term: str) -> str:
    """``LIKE`` pattern for a substring, with ``%``, ``_`` and ``\\`` matching themselves.
    The term is composed (NFC) as stored emails are, so "josé" finds a customer's email
    however its accent was typed."""
    term = unicodedata.normalize("NFC", term)
    if PHONE_LIKE.fullmatch(term):
        term = term.translate(PHONE_SEPARATORS)
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filter_conditions(filters: UserFilters) -> BoundSql:
    """The WHERE clause of the list, its count and the export (the conditions, joined by
    AND, without the keyword). A date filter compares with midnight of the day in the
    company's time zone (``:time_zone``); the ``...before`` values are the day after
    the filter's last day.

    Merged duplicates never appear (``user_counts`` leaves them out too).
    """
    conditions = ["users.merged_into IS NULL"]
    values: dict[str, Any] = {}
    if filters.search is not None:
        conditions.append("users.search_document LIKE lower(CAST(:search_pattern AS text))")
        values["search_pattern"] = search_pattern(filters.search)
    if filters.role is not None:
        conditions.append("users.role = :role")
        values["role"] = filters.role
    if filters.customer_type is not None:
        conditions.append("users.customer_type = :customer_type")
        values["customer_type"] = filters.customer_type
    if filters.has_bookings is not None:
        conditions.append(
            "users.total_bookings > 0" if filters.has_bookings else "users.total_bookings <= 0"
        )
    if filters.created_from is not None:
        conditions.append(
            "users.created_at >= timezone(:time_zone, CAST(:created_from AS timestamp))"
        )
        values.update(created_from=filters.created_from, time_zone=BUSINESS_TIME_ZONE)
    if filters.created_to is not None:
        conditions.append(
            "users.created_at < timezone(:time_zone, CAST(:created_before AS timestamp))"
        )
        next_day = filters.created_to + timedelta(days=1)
        values.update(created_before=next_day, time_zone=BUSINESS_TIME_ZONE)
    # On the sort key's expression, so the lastBookingAt index serves these too.
    if filters.last_booking_from is not None:
        conditions.append(
            f"{LAST_BOOKING_SORT_KEY}"
            " >= timezone(:time_zone, CAST(:last_booking_from AS timestamp))"
        )
        values.update(last_booking_from=filters.last_booking_from, time_zone=BUSINESS_TIME_ZONE)
    if filters.last_booking_to is not None:
        conditions.append(f"{LAST_BOOKING_SORT_KEY} > '-infinity'::timestamptz")
        conditions.append(
            f"{LAST_BOOKING_SORT_KEY}"
            " < timezone(:time_zone, CAST(:last_booking_before AS timestamp))"
        )
        next_day = filters.last_booking_to + timedelta(days=1)
        values.update(last_booking_before=next_day, time_zone=BUSINESS_TIME_ZONE)
    return BoundSql(" AND ".join(conditions), values)


def count_statement(filters: UserFilters) -> BoundSql:
    """How many users match ``filters``, the cheapest way there is: exactly from
    ``user_counts``, or by counting matches, stopping after ``COUNT_LIMIT + 1``."""
    if not filters.counted_in_user_counts:
        where, values = filter_conditions(filters)
        sql = (
            "SELECT count(*) FROM ("
            f"SELECT users.id FROM users WHERE {where} LIMIT :count_limit_plus_one"
            ") AS matches"
        )
        return BoundSql(sql, values | {"count_limit_plus_one": COUNT_LIMIT + 1})
    conditions = []
    values = {}
    if filters.role is not None:
        conditions.append("user_counts.role = :role")
        values["role"] = filters.role
    if filters.customer_type is not None:
        conditions.append("user_counts.customer_type = :customer_type")
        values["customer_type"] = filters.customer_type
    if filters.has_bookings is not None:
        conditions.append("user_counts.has_bookings = :has_bookings")
        values["has_bookings"] = filters.has_bookings
    sql = "SELECT coalesce(sum(user_counts.total), 0) FROM user_counts"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    return BoundSql(sql, values)


# --- the page --------------------------------------------------------------------------


def list_users(query: UserListQuery) -> UserPage:
    return run_transaction(lambda connection: read_page(connection, query))


def page_statement(query: UserListQuery) -> BoundSql:
    """One page and one row more (which tells whether there is a next page)."""
    where, values = filter_conditions(query.filters)
    if query.cursor is not None:
        after, position = _after(query)
        where, values = f"{where} AND {after}", values | position
    paging = "LIMIT :limit_plus_one"
    values["limit_plus_one"] = query.limit + 1
    if query.cursor is None and query.offset:
        paging += " OFFSET :offset"
        values["offset"] = query.offset
    sql = (
        f"SELECT {SUMMARY_COLUMNS}, {SORT_KEYS[query.sort].cursor_value} AS cursor_value"
        f" FROM users WHERE {where} {order_by(query.sort, query.order)} {paging}"
    )
    return BoundSql(sql, values)


def read_page(connection: Connection, query: UserListQuery) -> UserPage:
    connection.execute(READ_ONLY_SNAPSHOT)
    rows = connection.execute(*page_statement(query)).all()
    page = rows[: query.limit]
    next_cursor = (
        encode_cursor(query.fingerprint, [page[-1].cursor_value, page[-1].id])
        if len(rows) > query.limit
        else None
    )
    counted = int(connection.execute(*count_statement(query.filters)).scalar_one())
    exact = query.filters.counted_in_user_counts or counted <= COUNT_LIMIT
    return UserPage(
        data=[summary_from_row(row) for row in page],
        total=counted if exact else COUNT_LIMIT,
        total_is_exact=exact,
        limit=query.limit,
        offset=None if query.cursor is not None else (query.offset or 0),
        next_cursor=next_cursor,
    )
