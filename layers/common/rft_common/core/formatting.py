"""Values as the API writes them."""

from __future__ import annotations

from decimal import Decimal


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"
