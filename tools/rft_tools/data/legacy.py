"""Legacy data as the live system holds it, generated in SQL (``rft seed legacy``).

A million bookings take seconds: sessions and bookings are one ``INSERT ... SELECT``
over ``generate_series``. Every choice comes from ``hashint8extended(i, seed)``, not
``random()``, so the same ``bookings``/``customers``/``seed`` give the same rows on
any run (benchmarks compare like with like), parallel plans included.

What the bookings look like (shares are of bookings):

- each of ``customers`` people books at least once; the rest are repeat bookings,
  skewed so a few regulars book very often; about 1 in 12 people is corporate
  (company name, company domain, more attendees);
- emails as typed: about 55% lower case, the rest capitalised, upper case, padded
  with spaces or tabs; about 0.8% missing (null, absent, empty, blank) and 0.8%
  malformed (" at ", no domain, two @, no top-level domain, display name, inner
  space, trailing dot); about 0.4% use a staff member's email;
- statuses: completed, confirmed, pending, no-show and cancelled, with cancelled ones
  refunded, still paid or failed; pending ones unpaid; a few failed payments;
- names sometimes blank, phones sometimes missing (one number per person);
  ``user_id`` always NULL;
- duplicates (``duplicate_share`` of the people, none by default): about half of such
  a person's repeat bookings use a second identity, one of four kinds: the same
  address at a misspelt domain (``gmial.com``, ``compnay12.co.uk``); another address
  with the same phone typed another way; a work address beside a personal one; a
  letter missing from the local part. Every address of person ``n`` has ``n`` as
  the digits of its local part, which tells tests the true duplicates.
"""

from __future__ import annotations

import math

from sqlalchemy import Connection, text

STAFF = (
    ("Sarah.Jones@ReactFastTraining.co.uk", "Sarah Jones", "admin"),
    ("Mark.Taylor@ReactFastTraining.co.uk", "Mark Taylor", "instructor"),
    ("Priya.Shah@ReactFastTraining.co.uk", "Priya Shah", "instructor"),
    ("office@reactfasttraining.co.uk", "Office", "admin"),
)
COURSES = (
    ("Emergency First Aid at Work", "workplace", "1 day", 75, "EFAW"),
    ("First Aid at Work", "workplace", "3 days", 225, "FAW"),
    ("First Aid at Work Requalification", "workplace", "2 days", 160, "FAW"),
    ("Paediatric First Aid", "paediatric", "2 days", 120, "PAEDIATRIC"),
    ("Emergency Paediatric First Aid", "paediatric", "1 day", 75, "EMERGENCY_PAEDIATRIC"),
    ("Activity First Aid", "specialist", "2 days", 150, "ACTIVITY_FIRST_AID"),
)
"""Name, category, duration, price and the booking site's course code."""
PROVIDERS = (
    "gmail.com", "outlook.com", "yahoo.co.uk", "hotmail.co.uk", "btinternet.com", "icloud.com",
)  # fmt: skip
MISSPELT_PROVIDERS = (
    "gmial.com", "outlok.com", "yahooo.co.uk", "hotmial.co.uk", "btinternet.co", "iclod.com",
)  # fmt: skip
"""``PROVIDERS``, each misspelt, in the same order."""
BOOKINGS_PER_SESSION = 10
PERMUTATION_PRIMES = (1_000_003, 998_244_353, 2_147_483_647)

