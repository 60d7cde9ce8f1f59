"""The business's shared words that the code needs as values.

What the database decides stays in the database (migration 0013: a booking that holds
a place, a session's seats and price); this module holds what Python hands to it.
"""

from __future__ import annotations

ACTIVE_BOOKING_STATUSES = ("pending", "confirmed")
"""A booking in one of these statuses is still to happen: a second one for the same
email and session is refused (409). Bound as a list: ``status = ANY(:statuses)``."""

UNPAID_HOLD_MINUTES = 15
"""How long an anonymous unpaid booking holds its seats (``bookings.hold_expires_at``):
the payment window. A paid booking never waits for it (``session_seats.seats_committed``)."""

BUSINESS_TIME_ZONE = "Europe/London"
"""The company's calendar: dates people see and filter by are days here."""

ADMIN_ROLE = "admin"
STAFF_ROLES = ("admin", "instructor")
"""Roles of the company's own people; every other user is a customer."""
