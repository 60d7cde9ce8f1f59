"""Precision and recall of the duplicate finder on generated data with planted duplicates.

``rft seed legacy`` gives every address of person ``n`` the digits ``n`` in its local
part, so the true duplicates are the customers whose local parts carry the same
digits. The backfill's set-based floor creates the customers (in bulk, so they are
queued) and the duplicate scan finds the pairs.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bench.backfill import link_everything
from rft_common.users.duplicates import scan_queued
from rft_tools.data.legacy import seed_legacy

pytestmark = pytest.mark.usefixtures("db")

TRUE_PAIRS = text("""
    SELECT a.id, b.id
    FROM users AS a JOIN users AS b
      ON regexp_replace(split_part(a.email_normalized, '@', 1), '[^0-9]', '', 'g')
         = regexp_replace(split_part(b.email_normalized, '@', 1), '[^0-9]', '', 'g')
     AND a.id < b.id
    WHERE a.role = 'customer' AND b.role = 'customer'
""")
FOUND_PAIRS = text("SELECT user_id, other_id FROM duplicate_candidates")


def precision_and_recall(db) -> tuple[float, float, int, int]:
    with db.connect() as connection:
        truth = {tuple(row) for row in connection.execute(TRUE_PAIRS)}
        found = {tuple(row) for row in connection.execute(FOUND_PAIRS)}
    right = len(truth & found)
    return right / len(found), right / len(truth), len(truth), len(found)


def counts(db) -> tuple[int, int, int]:
    """Customers, customers queued for the scan, candidate pairs."""
    with db.connect() as connection:
        return tuple(
            connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM users WHERE role = 'customer'), "
                    "(SELECT count(*) FROM duplicate_scan_queue), "
                    "(SELECT count(*) FROM duplicate_candidates)"
                )
            ).one()
        )


def test_planted_duplicates_are_found_with_high_precision_and_recall(db):
    with db.begin() as connection:
        seed_legacy(connection, bookings=5000, customers=1500, duplicate_share=0.3)
        link_everything(connection)
    customers, queued, found_before_the_scan = counts(db)
    assert (queued, found_before_the_scan) == (customers, 0)
    # Chunks of 100: each statement stays far inside the 5 s socket timeout on a slow
    # runner (a chunk of 500 took longer once on a loaded 2-core machine).
    assert scan_queued(budget_seconds=600, chunk=100) == (customers, 0)

    precision, recall, true_pairs, found_pairs = precision_and_recall(db)

    print(
        f"\nduplicates: {true_pairs} planted pairs, {found_pairs} found, "
        f"precision {precision:.3f}, recall {recall:.3f}"
    )
    assert true_pairs > 100
    assert precision >= 0.95
    assert recall >= 0.9
