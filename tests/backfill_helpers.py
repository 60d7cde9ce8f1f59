"""Legacy bookings and state snapshots for the backfill tests."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, text

from rft_common.backfill import BackfillMessage

INSERT_LEGACY_BOOKINGS = text("""
    INSERT INTO bookings (booking_reference, course_schedule_id, status, payment_status,
                          payment_amount, number_of_attendees, contact_details, created_at)
    SELECT 'RFT-TEST-' || (:offset + n), :session_id,
           coalesce(item ->> 'status', 'completed'),
           coalesce(item ->> 'payment_status', 'paid'),
           coalesce((item ->> 'amount')::numeric, 75.00), 1,
           item -> 'contact',
           timestamptz '2024-01-01' + n * interval '1 hour'
    FROM json_array_elements(CAST(:items AS json)) WITH ORDINALITY AS items(item, n)
    ORDER BY n
    RETURNING id
""")


def insert_legacy_bookings(
    connection: Connection, session_id: int, contacts: list[dict[str, Any] | None], **fields: Any
) -> list[int]:
    """Bookings as the legacy app stored them, one per contact document, ids in order.

    ``fields`` (status, payment_status, amount) apply to every booking.
    """
    offset = connection.execute(text("SELECT coalesce(max(id), 0) FROM bookings")).scalar_one()
    items = [{"contact": contact, **fields} for contact in contacts]
    parameters = {"session_id": session_id, "items": json.dumps(items), "offset": offset}
    return list(connection.execute(INSERT_LEGACY_BOOKINGS, parameters).scalars())


def contact(email: str | None, name: str | None = "Legacy Person", **more: Any) -> dict[str, Any]:
    return {"name": name, "email": email, **more}


def message(first: int, last: int, batch_id: str = "batch-1") -> BackfillMessage:
    return BackfillMessage(version=1, batchId=batch_id, firstBookingId=first, lastBookingId=last)


def state(engine: Engine) -> dict[str, list[tuple]]:
    """Everything the backfill may change, in a comparable form (no timestamps of runs)."""
    queries = {
        "users": "SELECT id, email_normalized, role, name, phone, company_name, customer_type, "
        "total_bookings, total_spent, first_booking_at, last_booking_at FROM users ORDER BY id",
        "links": "SELECT id, user_id FROM bookings ORDER BY id",
        "unlinkable": "SELECT booking_id, reason FROM backfill_unlinkable ORDER BY booking_id",
    }
    with engine.connect() as connection:
        return {
            name: [tuple(row) for row in connection.execute(text(query))]
            for name, query in queries.items()
        }
