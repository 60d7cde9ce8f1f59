"""Merging a duplicate customer into the survivor, and undoing it within 30 days.

A merge is one transaction that locks both users in id order (``FOR UPDATE``, which
also makes any concurrent write referencing either user wait), then:

1. refuses (409) a self-merge, staff accounts, and chains: a user already merged, a
   survivor that was merged away, or a duplicate that absorbed others;
2. moves every booking of the duplicate to the survivor (the statistics triggers
   recompute both users exactly) and rewrites the ``customerId`` that idempotency
   records replay for those bookings;
3. fills the survivor's blank profile fields from the duplicate and reports the
   fields where both hold different values (the survivor's are kept);
4. marks the duplicate ``merged_into`` the survivor and makes its email an alias;
5. moves the duplicate's attendances (``booking_attendees``) and certificates to the
   survivor;
6. records the merge (``user_merges``: who, every moved booking id, what was filled
   and kept) and one audit row per user.

A checkout or backfill batch for the duplicate's email that arrives mid-merge waits
on the duplicate's row lock and then links to the survivor (``customers``).

Unmerge reverses a merge from its record: the bookings it moved, and every booking
linked since through the alias (its contact email is the duplicate's), go back; the
alias goes; attendances booked under the duplicate's email (and their certificates) go
back; filled fields are cleared unless someone has changed them since (those
are reported). Statistics follow through the triggers again.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from pydantic.alias_generators import to_camel

from rft_common.consent.service import carry_objections
from rft_common.core.emails import EMAIL_WHITESPACE, normalized_email_sql
from rft_common.core.errors import Conflict, NotFound
from rft_common.core.formatting import money
from rft_common.customers.audit import Actor, audit
from rft_common.db.postgres import Connection, run_transaction
from rft_common.staff.tokens import Staff

UNMERGE_WINDOW = timedelta(days=30)
PROFILE_FIELDS = (
    "name", "phone", "company_name", "address_line1", "address_line2", "city", "postcode",
    "notes",
)  # fmt: skip
"""Filled on the survivor when blank there; a different value on both is a conflict."""
PREFERENCE_FIELDS = ("marketing_consent", "newsletter_subscribed")
"""Never changed by a merge (consent is not inferred); a difference is reported. The
duplicate's objections do hold for the survivor (``consent.service.carry_objections``):
an unmerge leaves them, as a new objection is never undone but by new consent."""
FILLABLE_FIELDS = frozenset({*PROFILE_FIELDS, "customer_type"})
"""Every column a merge may write on the survivor (and its unmerge clear again)."""

USER_REFERENCES_MOVED = {
    ("bookings", "user_id"),
    ("booking_attendees", "user_id"),
    ("certificates", "user_id"),
}
USER_REFERENCES_KEPT = {
    ("users", "merged_into"),
    ("user_audit_log", "user_id"),
    ("user_email_aliases", "user_id"),
    ("user_email_aliases", "merged_user_id"),
    ("user_merges", "survivor_id"),
    ("user_merges", "duplicate_id"),
    ("not_duplicate_pairs", "user_id"),
    ("not_duplicate_pairs", "other_id"),
    ("duplicate_candidates", "user_id"),
    ("duplicate_candidates", "other_id"),
    ("staff_password_resets", "user_id"),  # staff only, and staff are never merged
    ("consent_events", "user_id"),  # consent is given by a record, never inferred by a merge
    ("renewal_reminders", "recipient_id"),  # to whom a reminder went: history, not ownership
    ("user_match_keys", "user_id"),  # the user's own lookup keys, derived from their row
}
"""Every foreign key to ``users.id`` is in one of these sets (a test checks the
schema): a new table referencing users must decide whether a merge moves its rows."""


class FieldConflict(BaseModel):
    kept: Any = Field(description="The survivor's value, which stays")
    discarded: Any = Field(description="The duplicate's value")


class MergeResult(BaseModel):
    merge_id: int
    survivor_id: int
    duplicate_id: int
    merged_at: datetime
    moved_booking_ids: list[int]
    filled: dict[str, Any] = Field(description="Survivor fields that were blank: their values now")
    conflicts: dict[str, FieldConflict] = Field(description="Fields where both had a value")
    alias: str = Field(description="The duplicate's email, now an alias of the survivor")
    total_bookings: int = Field(description="The survivor's, after the merge")
    total_spent: str = Field(description="The survivor's, after the merge", examples=["150.00"])


class UnmergeResult(BaseModel):
    merge_id: int
    survivor_id: int
    duplicate_id: int
    returned_booking_ids: list[int]
    cleared: list[str] = Field(description="Filled fields cleared on the survivor again")
    kept: list[str] = Field(description="Filled fields changed since the merge, so kept")


LOCK_PAIR = """
    SELECT *, rft_phone_e164(phone) AS phone_e164
    FROM users WHERE id IN (:first, :second) ORDER BY id FOR UPDATE
