"""Demo courses and sessions for the local stack: inserted once, found thereafter, and
sessions added again once the earlier ones have started (a local database outlives them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

DEMO_COURSES = (
    ("Emergency First Aid at Work", "workplace", "1 day", Decimal("75.00"), "EFAW"),
    ("First Aid at Work", "workplace", "3 days", Decimal("200.00"), "FAW"),
    ("Paediatric First Aid", "paediatric", "2 days", Decimal("120.00"), "PAEDIATRIC"),
)
"""Name, category, duration, price and the booking site's course code."""
DEMO_VENUES = ("Sheffield", "Rotherham")

FIND_COURSE = text("SELECT id FROM courses WHERE name = :name ORDER BY id LIMIT 1")
ADD_COURSE = text(
    "INSERT INTO courses (name, category, duration, price, course_type) "
    "VALUES (:name, :category, :duration, :price, :course_type) RETURNING id"
)
FIND_SESSION = text(
    "SELECT id FROM course_schedules WHERE course_id = :course_id AND venue = :venue "
    "AND start_datetime > now() ORDER BY id LIMIT 1"
)
ADD_SESSION = text(
    "INSERT INTO course_schedules (course_id, start_datetime, end_datetime, venue, price, "
    "max_capacity, status) VALUES (:course_id, :start, :end, :venue, :price, 12, 'published') "
    "RETURNING id"
)
DESCRIBE = text(
    "SELECT s.id AS session_id, c.id AS course_id, c.name AS course, s.venue, "
    "s.start_datetime, s.end_datetime, coalesce(s.price, c.price) AS price, "
    "s.max_capacity, s.current_capacity, s.status "
    "FROM course_schedules AS s JOIN courses AS c ON c.id = s.course_id "
    "WHERE s.id = ANY(:ids) ORDER BY s.id"
)


def seed_demo(connection: Connection) -> list[dict[str, Any]]:
    """Ensure the demo courses and one upcoming published session per course and venue
    exist; describe them."""
    first_start = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    session_ids = []
    for index, (name, category, duration, price, course_type) in enumerate(DEMO_COURSES):
        course_id = connection.execute(FIND_COURSE, {"name": name}).scalar() or (
            connection.execute(
                ADD_COURSE,
                {
                    "name": name,
                    "category": category,
                    "duration": duration,
                    "price": price,
                    "course_type": course_type,
                },
            ).scalar_one()
        )
        for venue_index, venue in enumerate(DEMO_VENUES):
            start = first_start + timedelta(days=14 + 7 * index + venue_index)
            session_id = (
                connection.execute(FIND_SESSION, {"course_id": course_id, "venue": venue}).scalar()
                or connection.execute(
                    ADD_SESSION,
                    {
                        "course_id": course_id,
                        "start": start,
                        "end": start + timedelta(hours=7),
                        "venue": venue,
                        "price": price,
                    },
                ).scalar_one()
            )
            session_ids.append(session_id)
    return [
        {
            **row._asdict(),
            "start_datetime": row.start_datetime.isoformat(),
            "end_datetime": row.end_datetime.isoformat(),
            "price": f"{row.price:.2f}",
        }
        for row in connection.execute(DESCRIBE, {"ids": session_ids})
    ]
