"""Who attends a booking: the booker first, then the checkout's named participants.

A booking's attendees are written in the booking's transaction: position 1 is the
booker (the site's form makes the contact a participant), written by the booking's own
insert (``checkout.bookings``); positions 2.. are the ``participantDetails`` the payment
intent call stored with the checkout (``payment_checkouts.participant_details``), in the
order the form sent them, written by one statement (``RECORD_PARTICIPANTS``) for a paid
booking only: only a paid checkout has stored any. A participant with an email is found
or created as a customer by the identity rules (``FIND_OR_CREATE_CUSTOMERS``, all of them
in the same statement); one without is recorded by name. A place nobody named (fewer
entries than places) has no row. The checkout's copy is then cleared: the attendee rows
are the one place the details (health data included) are kept.

``dietary_requirements`` and ``medical_conditions`` are health data: they live on the
attendee row only and are never logged (nothing here logs a value).
"""

from __future__ import annotations

from rft_common.customers.identity import FIND_OR_CREATE_CUSTOMERS
from rft_common.db.postgres import Connection

RECORD_PARTICIPANTS = f"""
    WITH given AS (
        SELECT 1 + p.n AS position, p.item ->> 'firstName' AS first_name,
               p.item ->> 'lastName' AS last_name, p.item ->> 'email' AS email,
               p.item ->> 'dietaryRequirements' AS dietary_requirements,
               p.item ->> 'medicalConditions' AS medical_conditions
        FROM payment_checkouts AS checkout
        CROSS JOIN LATERAL jsonb_array_elements(checkout.participant_details)
            WITH ORDINALITY AS p(item, n)
        WHERE checkout.payment_intent_id = CAST(:payment_intent_id AS text)
          AND jsonb_typeof(checkout.participant_details) = 'array'
          AND 1 + p.n <= :places
    ),
    new_customers AS (
        SELECT DISTINCT ON (email) email,
               nullif(btrim(concat_ws(' ', first_name, last_name)), '') AS name,
               CAST(NULL AS text) AS phone, CAST(NULL AS text) AS company_name,
               CAST(NULL AS text) AS details_source, now() AS created_at
        FROM given
        WHERE email IS NOT NULL AND CAST(:link_customers AS boolean)
        ORDER BY email, position
    ),
    {FIND_OR_CREATE_CUSTOMERS},
    handed_over AS (
        UPDATE payment_checkouts SET participant_details = NULL
        WHERE payment_intent_id = CAST(:payment_intent_id AS text)
          AND participant_details IS NOT NULL
    )
    INSERT INTO booking_attendees (booking_id, position, first_name, last_name, email,
                                   user_id, dietary_requirements, medical_conditions)
    SELECT :booking_id, g.position, g.first_name, g.last_name, g.email, f.id,
           g.dietary_requirements, g.medical_conditions
    FROM given AS g LEFT JOIN found_or_created AS f ON f.email = g.email
    ON CONFLICT (booking_id, position) DO NOTHING
"""


def record_participants(
    connection: Connection,
    *,
    booking_id: int,
    places: int,
    payment_intent_id: str,
    link_customers: bool,
) -> None:
    """Write a paid booking's named participants (positions 2..), stored with the
    checkout of ``payment_intent_id``, finding or creating those with an email as
    customers when ``link_customers``.

    A one-place booking has nobody but its booker, and its checkout stored nobody: the
    intent call refuses participants beyond the places less the booker's, and every
    generation of a checkout is for the same request. Skipping the statement saves the
    commonest paid booking about a quarter of its transaction (planning it).
    """
    if places == 1:
        return
    connection.execute(
        RECORD_PARTICIPANTS,
        {
            "booking_id": booking_id,
            "places": places,
            "payment_intent_id": payment_intent_id,
            "link_customers": link_customers,
        },
    )
