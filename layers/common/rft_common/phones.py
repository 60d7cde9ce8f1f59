"""Phone numbers in E.164, as the duplicate finder compares them.

The database normalises with ``rft_phone_e164`` (migration 0009), because every
writer (checkouts, the set-based backfill, the legacy app's plain SQL) must be
covered; ``tests/integration/test_phone_normalisation.py`` holds that function to
this one, which asks the ``phonenumbers`` library. Imported lazily: only merges
need it.
"""

from __future__ import annotations

UK_REGION = "GB"


def e164(raw: str | None) -> str | None:
    """``raw`` as E.164, read as a UK number unless it says otherwise; None if it
    cannot be a phone number."""
    if not raw:
        return None
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, UK_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
