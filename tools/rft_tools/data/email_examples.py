"""A realistic payload for every kind of message the outbox holds.

``rft mail screenshots`` renders each into ``docs/emails/`` and the tests render each, so
a new kind in ``rft_common.email.templates.KINDS`` needs its example here.
"""

from __future__ import annotations

from typing import Any

_BOOKING = {
    "reference": "RFT-2027-0412",
    "name": "Priya Shah",
    "course": "Emergency First Aid at Work",
    "starts_at": "2027-03-18T09:00:00+00:00",
    "ends_at": "2027-03-18T16:00:00+00:00",
    "venue": "Leeds City Centre Training Room",
    "venue_address": "12 Park Square East, Leeds LS1 2NE",
    "places": 3,
    "amount": "225.00",
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "booking_confirmation": _BOOKING | {"reason": None},
    "booking_unplaced": _BOOKING | {"reason": "session_full"},
    "staff_password_reset": {
        "name": "Lex Morgan",
        "link": "https://admin.reactfasttraining.co.uk/admin/reset-password?token=example",
        "minutes": 30,
        "expires_at": "2027-03-18T10:30:00+00:00",
    },
    "staff_password_changed": {
        "name": "Lex Morgan",
        "changed_at": "2027-03-18T10:05:00+00:00",
        "by_reset": True,
    },
    "renewal_reminder": {
        "name": "Priya Shah",
        "stage": 30,
        "people": [
            {
                "name": "Priya Shah",
                "own": True,
                "course": "Emergency First Aid at Work",
                "course_type": "EFAW",
                "expires_on": "2027-03-18",
                "certificate_number": "RFT-EFAW-2024-00001234",
                "link": "https://reactfasttraining.co.uk/courses/efaw?utm_source=reminder"
                "&utm_medium=email&utm_campaign=renewal&reminder=41",
            },
            {
                "name": "Tom Okafor",
                "own": False,
                "course": "Emergency First Aid at Work",
                "course_type": "EFAW",
                "expires_on": "2027-03-18",
                "certificate_number": "RFT-EFAW-2024-00001235",
                "link": "https://reactfasttraining.co.uk/courses/efaw?utm_source=reminder"
                "&utm_medium=email&utm_campaign=renewal&reminder=42",
            },
        ],
        "unsubscribe_url": "https://reactfasttraining.co.uk/api/unsubscribe/MTIzOnJlbmV3YWw.example",
    },
}