"""
"""Both users, locked in id order, with their phones as the duplicate scan compares them."""
HAS_ABSORBED = "SELECT min(id) FROM users WHERE merged_into = :user_id"
MOVE_BOOKINGS = """
    UPDATE bookings SET user_id = :to_user, updated_at = now()
    WHERE user_id = :from_user AND id = ANY(CAST(:booking_ids AS integer[]))
    RETURNING id
"""
BOOKINGS_OF = "SELECT id FROM bookings WHERE user_id = :user_id ORDER BY id"
MOVE_ATTENDANCES = """
    WITH moved AS (
        UPDATE booking_attendees SET user_id = :to_user
        WHERE user_id = :from_user AND (CAST(:email AS text) IS NULL OR email = :email)
        RETURNING id
    )
    UPDATE certificates SET user_id = :to_user WHERE attendee_id IN (SELECT id FROM moved)
"""
"""A person's attendances and the certificates they earned, to another user: all of
them on a merge (``email`` null), those booked under ``email`` on an unmerge."""
REPLAYED_CUSTOMER = """
    UPDATE idempotency_keys
    SET response_body = jsonb_set(response_body, '{customerId}', to_jsonb(CAST(:user_id AS int)))
    WHERE booking_id = ANY(CAST(:booking_ids AS integer[])) AND response_body ? 'customerId'
"""
COUNTED = """
    SELECT rft_apply_user_counts(ARRAY[
        ROW(role, coalesce(customer_type, ''), total_bookings > 0, 0, :delta)::user_counts])
    FROM users WHERE id = :user_id
"""
"""A merged user leaves ``user_counts`` (-1) and an unmerged one comes back (+1)."""
MARK_MERGED = """
    UPDATE users SET merged_into = :survivor_id, updated_at = now() WHERE id = :duplicate_id
"""
ADD_ALIAS = """
    INSERT INTO user_email_aliases (email, user_id, merged_user_id)
    VALUES (:email, :survivor_id, :duplicate_id)
"""
RECORD_MERGE = """
    INSERT INTO user_merges (survivor_id, duplicate_id, actor, actor_id, moved_booking_ids,
                             filled, conflicts)
    VALUES (:survivor_id, :duplicate_id, :actor, :actor_id, CAST(:moved AS integer[]),
            CAST(:filled AS jsonb), CAST(:conflicts AS jsonb))
    RETURNING id, merged_at
"""
STATISTICS = "SELECT total_bookings, total_spent FROM users WHERE id = :user_id"
OPEN_MERGE = f"""
    SELECT id, moved_booking_ids, filled,
           merged_at < now() - interval '{UNMERGE_WINDOW.days} days' AS expired
    FROM user_merges
    WHERE survivor_id = :survivor_id AND duplicate_id = :duplicate_id AND unmerged_at IS NULL
    ORDER BY id DESC LIMIT 1
"""
BOOKINGS_TO_RETURN = f"""
    SELECT id FROM bookings
    WHERE user_id = :survivor_id
      AND (id = ANY(CAST(:moved AS integer[]))
           OR {normalized_email_sql("contact_details ->> 'email'")} = :email)
    ORDER BY id
"""
CLOSE_MERGE = """
    UPDATE user_merges SET unmerged_at = now(), unmerged_by = :actor, unmerged_by_id = :actor_id
    WHERE id = :merge_id
