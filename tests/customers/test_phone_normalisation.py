"""The database's phone normalisation (``rft_phone_e164``, which the duplicate scan and
merges use) agrees with the phonenumbers library."""

from __future__ import annotations

import itertools

import phonenumbers
from sqlalchemy import text

UK_REGION = "GB"


def e164(raw: str) -> str | None:
    """The library's E.164 for ``raw``, read as a UK number unless it says otherwise."""
    try:
        number = phonenumbers.parse(raw, UK_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


NATIONAL_NUMBERS = (
    "07911123456", "01144960000", "02079460958", "01142760000", "03001234567",
    "08081570000", "01914980123", "07400123456", "01709123456", "02920123456",
)  # fmt: skip
"""Valid UK numbers (phonenumbers' is_valid_number): mobile, geographic, non-geographic."""


def spellings(national: str) -> list[str]:
    """How customers type one UK number."""
    significant = national[1:]
    mobile_style = f"{national[:5]} {national[5:]}"
    area_style = f"{national[:4]} {national[4:7]} {national[7:]}"
    return [
        national, mobile_style, area_style, f"({national[:4]}) {national[4:]}",
        f"{national[:5]}-{national[5:]}", f"+44 {significant}", f"+44 (0){significant}",
        f"+44 (0) {significant[:4]} {significant[4:]}", f"0044 {significant}",
        f"44{significant}", f"+44-{significant[:3]}-{significant[3:]}", f" {national} ",
        f"{national[:5]}.{national[5:]}", significant,
    ]  # fmt: skip


OTHER_INPUT = [
    "+33 1 23 45 67 89", "+1 415 555 0100", "0033 1 23 45 67 89", "12345", "0770090012",
    "not a phone", "", "+44", "07700 900123 ext 4",
]  # fmt: skip


def test_uk_numbers_in_every_spelling_normalise_as_phonenumbers_says(db):
    corpus = list(itertools.chain.from_iterable(spellings(n) for n in NATIONAL_NUMBERS))
    with db.connect() as connection:
        stored = dict(
            connection.execute(
                text("SELECT raw, rft_phone_e164(raw) FROM unnest(CAST(:raw AS text[])) AS raw"),
                {"raw": corpus},
            ).all()
        )
    assert stored == {raw: e164(raw) for raw in corpus}
    assert len(set(stored.values())) == len(NATIONAL_NUMBERS)


def test_other_numbers_are_international_or_not_numbers_at_all(db):
    with db.connect() as connection:
        stored = dict(
            connection.execute(
                text("SELECT raw, rft_phone_e164(raw) FROM unnest(CAST(:raw AS text[])) AS raw"),
                {"raw": OTHER_INPUT},
            ).all()
        )
    assert stored == {
        "+33 1 23 45 67 89": "+33123456789",
        "+1 415 555 0100": "+14155550100",
        "0033 1 23 45 67 89": "+33123456789",
        "12345": None,
        "0770090012": "+44770090012",
        "not a phone": None,
        "": None,
        "+44": None,
        "07700 900123 ext 4": None,
    }
