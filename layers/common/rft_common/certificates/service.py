"""Certificates as records: one per attendee of a completed session.

A session is completed for a booking when staff mark the booking ``completed``, or when
the session's end has passed and the booking is ``confirmed``. ``issue_certificates``
(the scheduled ``CertificatesFunction``, or ``rft certificates issue``) issues, in one
statement, a certificate to every attendee of such a booking who has none yet:

- course type: the booking site's code of the session's course (``courses.course_type``);
- issue date: the session's last day in the company's calendar (or the day staff
  marked it completed, if earlier);
- expiry: issue date plus the course's ``certificate_validity_months`` (36 by default);
- number: ``RFT-<course type>-<issue year>-<attendee id, at least 8 digits>``, e.g.
  ``RFT-EFAW-2026-00001234``: unique because an attendee row (one person on one
  booking) has at most one certificate.

The job is idempotent and safe to run concurrently: the unique ``attendee_id`` makes a
second run (or a concurrent one, which waits for the first's commit) insert nothing.
The same statement marks certificates past their expiry ``expired``. A booking
cancelled or refunded after the fact has its certificates ``revoked`` by a trigger
(migration 0016), whichever path changes the booking. A refunded or unplaced booking
earns none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rft_common.core.vocabulary import BUSINESS_TIME_ZONE
from rft_common.db.postgres import Connection, run_transaction

ISSUE_CERTIFICATES = """
    WITH due AS (
        SELECT a.id AS attendee_id, a.booking_id, a.user_id,
               c.course_type,
               (least(s.end_datetime, now()) AT TIME ZONE CAST(:time_zone AS text))::date
                   AS issued_on,
               c.certificate_validity_months AS validity_months
        FROM bookings AS b
        JOIN course_schedules AS s ON s.id = b.course_schedule_id
        JOIN courses AS c ON c.id = s.course_id
        JOIN booking_attendees AS a ON a.booking_id = b.id
        WHERE (b.status = 'completed' OR (b.status = 'confirmed' AND s.end_datetime <= now()))
          AND b.payment_status <> 'refunded' AND b.unplaced_reason IS NULL
          AND NOT EXISTS (SELECT FROM certificates AS held WHERE held.attendee_id = a.id)
    ), issued AS (
        INSERT INTO certificates (attendee_id, booking_id, user_id, course_type, issued_on,
                                  expires_on, certificate_number)
        SELECT attendee_id, booking_id, user_id, course_type, issued_on,
               (issued_on + make_interval(months => validity_months))::date,
               format('RFT-%s-%s-%s', course_type, to_char(issued_on, 'YYYY'),
                      lpad(attendee_id::text, greatest(8, length(attendee_id::text)), '0'))
        FROM due
        ORDER BY attendee_id
        ON CONFLICT DO NOTHING
        RETURNING 1
    ), expired AS (
        UPDATE certificates SET status = 'expired'
        WHERE status = 'active'
          AND expires_on < (now() AT TIME ZONE CAST(:time_zone AS text))::date
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM issued) AS issued, (SELECT count(*) FROM expired) AS expired
"""


@dataclass(frozen=True)
class IssueReport:
    issued: int
    expired: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def issue_due_certificates(connection: Connection) -> IssueReport:
    """The job's statement, inside the caller's transaction."""
    row = connection.execute(ISSUE_CERTIFICATES, {"time_zone": BUSINESS_TIME_ZONE}).one()
    return IssueReport(issued=row.issued, expired=row.expired)


def issue_certificates() -> IssueReport:
    """Issue every certificate due and expire the lapsed, in one transaction."""
    return run_transaction(issue_due_certificates)
