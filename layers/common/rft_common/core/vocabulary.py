"""The business's shared words that the code needs as values.

What the database decides stays in the database (migration 0013: a booking that holds
a place, a session's seats and price); this module holds what Python hands to it.
"""

from __future__ import annotations

ACTIVE_BOOKING_STATUSES = ("pending", "confirmed")
"""A booking in one of these statuses is still to happen: a second one for the same
email and session is refused (409). Bound as a list: ``status = ANY(:statuses)``."""

BUSINESS_TIME_ZONE_NAME = "Europe/London"
"""The company's calendar: a certificate's issue date is the session's last day here."""


def course_type_of(courses_alias: str) -> str:
    """SQL for the booking site's course-type code (EFAW, FAW, ...) of a ``courses`` row.

    Derived from the name (``rft_course_type``, migration 0013) until ``courses`` stores
    its code; then this becomes ``f"{courses_alias}.course_type"``, the one place to
    change."""
    return f"rft_course_type({courses_alias}.name)"
