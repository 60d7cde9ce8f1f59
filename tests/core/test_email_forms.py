"""One email form in Python and SQL (issue 23, outcome 6): an address is one identity
however its accents were encoded (NFC or NFD) and whatever its case, and Python's
``canonical_email`` agrees with SQL's ``normalized_email_sql`` and the backfill key."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from rft_common.backfill.service import email_key
from rft_common.core.emails import (
    EMAIL_WHITESPACE,
    canonical_email,
    normalize_email,
    normalized_email_sql,
)

COMPOSED = "Jos\u00e9.Nu\u00f1ez@Example.com"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)

ALPHABET = (
    "abcXYZ019.+_-@ \t\u00a0"
    "\u00e9\u00c9\u00df\u1e9e\u00ff\u0178\u0141\u0142\u00d8\u00f8\u0130\u0131\u017f"
    "\u0301\u0308\u0327\u0307"  # combining acute, diaeresis, cedilla, dot above
    "\u03a3\u03c3\u03c2\u0391"  # Greek capital and small sigmas, a capital alpha
    "\u0419\u0439\ufb01\uff21"  # Cyrillic short i, the fi ligature, a full-width A
)
"""Characters where case and composition are easy to get wrong: precomposed and
combining accents, sharp s, dotted and dotless i, final sigma, compatibility forms."""


def test_composed_and_decomposed_accents_are_one_address():
    assert COMPOSED != DECOMPOSED
    assert normalize_email(COMPOSED) == normalize_email(DECOMPOSED) == "josé.nuñez@example.com"
    assert canonical_email(DECOMPOSED) == canonical_email(COMPOSED)
    assert unicodedata.is_normalized("NFC", normalize_email(DECOMPOSED))


def test_compatibility_forms_and_sharp_s_stay_distinct_mailboxes():
    assert canonical_email("\ufb01n@example.com") != canonical_email("fin@example.com")
    assert canonical_email("stra\u00dfe@example.de") != canonical_email("strasse@example.de")


@pytest.fixture(scope="module")
def sql_forms(engine):
    """SQL's form of each raw email, its backfill key, and ``lower(btrim(form))``."""

    def apply(raws: list[str]) -> list[tuple[str, int, str]]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(f"""
                    SELECT form, rft_backfill_email_key(raw) AS key, lower(btrim(form)) AS stored
                    FROM unnest(CAST(:raws AS text[])) WITH ORDINALITY AS r(raw, n)
                    CROSS JOIN LATERAL (SELECT {normalized_email_sql("r.raw")} AS form) AS f
                    ORDER BY n
                """),
                {"raws": raws, "whitespace": EMAIL_WHITESPACE},
            )
            return [(row.form, row.key, row.stored) for row in rows]

    return apply


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=24), min_size=1, max_size=40))
def test_python_and_sql_put_any_text_in_the_same_form(sql_forms, raws):
    forms = sql_forms(raws)

    assert [form for form, _, _ in forms] == [canonical_email(raw) for raw in raws]
    assert [key for _, key, _ in forms] == [email_key(raw) for raw in raws]
    # The stored column (lower(btrim(email))) leaves an email in this form unchanged.
    assert [stored for _, _, stored in forms] == [form for form, _, _ in forms]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=24))
def test_a_normalised_email_is_in_the_canonical_form(raw):
    try:
        email = normalize_email(raw + "@example.com")
    except ValueError:
        return
    assert canonical_email(email) == email
    assert normalize_email(unicodedata.normalize("NFD", raw) + "@EXAMPLE.com") == email