ADD_STAFF = text("""
    INSERT INTO users (email, name, password_hash, role)
    SELECT email, name, 'legacy$bcrypt', role
    FROM unnest(CAST(:emails AS text[]), CAST(:names AS text[]), CAST(:roles AS text[]))
         AS staff(email, name, role)
    ON CONFLICT DO NOTHING
""")
ADD_COURSES = text("""
    INSERT INTO courses (name, category, duration, price, course_type)
    SELECT name, category, duration, price, course_type
    FROM unnest(CAST(:names AS text[]), CAST(:categories AS text[]),
                CAST(:durations AS text[]), CAST(:prices AS numeric[]),
                CAST(:course_types AS text[]))
         AS course(name, category, duration, price, course_type)
    WHERE NOT EXISTS (SELECT 1 FROM courses AS c WHERE c.name = course.name)
""")
# u(i, k): a uniform number in [0, 1) for booking i and purpose k, fixed by the seed.
GENERATE = text("""
    WITH course_list AS (
        SELECT array_agg(id ORDER BY id) AS ids, array_agg(price ORDER BY id) AS prices
        FROM courses WHERE name = ANY(CAST(:course_names AS text[]))
    ), new_sessions AS (
        INSERT INTO course_schedules (course_id, start_datetime, end_datetime, venue, price,
                                      max_capacity, current_capacity, status)
        SELECT c.ids[1 + mod(s, cardinality(c.ids))],
               timestamptz '2019-01-07 09:00+00' + s * (interval '2500 days' / :sessions),
               timestamptz '2019-01-07 16:00+00' + s * (interval '2500 days' / :sessions),
               (ARRAY['Sheffield', 'Barnsley', 'Rotherham', 'Doncaster', 'Chesterfield'])
                   [1 + mod(s, 5)],
               c.prices[1 + mod(s, cardinality(c.ids))], 12, 0, 'published'
        FROM generate_series(0, :sessions - 1) AS s CROSS JOIN course_list AS c
        RETURNING id, price
    ), numbered_sessions AS (
        SELECT id, price, row_number() OVER (ORDER BY id) AS number FROM new_sessions
    ), draws AS (
        SELECT i,
               (hashint8extended(i, :seed * 16 + 1) & 2147483647)::float8 / 2147483648 AS u1,
               (hashint8extended(i, :seed * 16 + 2) & 2147483647)::float8 / 2147483648 AS u2,
               (hashint8extended(i, :seed * 16 + 3) & 2147483647)::float8 / 2147483648 AS u3,
               (hashint8extended(i, :seed * 16 + 4) & 2147483647)::float8 / 2147483648 AS u4,
               (hashint8extended(i, :seed * 16 + 5) & 2147483647)::float8 / 2147483648 AS u5,
               (hashint8extended(i, :seed * 16 + 6) & 2147483647)::float8 / 2147483648 AS u6,
               (hashint8extended(i, :seed * 16 + 7) & 2147483647)::float8 / 2147483648 AS u7,
               1 + mod((i - 1) * CAST(:prime AS bigint), :bookings) AS slot
        FROM generate_series(1, CAST(:bookings AS bigint)) AS i
    ), people AS (
        SELECT d.*,
               -- slots 1..customers are each person's first booking; the rest repeat,
               -- skewed towards low person numbers (the regulars)
               CASE WHEN d.slot <= :customers THEN d.slot
                    ELSE 1 + floor(:customers * d.u1 * d.u1)::int END AS person
        FROM draws AS d
    ), typed AS (
        SELECT p.*,
               mod(p.person, 12) = 0 AS corporate,
               (ARRAY['Sam', 'Jo', 'Alex', 'Priya', 'Mohammed', 'Olivia', 'Jack', 'Amelia',
                      'Harry', 'Isla', 'Noah', 'Ava', 'Leo', 'Mia', 'Oscar', 'Grace'])
                   [1 + mod(p.person, 16)] AS first_name,
               (ARRAY['Patel', 'Smith', 'Jones', 'Taylor', 'Brown', 'Williams', 'Wilson',
                      'Khan', 'Evans', 'Thomas', 'Roberts', 'Walker', 'Wright', 'Hughes'])
                   [1 + mod(p.person / 16, 14)] AS last_name
        FROM people AS p
    ), identified AS (
        SELECT t.*,
               lower(t.first_name || '.' || t.last_name) || t.person AS local_part,
               CASE WHEN t.corporate THEN 'company' || mod(t.person, 997) || '.co.uk'
                    ELSE (CAST(:providers AS text[]))[1 + mod(t.person, :provider_count)]
               END AS domain,
               -- a repeat booking of a person who also books under a second identity
               t.slot > :customers AND t.u7 < 0.5
                   AND (hashint8extended(t.person, :seed * 16 + 8) & 1023)
                       < CAST(:duplicate_share AS float8) * 1024 AS second_identity,
               mod(hashint8extended(t.person, :seed * 16 + 9) & 1023, 4) AS variant
        FROM typed AS t
    ), addressed AS (
        SELECT d.*,
               CASE WHEN NOT d.second_identity THEN d.local_part || '@' || d.domain
                    -- the same address at a misspelt domain
                    WHEN d.variant = 0 THEN d.local_part || '@' || CASE
                        WHEN d.corporate THEN 'compnay' || mod(d.person, 997) || '.co.uk'
                        ELSE (CAST(:misspelt_providers AS text[]))
                             [1 + mod(d.person, :provider_count)] END
                    -- another address altogether, with the same phone
                    WHEN d.variant = 1 THEN lower(d.first_name) || d.person || '@'
                        || (CAST(:providers AS text[]))[1 + mod(d.person + 1, :provider_count)]
                    -- work and personal addresses
                    WHEN d.variant = 2 THEN d.local_part || '@' || CASE
                        WHEN d.corporate THEN 'gmail.com'
                        ELSE 'employer' || mod(d.person, 499) || '.co.uk' END
                    -- a letter missing from the local part
                    ELSE overlay(d.local_part PLACING '' FROM 2 FOR 1) || '@' || d.domain
               END AS address,
               (CAST(:staff_emails AS text[]))[1 + mod(d.i, :staff_count)] AS staff_address
        FROM identified AS d
    ), typed_email AS (
        SELECT a.*,
               CASE
                   WHEN a.u3 < 0.008 THEN
                       (ARRAY[NULL, NULL, '', '   '])[1 + mod(a.i, 4)]
                   WHEN a.u3 < 0.016 THEN
                       (ARRAY[replace(a.address, '@', ' at '),
                              split_part(a.address, '@', 1) || '@',
                              replace(a.address, '@', '@@'),
                              split_part(a.address, '.', 1) || '.' || split_part(a.address, '.', 2),
                              a.first_name || ' <' || a.address || '>',
                              replace(a.address, '.', ' '),
                              a.address || '.'])[1 + mod(a.i, 7)]
                   WHEN a.u3 < 0.020 THEN
                       (ARRAY[a.staff_address, upper(a.staff_address),
                              ' ' || lower(a.staff_address)])[1 + mod(a.i, 3)]
                   WHEN a.u2 < 0.55 THEN a.address
                   WHEN a.u2 < 0.70 THEN initcap(a.address)
                   WHEN a.u2 < 0.80 THEN upper(a.address)
                   WHEN a.u2 < 0.90 THEN ' ' || a.address || '  '
                   WHEN a.u2 < 0.95 THEN E'\\t' || initcap(a.address) || E'\\n'
                   ELSE initcap(a.address) || ' '
               END AS email,
               a.u3 < 0.008 AND mod(a.i, 4) = 1 AS email_absent
        FROM addressed AS a
    ), booked AS (
        SELECT e.*,
               -- a session held around the time of booking, or one of the next two
               least(:sessions,
                     1 + floor((e.i - 1)::float8 * :sessions / :bookings)::int
                       + mod(e.i, 3)::int) AS session_number,
               CASE WHEN e.u4 < 0.55 THEN 'completed' WHEN e.u4 < 0.75 THEN 'confirmed'
                    WHEN e.u4 < 0.83 THEN 'pending' WHEN e.u4 < 0.88 THEN 'no_show'
                    ELSE 'cancelled' END AS status,
               CASE WHEN e.corporate THEN 1 + floor(e.u5 * 6)::int
                    ELSE 1 + floor(e.u5 * 2)::int END AS attendees,
               timestamptz '2019-01-01 00:00+00'
                   + (e.i::float8 / :bookings) * interval '2500 days'
                   + e.u5 * interval '6 hours' AS created_at,
               CASE WHEN e.u6 < 0.03 THEN '' ELSE e.first_name || ' ' || e.last_name END AS name,
               CASE WHEN e.second_identity AND e.variant = 1
                        THEN '+44 7700 ' || lpad(mod(e.person, 1000000)::text, 6, '0')
                    WHEN e.u6 > 0.8 THEN NULL
                    ELSE '07700 ' || lpad(mod(e.person, 1000000)::text, 6, '0') END AS phone,
               CASE WHEN e.corporate THEN 'Company ' || mod(e.person, 997) || ' Ltd' END AS company
        FROM typed_email AS e
    )
    INSERT INTO bookings (booking_reference, course_schedule_id, user_id, status,
                          payment_status, payment_amount, payment_method,
                          stripe_payment_intent_id, number_of_attendees, contact_details,
                          created_at, updated_at)
    SELECT 'RFT-' || upper(to_hex((extract(epoch FROM b.created_at) * 1000)::bigint))
               || '-' || upper(to_hex(:reference_offset + b.i)),
           s.id, NULL, b.status,
           CASE WHEN b.status = 'pending' THEN 'pending'
                WHEN b.status = 'cancelled' THEN
                    (ARRAY['refunded', 'refunded', 'refunded', 'paid', 'failed'])[1 + mod(b.i, 5)]
                WHEN b.u2 < 0.02 THEN 'failed'
                ELSE 'paid' END,
           s.price * b.attendees,
           CASE WHEN b.status <> 'pending' THEN 'card' END,
           CASE WHEN b.status <> 'pending' THEN 'pi_legacy_' || (:reference_offset + b.i) END,
           b.attendees,
           CASE WHEN b.email_absent
                THEN json_build_object('name', b.name, 'phone', b.phone, 'company', b.company,
                                       'specialRequirements', NULL, 'emergencyContact', NULL)
                ELSE json_build_object('name', b.name, 'email', b.email, 'phone', b.phone,
                                       'company', b.company, 'specialRequirements', NULL,
                                       'emergencyContact', NULL) END,
           b.created_at, b.created_at
    FROM booked AS b JOIN numbered_sessions AS s ON s.number = b.session_number
    ORDER BY b.i
""")


