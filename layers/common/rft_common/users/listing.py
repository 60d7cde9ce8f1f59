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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from sqlalchemy import (
    TIMESTAMP,
    ColumnElement,
    Connection,
    Integer,
    Numeric,
    Row,
    Select,
    Text,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)

from rft_common.core.errors import InvalidRequest
from rft_common.db.engine import run_transaction
from rft_common.db.paging import decode_cursor, encode_cursor, query_fingerprint
from rft_common.db.tables import (
    USER_LAST_BOOKING_SORT_KEY,
    USER_NAME_SORT_KEY,
    user_counts,
    users,
)

Role = Literal["customer", "admin", "instructor"]
CustomerType = Literal["individual", "corporate"]
BUSINESS_TIME_ZONE = "Europe/London"
DEFAULT_PAGE_SIZE = 20
COUNT_LIMIT = 10_000
"""Searches and date filters count their matches exactly up to this many (the
convention of Elasticsearch's ``track_total_hits``)."""
MAX_PAGE_SIZE = 100

READ_ONLY_SNAPSHOT = text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
"""First statement of a read: the page and its total see the same data."""

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


SUMMARY_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.name,
    users.c.phone,
    users.c.role,
    users.c.customer_type,
    users.c.company_name,
    users.c.city,
    users.c.postcode,
    users.c.newsletter_subscribed,
    users.c.created_at,
    users.c.total_bookings,
    users.c.total_spent,
    users.c.last_booking_at,
)


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def summary_from_row(row: Row[Any]) -> UserSummary:
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


NO_BOOKING: ColumnElement[datetime] = literal_column("'-infinity'::timestamptz")


@dataclass(frozen=True)
class SortKey:
    """How one sort orders rows and how a cursor resumes after a row."""

    expression: ColumnElement[Any]
    """ORDER BY this, then ``id``: the leading columns of one of migration 0004's indexes."""
    cursor_value: ColumnElement[Any]
    """Selected with every row; a cursor remembers it for the last row of a page."""
    parse: Callable[[Any], Any]
    """A cursor's JSON value back to a Python value; ``ValueError`` if malformed."""
    sql_type: Any
    comparable: Callable[[ColumnElement[Any]], ColumnElement[Any]] = lambda value: value
    """Turns the cursor's bound value into something comparable with ``expression``."""


SORT_KEYS: dict[UserSort, SortKey] = {
    UserSort.NAME: SortKey(USER_NAME_SORT_KEY, USER_NAME_SORT_KEY, _text, Text()),
    UserSort.CREATED_AT: SortKey(
        users.c.created_at, users.c.created_at, _timestamp, TIMESTAMP(timezone=True)
    ),
    # No booking sorts as -infinity: last when newest first, first when oldest first.
    UserSort.LAST_BOOKING_AT: SortKey(
        USER_LAST_BOOKING_SORT_KEY,
        users.c.last_booking_at,
        _optional_timestamp,
        TIMESTAMP(timezone=True),
        lambda value: func.coalesce(value, NO_BOOKING),
    ),
    UserSort.TOTAL_BOOKINGS: SortKey(
        users.c.total_bookings, users.c.total_bookings, _integer, Integer()
    ),
    UserSort.TOTAL_SPENT: SortKey(users.c.total_spent, users.c.total_spent, _decimal, Numeric()),
}


def ordered(statement: Select[Any], sort: UserSort, order: SortOrder) -> Select[Any]:
    key = SORT_KEYS[sort].expression
    if order is SortOrder.DESC:
        return statement.order_by(key.desc(), users.c.id.desc())
    return statement.order_by(key.asc(), users.c.id.asc())


def _after(query: UserListQuery) -> ColumnElement[bool]:
    """Rows after the cursor's position, in the query's order (a keyset condition)."""
    assert query.cursor is not None
    key = SORT_KEYS[query.sort]
    position = decode_cursor(query.cursor, query.fingerprint)
    try:
        value, last_id = position
        bound = literal(key.parse(value), key.sql_type)
        last_id = _integer(last_id)
    except (ValueError, ArithmeticError):
        raise InvalidRequest("not a cursor issued by this API", field="cursor") from None
    current = tuple_(key.expression, users.c.id)
    after = tuple_(key.comparable(bound), literal(last_id, Integer()))
    return current < after if query.order is SortOrder.DESC else current > after


# --- filtering -------------------------------------------------------------------------


