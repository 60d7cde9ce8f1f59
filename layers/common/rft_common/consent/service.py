"""Consent as records: who may be written to, for what, on what basis, since when.

Every change is one more row of ``consent_events`` (append-only); the current state of a
person and purpose is its latest row (the view ``current_consents``). Bases and purposes
are in ``core.vocabulary``. ``users.marketing_consent`` is a cache of the current
``marketing_email`` state, kept by ``record_consent`` in the same statement.

Two writers of one person's consent serialise on that person's ``users`` row: a caller
that decides from the current state (``unless_current``) holds the row first
(``hold_people``, or the checkout's customer upsert), then records in a later statement,
whose snapshot sees whatever the other writer committed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from rft_common.core.settings import get_settings
from rft_common.core.vocabulary import (
    CONSENT_PURPOSES,
    EXPLICIT_CONSENT,
    MARKETING_EMAIL,
    MAY_WRITE_BASES,
    NO_BASIS,
    OBJECTION,
    RENEWAL_REMINDERS,
    SOFT_OPT_IN,
)
from rft_common.db.postgres import Connection, run_transaction

RECORD_CONSENT = """
WITH recorded AS (
    INSERT INTO consent_events
        (user_id, purpose, basis, source, notice_version, booking_id, actor_id)
    SELECT u.id, p.purpose, :basis, :source, :notice_version, :booking_id, :actor_id
    FROM users AS u CROSS JOIN unnest(CAST(:purposes AS text[])) AS p (purpose)
    WHERE u.id = ANY(:user_ids)
      AND NOT coalesce(
          (SELECT e.basis FROM consent_events AS e
           WHERE e.user_id = u.id AND e.purpose = p.purpose
           ORDER BY e.recorded_at DESC, e.id DESC LIMIT 1) = ANY(:unless_current),
          false)
    ORDER BY u.id, p.purpose
    RETURNING user_id, purpose
), cached AS (
    UPDATE users SET marketing_consent = :may_write, updated_at = now()
    WHERE id IN (SELECT user_id FROM recorded WHERE purpose = :marketing_email)
      AND marketing_consent <> :may_write
)
SELECT DISTINCT user_id FROM recorded ORDER BY user_id
"""

CHECKOUT = "checkout"
ADMIN = "admin"
ERASURE = "erasure"
UNSUBSCRIBE_LINK = "unsubscribe_link"

HOLD_PEOPLE = """
SELECT id FROM users
WHERE id = ANY(:user_ids)
   OR id IN (SELECT merged_into FROM users WHERE id = ANY(:user_ids))
ORDER BY id FOR NO KEY UPDATE
"""


def record_consent(
    connection: Connection,
    user_ids: Sequence[int],
    purpose: str | Sequence[str],
    basis: str,
    source: str,
    notice_version: str | None = None,
    booking_id: int | None = None,
    actor_id: int | None = None,
    *,
    unless_current: Collection[str] = (),
) -> list[int]:
    """Append one event per existing user of ``user_ids`` and purpose (``purpose``: one
    or several), in one statement; the ids of the users recorded. A user whose current
    basis for a purpose is one of ``unless_current`` is left as they are for it (hold
    their rows first when that decision must not race another writer)."""
    return connection.execute(
        RECORD_CONSENT,
        {
            "user_ids": list(user_ids),
            "purposes": [purpose] if isinstance(purpose, str) else list(purpose),
            "basis": basis,
            "source": source,
            "notice_version": notice_version,
            "booking_id": booking_id,
            "actor_id": actor_id,
            "unless_current": list(unless_current),
            "may_write": basis in MAY_WRITE_BASES,
            "marketing_email": MARKETING_EMAIL,
        },
    ).scalars()


def hold_people(connection: Connection, user_ids: Sequence[int]) -> list[int]:
    """Lock the users rows of ``user_ids``, and of the customers any of them was merged
    into (the same people), until the transaction ends; their ids. The consent decisions
    made after this see every other writer's, and none interleaves."""
    return connection.execute(HOLD_PEOPLE, {"user_ids": list(user_ids)}).scalars()


def object_to(
    connection: Connection, user_ids: Sequence[int], purpose: str, source: str
) -> list[int]:
    """Record an objection for ``purpose`` of ``user_ids`` and the customers they were
    merged into, unless it is already their current state (idempotent, also against a
    concurrent objection): the ids newly recorded."""
    people = hold_people(connection, user_ids)
    return record_consent(
        connection, people, purpose, OBJECTION, source, unless_current=(OBJECTION,)
    )


def carry_objections(
    connection: Connection, from_id: int, to_id: int, *, actor_id: int
) -> list[str]:
    """A merge: ``from_id``'s current objections hold for ``to_id`` too (the same
    person; source ``admin``, the merging admin as actor). Consent is never carried: it
    is not inferred. Call with both rows held; the purposes carried."""
    objected = [
        state.purpose for state in consent_states(connection, from_id) if state.basis == OBJECTION
    ]
    if not objected:
        return []
    record_consent(
        connection,
        [to_id],
        objected,
        OBJECTION,
        ADMIN,
        actor_id=actor_id,
        unless_current=(OBJECTION,),
    )
    return objected


