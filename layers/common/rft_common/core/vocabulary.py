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

MARKETING_EMAIL = "marketing_email"
RENEWAL_REMINDERS = "renewal_reminders"
CONSENT_PURPOSES = (MARKETING_EMAIL, RENEWAL_REMINDERS)
"""What a person may be written to for, each with its own consent history
(``consent_events``, view ``current_consents``)."""

EXPLICIT_CONSENT = "explicit_consent"
SOFT_OPT_IN = "soft_opt_in"
OBJECTION = "objection"
NO_BASIS = "none"
CONSENT_BASES = (EXPLICIT_CONSENT, SOFT_OPT_IN, OBJECTION, NO_BASIS)
"""A consent event's basis: explicit consent, a soft opt-in resting on a purchase (the
opt-out offered), an objection (unsubscribing, opting out: remembered for good) or none."""
MAY_WRITE_BASES = (EXPLICIT_CONSENT, SOFT_OPT_IN)
"""The bases under which a person may be written to for a purpose."""

CONSENT_SOURCES = ("checkout", "admin", "unsubscribe_link", "import", "backfill", "erasure")
"""Where a consent event came from."""

REMINDER_SKIP_REASONS = (
    "rebooked",
    "erased",
    "merged",
    "suppressed",
    "objected",
    "no_lawful_basis",
)
"""Why a renewal reminder due to someone was not sent (``renewal_reminders.skipped_reason``),
in the order they are judged: the first that applies is recorded."""