def search_pattern(term: str) -> str:
    """``LIKE`` pattern for a substring, with ``%``, ``_`` and ``\\`` matching themselves."""
    if PHONE_LIKE.fullmatch(term):
        term = term.translate(PHONE_SEPARATORS)
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _start_of_day(day: date) -> ColumnElement[Any]:
    """Midnight at the start of ``day`` in the company's time zone, as timestamptz."""
    return func.timezone(BUSINESS_TIME_ZONE, cast(literal(day), TIMESTAMP()))


def filter_conditions(filters: UserFilters) -> list[ColumnElement[bool]]:
    """The WHERE clause of the list, its count and the export.

    Merged duplicates never appear (``user_counts`` leaves them out too).
    """
    conditions: list[ColumnElement[bool]] = [users.c.merged_into.is_(None)]
    if filters.search is not None:
        pattern = func.lower(literal(search_pattern(filters.search), Text()))
        conditions.append(users.c.search_document.like(pattern))
    if filters.role is not None:
        conditions.append(users.c.role == filters.role)
    if filters.customer_type is not None:
        conditions.append(users.c.customer_type == filters.customer_type)
    if filters.has_bookings is not None:
        has_bookings = users.c.total_bookings > 0
        conditions.append(has_bookings if filters.has_bookings else ~has_bookings)
    if filters.created_from is not None:
        conditions.append(users.c.created_at >= _start_of_day(filters.created_from))
    if filters.created_to is not None:
        next_day = filters.created_to + timedelta(days=1)
        conditions.append(users.c.created_at < _start_of_day(next_day))
    # On the sort key's expression, so the lastBookingAt index serves these too.
    last_booking = USER_LAST_BOOKING_SORT_KEY
    if filters.last_booking_from is not None:
        conditions.append(last_booking >= _start_of_day(filters.last_booking_from))
    if filters.last_booking_to is not None:
        next_day = filters.last_booking_to + timedelta(days=1)
        conditions.append(last_booking > NO_BOOKING)
        conditions.append(last_booking < _start_of_day(next_day))
    return conditions


def count_statement(filters: UserFilters) -> Select[Any]:
    """How many users match ``filters``, the cheapest way there is: exactly from
    ``user_counts``, or by counting matches, stopping after ``COUNT_LIMIT + 1``."""
    if not filters.counted_in_user_counts:
        matches = select(users.c.id).where(*filter_conditions(filters)).limit(COUNT_LIMIT + 1)
        return select(func.count()).select_from(matches.subquery())
    statement = select(func.coalesce(func.sum(user_counts.c.total), 0))
    if filters.role is not None:
        statement = statement.where(user_counts.c.role == filters.role)
    if filters.customer_type is not None:
        statement = statement.where(user_counts.c.customer_type == filters.customer_type)
    if filters.has_bookings is not None:
        statement = statement.where(user_counts.c.has_bookings == filters.has_bookings)
    return statement


# --- the page --------------------------------------------------------------------------


def list_users(query: UserListQuery) -> UserPage:
    return run_transaction(lambda connection: read_page(connection, query))


def page_statement(query: UserListQuery) -> Select[Any]:
    """One page and one row more (which tells whether there is a next page)."""
    key = SORT_KEYS[query.sort]
    statement = select(*SUMMARY_COLUMNS, key.cursor_value.label("cursor_value")).where(
        *filter_conditions(query.filters)
    )
    if query.cursor is not None:
        statement = statement.where(_after(query))
    elif query.offset:
        statement = statement.offset(query.offset)
    return ordered(statement, query.sort, query.order).limit(query.limit + 1)


def read_page(connection: Connection, query: UserListQuery) -> UserPage:
    connection.execute(READ_ONLY_SNAPSHOT)
    rows = connection.execute(page_statement(query)).all()
    page = rows[: query.limit]
    next_cursor = (
        encode_cursor(query.fingerprint, [page[-1].cursor_value, page[-1].id])
        if len(rows) > query.limit
        else None
    )
    counted = int(connection.execute(count_statement(query.filters)).scalar_one())
    exact = query.filters.counted_in_user_counts or counted <= COUNT_LIMIT
    return UserPage(
        data=[summary_from_row(row) for row in page],
        total=counted if exact else COUNT_LIMIT,
        total_is_exact=exact,
        limit=query.limit,
        offset=None if query.cursor is not None else (query.offset or 0),
        next_cursor=next_cursor,
    )
