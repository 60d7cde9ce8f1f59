"""Lambda SnapStart: what must be fresh in each environment restored from one snapshot.

With SnapStart, Lambda runs a function's init once per published version, snapshots
the memory and restores that snapshot into every new execution environment, so
whatever init created is shared by all of them. Init here opens no connection,
reads no secret or flag and creates no id: the connection pools, secrets and the flag cache
are made on the first request, after the restore. The one state to renew is the
``random`` module's seed (``rft_common.db.postgres`` draws retry jitter from it); without
that, every restored environment would draw the same jitter and retry in step.

``snapshot_restore_py`` ships only with Lambda's managed Python runtimes; elsewhere
(local stack, tests, tools) nothing is registered.
"""

from __future__ import annotations

import random


def renew_random_state() -> None:
    """Seed ``random`` afresh from the operating system."""
    random.seed()


def register_hooks() -> bool:
    """Register the after-restore hook if the runtime offers hooks; whether it did."""
    try:
        from snapshot_restore_py import register_after_restore
    except ImportError:
        return False
    register_after_restore(renew_random_state)
    return True


register_hooks()
