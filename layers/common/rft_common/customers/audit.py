"""The one writer of ``user_audit_log`` rows: who did what to or with a person's data.

Every audit row (an admin's edit, a merge or unmerge, a data export, an erasure) is
written by the one statement here, so what each column holds is decided once
(``rft_common.db.tables.user_audit_log`` describes each action's ``changes``). The rows
are written inside the caller's transaction, with the change they record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rft_common.db.postgres import Connection


@dataclass(frozen=True)
class Actor:
    """Who acts, as the audit log records it: an admin's email and user id, or an
    operator's or a job's name (``rft-cli:<login>``, ``retention``) and no id."""

    name: str
    user_id: int | None = None


AUDIT = """
    INSERT INTO user_audit_log (user_id, actor, actor_id, action, reason, changes)
    SELECT entry.user_id, :actor, :actor_id, :action, :reason, entry.changes
    FROM jsonb_to_recordset(CAST(:entries AS jsonb)) AS entry(user_id integer, changes jsonb)
"""


def audit_each(
    connection: Connection,
    changes_by_user: Mapping[int, Mapping[str, Any]],
    *,
    actor: Actor,
    action: str,
    reason: str | None = None,
) -> None:
    """One row per user (in the mapping's order), each with that user's ``changes``,
    all by ``actor`` for one ``action`` and ``reason``: one statement however many."""
    entries = [
        {"user_id": user_id, "changes": changes} for user_id, changes in changes_by_user.items()
    ]
    connection.execute(
        AUDIT,
        {
            "entries": json.dumps(entries),
            "actor": actor.name,
            "actor_id": actor.user_id,
            "action": action,
            "reason": reason,
        },
    )


def audit(
    connection: Connection,
    user_id: int,
    *,
    actor: Actor,
    action: str,
    reason: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> None:
    """One row about one user."""
    audit_each(connection, {user_id: changes or {}}, actor=actor, action=action, reason=reason)
