"""The price of a booking: one rule, used by the payment intent, the booking, the
Stripe webhook and the sessions list.

    price = session price per person x participants, less the group discount,
            rounded to whole pence, halves up.

The price per person is the session's own, else its course's: ``session_seats.price``
in the database (migration 0013), which every statement of the checkout reads.

The group discount is the booking site's ("10% off for 5+ participants"): 10% at 5
or more participants by default, configurable per stack with
``GROUP_DISCOUNT_PERCENT`` and ``GROUP_DISCOUNT_MIN_PARTICIPANTS`` (``template.yaml``
Globals). The site computes the same figure (``Math.round(finalPrice * 100)`` pence),
so both settings must change together with the site.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from rft_common.core.settings import get_settings

PENNY = Decimal("0.01")


def booking_price(price_per_person: Decimal, participants: int) -> Decimal:
    """What ``participants`` places cost, in pounds with two decimals."""
    settings = get_settings()
    gross = price_per_person * participants
    if participants >= settings.group_discount_min_participants:
        gross -= gross * settings.group_discount_percent / 100
    return gross.quantize(PENNY, rounding=ROUND_HALF_UP)


def to_pence(pounds: Decimal) -> int:
    return int((pounds / PENNY).to_integral_value(rounding=ROUND_HALF_UP))