def record_checkout_choices(
    connection: Connection,
    user_id: int,
    booking_id: int,
    *,
    marketing_consent: bool | None,
    reminders_opt_out: bool | None,
) -> None:
    """What a paid checkout says about its buyer, resting on ``booking_id`` (call it in
    the booking's transaction, after the customer's upsert has locked their row):

    - ``marketing_consent``: explicit consent to marketing email and renewal reminders
      (the reminders excepted if opted out), under the configured wording version;
    - ``reminders_opt_out``: an objection to renewal reminders (none recorded twice);
    - neither: a soft opt-in to renewal reminders (the buyer of a course, offered the
      opt-out the configured notice version words), unless the buyer has objected or
      consented explicitly, or no notice version is configured (no opt-out was offered).

    An unticked consent box says nothing: no event. At most two statements, one in
    the usual cases.
    """
    notice_version = get_settings().checkout_consent_notice_version
    if marketing_consent:
        purposes = [MARKETING_EMAIL] + ([] if reminders_opt_out else [RENEWAL_REMINDERS])
        record_consent(
            connection, [user_id], purposes, EXPLICIT_CONSENT, CHECKOUT, notice_version, booking_id
        )
    if reminders_opt_out:
        record_consent(
            connection,
            [user_id],
            RENEWAL_REMINDERS,
            OBJECTION,
            CHECKOUT,
            notice_version,
            booking_id,
            unless_current=(OBJECTION,),
        )
    elif not marketing_consent and notice_version is not None:
        record_consent(
            connection,
            [user_id],
            RENEWAL_REMINDERS,
            SOFT_OPT_IN,
            CHECKOUT,
            notice_version,
            booking_id,
            unless_current=(OBJECTION, EXPLICIT_CONSENT),
        )


class ConsentState(BaseModel):
    """A person's current consent for one purpose (the latest event of its history)."""

    purpose: str = Field(description="marketing_email or renewal_reminders")
    basis: str = Field(
        description="explicit_consent, soft_opt_in, objection, or none (also when nothing "
        "was ever recorded)"
    )
    may_write: bool = Field(description="True for explicit consent and a soft opt-in")
    source: str | None = Field(
        description="checkout, admin, unsubscribe_link, import, backfill or erasure; null "
        "when nothing was recorded"
    )
    notice_version: str | None = Field(description="The wording or opt-out notice shown")
    recorded_at: datetime | None


CURRENT_CONSENTS = """
SELECT purpose, basis, source, notice_version, recorded_at
FROM current_consents WHERE user_id = :user_id
"""


def consent_states(connection: Connection, user_id: int) -> list[ConsentState]:
    """``user_id``'s current consent, one entry per purpose (``CONSENT_PURPOSES`` order;
    one statement)."""
    rows = {row.purpose: row for row in connection.execute(CURRENT_CONSENTS, {"user_id": user_id})}
    states = []
    for purpose in CONSENT_PURPOSES:
        row = rows.get(purpose)
        states.append(
            ConsentState(
                purpose=purpose,
                basis=row.basis if row else NO_BASIS,
                may_write=row is not None and row.basis in MAY_WRITE_BASES,
                source=row.source if row else None,
                notice_version=row.notice_version if row else None,
                recorded_at=row.recorded_at if row else None,
            )
        )
    return states


FORGET_CONSENTS = """
WITH people AS (
    SELECT id FROM users WHERE id = ANY(:user_ids) AND erased_at IS NULL
), forgotten AS (
    DELETE FROM consent_events WHERE user_id IN (SELECT id FROM people)
)
INSERT INTO consent_events (user_id, purpose, basis, source)
SELECT people.id, p.purpose, :objection, :erasure
FROM people CROSS JOIN unnest(CAST(:purposes AS text[])) AS p (purpose)
ORDER BY people.id, p.purpose
"""


def forget_consents(connection: Connection, user_ids: Sequence[int]) -> None:
    """Erasure (of ``user_ids`` not yet erased): their consent histories go (wording
    versions, purchases, admins, dates), and one objection per purpose stays in their
    place, source ``erasure``: what remains of the person (their certificates) is
    never written to."""
    connection.execute(
        FORGET_CONSENTS,
        {
            "user_ids": list(user_ids),
            "purposes": list(CONSENT_PURPOSES),
            "objection": OBJECTION,
            "erasure": ERASURE,
        },
    )


def unsubscribe(user_id: int, purpose: str) -> bool:
    """An unsubscribe link used (``purpose`` of ``user_id``): an objection, recorded
    once however often the link is used, also for the customer a merged record was
    merged into (the same person). Whether anything was newly recorded."""

    return bool(
        run_transaction(
            lambda connection: object_to(connection, [user_id], purpose, UNSUBSCRIBE_LINK)
        )
    )
