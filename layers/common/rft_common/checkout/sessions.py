"""Course sessions open for booking, with their seats counted the way a booking counts them
(``session_seats``, migration 0013), in the booking site's vocabulary (``clients.md``)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rft_common.db.postgres import run_transaction

AVAILABLE_SESSIONS = """
    SELECT s.id, s.course_id, c.course_type, c.name AS course_name,
           c.duration, c.category, s.start_datetime, s.end_datetime, s.venue,
           s.max_capacity, s.status, s.price, s.max_capacity - s.seats_taken AS available_spots
    FROM session_seats AS s
    JOIN courses AS c ON c.id = s.course_id
    WHERE s.status <> 'cancelled' AND s.start_datetime > now()
      AND s.seats_taken < s.max_capacity
      AND (CAST(:course AS text) IS NULL OR c.course_type = upper(CAST(:course AS text)))
    ORDER BY s.start_datetime, s.id
"""
"""``session_seats`` is migration 0013's (0018's): the seats and the price as the payment
intent and the booking read them; the list counts live unpaid holds as taken (0018).
``courses.course_type`` is checked by the database against the site's codes (0015)."""
SESSION_FOR_CHECKOUT = """
    SELECT id, status, start_datetime <= now() AS started, max_capacity, price, seats_committed
    FROM session_seats
    WHERE id = :session_id
"""
"""The payment intent's check: a paid checkout counts committed seats only (migration 0018),
so live unpaid holds never refuse it, as they never refuse the paid booking."""

VENUE_CODES = frozenset({"SHEFFIELD", "LEEDS", "BARNSLEY", "DONCASTER", "ROTHERHAM"})
"""The booking site's venue codes (``VenueCode`` in ``src/types/booking.types.ts``)."""


class AvailableSession(BaseModel):
    """A session as the booking site's session picker reads it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: int
    course_id: int
    course_type: str = Field(examples=["EFAW"])
    course_name: str
    course_description: str | None = Field(description="The course's duration and category")
    start_datetime: datetime
    end_datetime: datetime
    venue_code: str | None = Field(
        description="The site's code for the venue's town, when the venue names one",
        examples=["SHEFFIELD"],
    )
    venue_name: str
    venue_address: str | None = Field(description="Not recorded yet: always null")
    instructor_name: str | None = Field(description="Not recorded yet: always null")
    max_capacity: int
    available_spots: int = Field(description="Seats left, counted as a booking counts them")
    price: str = Field(description="GBP per person, decimal string", examples=["75.00"])
    is_full: bool
    status: str


def _description(row: Any) -> str | None:
    parts = [part for part in (row.duration, row.category) if part]
    return ", ".join(parts) or None


def venue_code(venue: str) -> str | None:
    """The site's code for the town a venue's name starts with ("Sheffield Hall": SHEFFIELD)."""
    town = re.match(r"[A-Za-z]*", venue.strip()).group().upper()
    return town if town in VENUE_CODES else None


def available_sessions(course: str | None) -> list[dict[str, Any]]:
    """Published sessions that have not started and have a seat left, soonest first."""
    rows = run_transaction(
        lambda connection: connection.execute(AVAILABLE_SESSIONS, {"course": course}).all()
    )
    return [
        AvailableSession(
            id=row.id,
            course_id=row.course_id,
            course_type=row.course_type,
            course_name=row.course_name,
            course_description=_description(row),
            start_datetime=row.start_datetime,
            end_datetime=row.end_datetime,
            venue_code=venue_code(row.venue),
            venue_name=row.venue,
            venue_address=None,
            instructor_name=None,
            max_capacity=row.max_capacity,
            available_spots=row.available_spots,
            price=f"{Decimal(row.price):.2f}",
            is_full=row.available_spots <= 0,
            status=row.status,
        ).model_dump(mode="json", by_alias=True)
        for row in rows
    ]