"""
FORGET_CANDIDATES = (
    "DELETE FROM duplicate_candidates WHERE user_id = :duplicate_id OR other_id = :duplicate_id"
)
"""A merged user's pairs go now; the survivor's new ones come with the next scan."""
REMOVE_ALIAS = "DELETE FROM user_email_aliases WHERE merged_user_id = :duplicate_id"
UNMARK_MERGED = "UPDATE users SET merged_into = NULL, updated_at = now() WHERE id = :user_id"


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _same(field: str, survivor: Any, duplicate: Any) -> bool:
    """Equal once case and spacing stop mattering; phones that are one number in E.164
    (``rft_phone_e164``, the duplicate scan's rule) are the same."""
    if field == "phone" and survivor.phone_e164 is not None:
        return bool(survivor.phone_e164 == duplicate.phone_e164)
    first, second = getattr(survivor, field), getattr(duplicate, field)
    if isinstance(first, str) and isinstance(second, str):
        return " ".join(first.lower().split()) == " ".join(second.lower().split())
    return bool(first == second)


def profile_outcome(survivor: Any, duplicate: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(filled, conflicts)``: ``{field: {old, new}}`` for blank survivor fields the
    duplicate fills, ``{field: {kept, discarded}}`` where both differ (survivor's kept)."""
    filled: dict[str, Any] = {}
    conflicts: dict[str, Any] = {}
    for field in (*PROFILE_FIELDS, *PREFERENCE_FIELDS):
        kept, other = getattr(survivor, field), getattr(duplicate, field)
        if field in PROFILE_FIELDS and _is_blank(kept) and not _is_blank(other):
            filled[field] = {"old": kept, "new": other}
        elif not _is_blank(kept) and not _is_blank(other) and not _same(field, survivor, duplicate):
            conflicts[field] = {"kept": kept, "discarded": other}
    if "company_name" in filled and survivor.customer_type != "corporate":
        filled["customer_type"] = {"old": survivor.customer_type, "new": "corporate"}
    return filled, conflicts


def _refuse_unmergeable(survivor: Any, duplicate: Any, connection: Connection) -> None:
    _refuse_erased(survivor, duplicate)
    staff = [user for user in (survivor, duplicate) if user.role != "customer"]
    if staff:
        roles = f"{survivor.role} {survivor.id} and {duplicate.role} {duplicate.id}"
        raise Conflict(
            f"only customers can be merged, not {roles}: staff accounts are sign-ins",
            field="duplicate_id",
        )
    for user in (duplicate, survivor):
        if user.merged_into is not None:
            raise Conflict(
                f"user {user.id} was already merged into user {user.merged_into}; "
                "merges do not chain",
                field="duplicate_id" if user is duplicate else None,
            )
    absorbed = connection.execute(HAS_ABSORBED, {"user_id": duplicate.id}).scalar()
    if absorbed is not None:
        raise Conflict(
            f"user {duplicate.id} already absorbed user {absorbed}; merges do not chain: "
            f"merge user {survivor.id} into user {duplicate.id} instead",
            field="duplicate_id",
        )


def _refuse_erased(survivor: Any, duplicate: Any) -> None:
    for user in (survivor, duplicate):
        if user.erased_at is not None:
            raise Conflict(
                f"user {user.id} was erased (UK GDPR); erased records are never merged or unmerged",
                field="duplicate_id" if user is duplicate else None,
            )


def _lock_pair(connection: Connection, survivor_id: int, duplicate_id: int) -> tuple[Any, Any]:
    rows = {
        row.id: row
        for row in connection.execute(LOCK_PAIR, {"first": survivor_id, "second": duplicate_id})
    }
    if survivor_id not in rows:
        raise NotFound(f"user {survivor_id} does not exist")
    if duplicate_id not in rows:
        raise NotFound(f"user {duplicate_id} does not exist", field="duplicate_id")
    return rows[survivor_id], rows[duplicate_id]


def _move_bookings(
    connection: Connection, booking_ids: list[int], from_user: int, to_user: int
) -> list[int]:
    moved = sorted(
        connection.execute(
            MOVE_BOOKINGS, {"from_user": from_user, "to_user": to_user, "booking_ids": booking_ids}
        ).scalars()
    )
    connection.execute(REPLAYED_CUSTOMER, {"user_id": to_user, "booking_ids": moved})
    return moved


def _audit(
    connection: Connection, action: str, user_id: int, actor: Staff, changes: dict[str, Any]
) -> None:
    audit(connection, user_id, actor=Actor(actor.email, actor.id), action=action, changes=changes)


def _write_fields(connection: Connection, user_id: int, values: dict[str, Any]) -> None:
    if not values:
        return
    # An unmerge takes the names from the merge's record: only known columns become SQL.
    unknown = set(values) - FILLABLE_FIELDS
    if unknown:
        raise ValueError(f"not a field a merge fills: {', '.join(sorted(unknown))}")
    assignments = ", ".join(f"{field} = :{field}" for field in values)
    connection.execute(
        f"UPDATE users SET {assignments}, updated_at = now() WHERE id = :user_id",
        {"user_id": user_id, **values},
    )


def merge_users(survivor_id: int, duplicate_id: int, *, actor: Staff) -> MergeResult:
    """Merge ``duplicate_id`` into ``survivor_id`` (one transaction); a ``DomainError`` if not."""
    if survivor_id == duplicate_id:
        raise Conflict("a user cannot be merged into itself", field="duplicate_id")

    def merge(connection: Connection) -> MergeResult:
        survivor, duplicate = _lock_pair(connection, survivor_id, duplicate_id)
        _refuse_unmergeable(survivor, duplicate, connection)
        booking_ids = list(connection.execute(BOOKINGS_OF, {"user_id": duplicate_id}).scalars())
        moved = _move_bookings(connection, booking_ids, duplicate_id, survivor_id)
        connection.execute(
            MOVE_ATTENDANCES, {"from_user": duplicate_id, "to_user": survivor_id, "email": None}
        )
        filled, conflicts = profile_outcome(survivor, duplicate)
        _write_fields(connection, survivor_id, {f: change["new"] for f, change in filled.items()})
        ids = {"survivor_id": survivor_id, "duplicate_id": duplicate_id}
        connection.execute(MARK_MERGED, ids)
        connection.execute(COUNTED, {"user_id": duplicate_id, "delta": -1})
        connection.execute(ADD_ALIAS, {**ids, "email": duplicate.email_normalized})
        connection.execute(FORGET_CANDIDATES, ids)
        carry_objections(connection, duplicate_id, survivor_id, actor_id=actor.id)
        record = connection.execute(
            RECORD_MERGE,
            {
                **ids,
                "actor": actor.email,
                "actor_id": actor.id,
                "moved": moved,
                "filled": json.dumps(filled),
                "conflicts": json.dumps(conflicts),
            },
        ).one()
        _audit(
            connection,
            "merge",
            survivor_id,
            actor,
            {
                "mergedUser": {"old": None, "new": duplicate_id},
                "movedBookingIds": {"old": None, "new": moved},
                **{to_camel(field): change for field, change in filled.items()},
            },
        )
        _audit(
            connection,
            "merge",
            duplicate_id,
            actor,
            {"mergedInto": {"old": None, "new": survivor_id}},
        )
        statistics = connection.execute(STATISTICS, {"user_id": survivor_id}).one()
        return MergeResult(
            merge_id=record.id,
            survivor_id=survivor_id,
            duplicate_id=duplicate_id,
            merged_at=record.merged_at,
            moved_booking_ids=moved,
            filled={field: change["new"] for field, change in filled.items()},
            conflicts={field: FieldConflict(**pair) for field, pair in conflicts.items()},
            alias=duplicate.email_normalized,
            total_bookings=statistics.total_bookings,
            total_spent=money(statistics.total_spent),
        )

    return run_transaction(merge)


def unmerge_users(survivor_id: int, duplicate_id: int, *, actor: Staff) -> UnmergeResult:
    """Reverse the open merge of ``duplicate_id`` into ``survivor_id`` (within 30 days)."""

    def unmerge(connection: Connection) -> UnmergeResult:
        survivor, duplicate = _lock_pair(connection, survivor_id, duplicate_id)
        _refuse_erased(survivor, duplicate)
        ids = {"survivor_id": survivor_id, "duplicate_id": duplicate_id}
        record = connection.execute(OPEN_MERGE, ids).first()
        if record is None or duplicate.merged_into != survivor_id:
            raise Conflict(
                f"user {duplicate_id} is not merged into user {survivor_id}", field="duplicate_id"
            )
        if record.expired:
            raise Conflict(
                f"merge {record.id} is older than {UNMERGE_WINDOW.days} days and cannot be undone",
                field="duplicate_id",
            )
        to_return = list(
            connection.execute(
                BOOKINGS_TO_RETURN,
                {
                    **ids,
                    "moved": record.moved_booking_ids,
                    "email": duplicate.email_normalized,
                    "whitespace": EMAIL_WHITESPACE,
                },
            ).scalars()
        )
        connection.execute(COUNTED, {"user_id": duplicate_id, "delta": 1})
        returned = _move_bookings(connection, to_return, survivor_id, duplicate_id)
        connection.execute(
            MOVE_ATTENDANCES,
            {
                "from_user": survivor_id,
                "to_user": duplicate_id,
                "email": duplicate.email_normalized,
            },
        )
        unchanged = {
            field: change
            for field, change in record.filled.items()
            if getattr(survivor, field) == change["new"]
        }
        _write_fields(
            connection, survivor_id, {f: change["old"] for f, change in unchanged.items()}
        )
        connection.execute(REMOVE_ALIAS, ids)
        connection.execute(UNMARK_MERGED, {"user_id": duplicate_id})
        connection.execute(
            CLOSE_MERGE, {"merge_id": record.id, "actor": actor.email, "actor_id": actor.id}
        )
        _audit(
            connection,
            "unmerge",
            survivor_id,
            actor,
            {
                "mergedUser": {"old": duplicate_id, "new": None},
                "returnedBookingIds": {"old": None, "new": returned},
                **{
                    to_camel(field): {"old": change["new"], "new": change["old"]}
                    for field, change in unchanged.items()
                },
            },
        )
        _audit(
            connection,
            "unmerge",
            duplicate_id,
            actor,
            {"mergedInto": {"old": survivor_id, "new": None}},
        )
        return UnmergeResult(
            merge_id=record.id,
            survivor_id=survivor_id,
            duplicate_id=duplicate_id,
            returned_booking_ids=returned,
            cleared=sorted(unchanged),
            kept=sorted(set(record.filled) - set(unchanged)),
        )

    return run_transaction(unmerge)
