"""An index on ``idempotency_keys.booking_id``, for merges and unmerges.

A merge rewrites the stored answers of the checkouts whose bookings it moves
(``customerId``), and an unmerge rewrites them back; both find those answers by
booking id. Without an index each of them read the whole table, which grows by a row
for every checkout with an ``Idempotency-Key``, while holding both customers locked.
Partial: answers without a booking (refused checkouts) are never looked up by it.
Building it locks the table's writes briefly (about a second per million rows).

Revision ID: 0012_idempotency_booking_index
Revises: 0011_search_document_column
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_idempotency_booking_index"
down_revision: str | None = "0011_search_document_column"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_idempotency_keys_booking_id"


def upgrade() -> None:
    op.create_index(
        INDEX,
        "idempotency_keys",
        ["booking_id"],
        postgresql_where=sa.text("booking_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="idempotency_keys")