def _permutation_prime(bookings: int) -> int:
    """A multiplier coprime with ``bookings``, so ``(i * prime) % bookings`` is a permutation."""
    return next(prime for prime in PERMUTATION_PRIMES if math.gcd(prime, bookings) == 1)


def seed_legacy(
    connection: Connection,
    *,
    bookings: int,
    customers: int,
    seed: int = 1,
    duplicate_share: float = 0.0,
) -> dict[str, int | float]:
    """Add legacy staff, courses, sessions and bookings; what was added.

    ``duplicate_share`` of the people (0 to 1) also book under a second identity
    (see the module's docstring), on about half of their repeat bookings.
    """
    if not 0 <= duplicate_share <= 1:
        raise ValueError("duplicate_share must be between 0 and 1")
    if not 1 <= customers <= bookings:
        raise ValueError("customers must be between 1 and the number of bookings")
    connection.execute(
        ADD_STAFF,
        {
            "emails": [email for email, _, _ in STAFF],
            "names": [name for _, name, _ in STAFF],
            "roles": [role for _, _, role in STAFF],
        },
    )
    connection.execute(
        ADD_COURSES,
        {
            "names": [course[0] for course in COURSES],
            "categories": [course[1] for course in COURSES],
            "durations": [course[2] for course in COURSES],
            "prices": [course[3] for course in COURSES],
            "course_types": [course[4] for course in COURSES],
        },
    )
    reference_offset = connection.execute(
        text("SELECT coalesce(max(id), 0) FROM bookings")
    ).scalar_one()
    sessions = max(1, bookings // BOOKINGS_PER_SESSION)
    inserted = connection.execute(
        GENERATE,
        {
            "course_names": [course[0] for course in COURSES],
            "staff_emails": [email for email, _, _ in STAFF],
            "staff_count": len(STAFF),
            "sessions": sessions,
            "bookings": bookings,
            "customers": customers,
            "seed": seed,
            "duplicate_share": duplicate_share,
            "providers": list(PROVIDERS),
            "misspelt_providers": list(MISSPELT_PROVIDERS),
            "provider_count": len(PROVIDERS),
            "prime": _permutation_prime(bookings),
            "reference_offset": reference_offset,
        },
    ).rowcount
    return {
        "bookings": inserted,
        "customers": customers,
        "sessions": sessions,
        "seed": seed,
        "duplicate_share": duplicate_share,
    }
