"""The backfill's SQL email rule agrees with itself in Python and never disagrees with
``normalize_email`` about who a valid address belongs to."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from rft_common.backfill.service import (
    EMAIL_RULE_PARAMETERS,
    email_key,
    normalized_email_or_reason,
    unlinkable_reason_sql,
)
from rft_common.core.emails import normalize_email, normalized_email_sql

EVERYDAY = [
    "sam.patel@example.com",
    " Sam.Patel@Example.com ",
    "SAM.PATEL@EXAMPLE.CO.UK",
    "\tjo+courses@mail.example.org\n",
    "o'neill@example.ie",
    "first_last-1@sub-domain.example.com",
    "a@b.co",
    "x@example.museum",
    "info@reactfasttraining.co.uk",
    "a" * 64 + "@" + "b" * 63 + ".co.uk",
    "josé@example.com",
    "jose\u0301@example.com",
    " JOSÉ@Example.com",
    "JOSE\u0301@example.com",
    "łukasz.nowak@example.pl",
    "jürgen.straße@example.de",
    "øyvind@example.no",
]
UNUSABLE = [
    "",
    "   ",
    "sam at example.com",
    "sam@",
    "@example.com",
    "sam@@example.com",
    "sam@example",
    "sam@example..com",
    "sam.@example.com",
    ".sam@example.com",
    "sam..patel@example.com",
    "sam patel@example.com",
    "Sam <sam@example.com>",
    "sam@example.com.",
    "sam@-example.com",
    "sam@example-.com",
    "sam@example.123",
    "sam@localhost",
    "sam@host.local",
    "sam@example.test",
    "sam@[127.0.0.1]",
    '"sam"@example.com',
    "sam@exa_mple.com",
    "sam;jo@example.com",
    "sam@ab--cd.example.com",
    "sam@" + "a" * 64 + ".com",
    "sam@" + ".".join(["abcdefghij"] * 25) + ".com",
]
STRICTER_THAN_NORMALIZE_EMAIL = [
    "ΟΔΥΣΣΕΑΣ@example.gr",
    "q\u0301@example.com",
    "é" * 33 + "@example.com",
    "sam@bücher.de",
    "sam@xn--bcher-kva.de",
    "sam@exa--mple.com",
    "a" * 65 + "@example.com",
    "\u2003sam@example.com",
]


def random_candidates(count: int) -> list[str]:
    """Deterministic near-addresses: mostly valid pieces, with stray characters."""
    rng = random.Random(20261124)
    pieces = ["sam", "Jo", "o'neill", "x", "a-b", "1", "_", ".", "..", "-", "+tag", "--", "é"]
    pieces += ["E\u0301", "Ł", "ß", "Ÿ", "\u0301", "Σ"]
    domains = ["example.com", "Example.CO.UK", "ex-ample.org", "localhost", "a.b", "x.test", "1.2"]
    noise = [" ", "\t", "@", "\u00a0", "", "", "", "", ""]
    candidates = []
    for _ in range(count):
        local = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 3)))
        address = f"{rng.choice(noise)}{local}@{rng.choice(domains)}{rng.choice(noise)}"
        if rng.random() < 0.1:
            position = rng.randrange(len(address) + 1)
            address = address[:position] + rng.choice([*noise, "@", ".", "<"]) + address[position:]
        candidates.append(address)
    return candidates


def python_accepts(raw: str) -> str | None:
    try:
        return normalize_email(raw)
    except ValueError:
        return None


@pytest.fixture
def sql_rule(engine):
    """The rule as the worker's SQL applies it, for a list of raw emails."""

    def apply(raws: list[str]) -> list[tuple[str | None, str | None]]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(f"""
                    SELECT CASE WHEN reason IS NULL THEN email END AS email, reason
                    FROM (
                        SELECT e.email, {unlinkable_reason_sql("e.email")} AS reason, r.n
                        FROM unnest(CAST(:raws AS text[])) WITH ORDINALITY AS r(raw, n)
                        CROSS JOIN LATERAL (SELECT {normalized_email_sql("r.raw")} AS email) AS e
                    ) AS verdicts
                    ORDER BY n
                """),
                EMAIL_RULE_PARAMETERS | {"raws": raws},
            )
            return [(row.email, row.reason) for row in rows]

    return apply


def test_sql_and_python_apply_the_same_rule(sql_rule):
    raws = EVERYDAY + UNUSABLE + STRICTER_THAN_NORMALIZE_EMAIL + random_candidates(3000)

    assert sql_rule(raws) == [normalized_email_or_reason(raw) for raw in raws]


def test_every_address_the_rule_accepts_normalizes_to_the_same_customer(sql_rule):
    raws = EVERYDAY + UNUSABLE + STRICTER_THAN_NORMALIZE_EMAIL + random_candidates(3000)

    accepted = [(raw, email) for raw, (email, _) in zip(raws, sql_rule(raws), strict=True) if email]

    assert len(accepted) > 500
    assert [(raw, python_accepts(raw)) for raw, _ in accepted] == accepted


def test_everyday_addresses_are_accepted_and_unusable_ones_rejected_by_both(sql_rule):
    verdicts = sql_rule(EVERYDAY + UNUSABLE)

    assert [email is not None for email, _ in verdicts] == [True] * len(EVERYDAY) + [False] * len(
        UNUSABLE
    )
    assert all(python_accepts(raw) for raw in EVERYDAY)
    assert not any(python_accepts(raw) for raw in UNUSABLE)


def test_an_address_with_composed_or_decomposed_accents_is_one_email(sql_rule):
    forms = ["josé@example.com", "jose\u0301@example.com", "JOSÉ@EXAMPLE.COM", "JOSE\u0301@x.com"]

    verdicts = sql_rule(forms)

    assert [email for email, _ in verdicts] == ["josé@example.com"] * 3 + ["josé@x.com"]
    assert len({email_key(raw) for raw in forms[:3]}) == 1


def test_international_and_punycode_addresses_are_left_for_review(sql_rule):
    verdicts = sql_rule(STRICTER_THAN_NORMALIZE_EMAIL)

    assert verdicts == [(None, "malformed_email")] * len(STRICTER_THAN_NORMALIZE_EMAIL)
    assert all(python_accepts(raw) for raw in STRICTER_THAN_NORMALIZE_EMAIL)
