"""The customer identity rules (``rft_common.customers.identity``) as SQLAlchemy Core: the
backfill composes ``fill_blanks_on_conflict`` and ``found_or_created`` into its batch
statement; the checkout's single-customer ``UPSERT_ONE`` is rendered to SQL text
(``customer_upsert_sql``) so that the checkout runs it without SQLAlchemy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Select,
    bindparam,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.dialects.postgresql.pg8000 import dialect as pg8000_dialect

from rft_common.customers.identity import FILLABLE_FIELDS, UPSERT_PARAMETERS
from rft_common.db.tables import users


def _is_blank(column: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(column.is_(None), func.btrim(column) == "")


RESOLVED_ID = func.coalesce(users.c.merged_into, users.c.id).label("id")
"""The customer a users row stands for: itself, or the survivor it was merged into."""


def fill_blanks_on_conflict(statement: Insert) -> Insert:
    """``ON CONFLICT (email_normalized) DO UPDATE`` applying the identity rules.

    A found customer is rewritten only when a blank name, phone or company would be
    filled; staff rows never are. A row that would not change is still locked until
    commit (PostgreSQL locks every conflicting row of a ``DO UPDATE``), but it is not
    rewritten, so neither its indexes nor its counters are touched, and ``RETURNING``
    leaves it out: ``found_or_created`` adds those rows back from the snapshot.

    Two exceptions keep that complete, each "updated" to its own values and returned
    as the row stands after any concurrent commit: a customer committed by a
    concurrent transaction after this statement's snapshot was taken (it is not in
    the snapshot), and a merged customer. A merge holds the duplicate's row locked,
    so an upsert arriving mid-merge waits, then finds the row merged and returns the
    survivor; the snapshot still shows it unmerged.
    """
    excluded = statement.excluded
    fills = {
        field: (users.c.role == "customer")
        & users.c.merged_into.is_(None)
        & _is_blank(users.c[field])
        & ~_is_blank(excluded[field])
        for field in FILLABLE_FIELDS
    }
    seen = users.alias("seen")
    # ``excluded`` spelt out: SQLAlchemy would add the alias to the subquery's FROM.
    in_snapshot = exists().where(
        seen.c.email_normalized == literal_column("excluded.email_normalized")
    )
    return statement.on_conflict_do_update(
        index_elements=[users.c.email_normalized],
        set_={
            field: case((fill, excluded[field]), else_=users.c[field])
            for field, fill in fills.items()
        },
        where=or_(*fills.values(), ~in_snapshot, users.c.merged_into.is_not(None)),
    )


def found_or_created(upserted: CTE, email: ColumnElement[str]) -> Select[Any]:
    """``(email_normalized, id, created)`` of every customer of an upsert.

    ``upserted`` is a ``fill_blanks_on_conflict`` upsert with ``RETURNING`` as a CTE;
    ``email`` the normalised emails it was given (a column of a CTE, or a bound
    value). The customers it did not return were in this statement's snapshot,
    unchanged: each is looked up by the unique email index (a subquery per email,
    whatever the planner believes about the size of ``users``).
    """
    existing_id = select(RESOLVED_ID).where(users.c.email_normalized == email).scalar_subquery()
    return select(upserted.c.email_normalized, upserted.c.id, upserted.c.created).union_all(
        select(email.label("email_normalized"), existing_id.label("id"), false()).where(
            ~exists().where(upserted.c.email_normalized == email)
        )
    )


RETURNING = (users.c.email_normalized, RESOLVED_ID, literal_column("xmax = 0").label("created"))


def _upsert_one() -> Select[Any]:
    upserted = (
        fill_blanks_on_conflict(
            insert(users).values({column: bindparam(column) for column in UPSERT_PARAMETERS})
        )
        .returning(*RETURNING)
        .cte("upserted")
    )
    return found_or_created(upserted, func.lower(func.btrim(bindparam("email"))))


UPSERT_ONE = _upsert_one()
"""One customer's upsert, ``(email_normalized, id, created)``, its parameters
``UPSERT_PARAMETERS``. The checkout runs it as SQL text (``render_module``)."""

GENERATED_MODULE = Path(__file__).with_name("upsert_sql.py")


def render_module() -> str:
    """The source of ``customer_upsert_sql``: ``UPSERT_ONE`` compiled for pg8000 with
    ``:name`` parameters, and the values of the constants SQLAlchemy made parameters of
    (``'customer'``, ``''``). ``rft dev render-sql`` writes it; a test fails while the
    file and this differ."""
    compiled = UPSERT_ONE.compile(dialect=pg8000_dialect(paramstyle="named"))
    constants = {
        name: value for name, value in compiled.params.items() if name not in UPSERT_PARAMETERS
    }
    if '"""' in compiled.string or "\\" in compiled.string:
        raise ValueError("the statement cannot be written as a plain triple-quoted string")
    return (
        '"""Generated by ``rft dev render-sql`` from ``rft_common.customers.upsert.UPSERT_ONE``:\n'
        "do not edit. The checkout runs it without importing SQLAlchemy.\n"
        '"""\n\n'
        f'UPSERT_ONE_SQL = """{compiled.string}"""\n'
        f"UPSERT_ONE_CONSTANTS = {constants!r}\n"
    )
