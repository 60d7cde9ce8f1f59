"""Defences from issue 23: what a stranger or a former admin could turn against the business.

- ``courses.course_type``: the booking site's course code, stored and checked against the
  codes the site knows (``src/config/courseTypes.config.ts``). The site's calendar reads
  ``COURSE_TYPE_CONFIG[courseType].color`` and crashes on any other code; the capitals of
  the course name (``rft_course_type``, migration 0013) gave "PFA" for Paediatric First
  Aid. Today's courses get theirs from their names; a name that matches none gets EFAW,
  the code the site itself falls back to, and is listed here for staff to correct.

Revision ID: 0015_threat_defences
Revises: 0014_email_outbox
Create Date: 2026-12-06
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_threat_defences"
down_revision: str | None = "0014_email_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

COURSE_TYPES = (
    "EFAW",
    "FAW",
    "PAEDIATRIC",
    "EMERGENCY_PAEDIATRIC",
    "ACTIVITY_FIRST_AID",
    "CPR_AED",
    "ANNUAL_SKILLS_REFRESHER",
    "OXYGEN_THERAPY",
)
COURSE_TYPE_FROM_NAME = """
UPDATE courses SET course_type = CASE
    WHEN name ILIKE '%emergency%paediatric%' THEN 'EMERGENCY_PAEDIATRIC'
    WHEN name ILIKE '%paediatric%' THEN 'PAEDIATRIC'
    WHEN name ILIKE '%emergency first aid at work%' THEN 'EFAW'
    WHEN name ILIKE '%first aid at work%' THEN 'FAW'
    WHEN name ILIKE '%activity%' THEN 'ACTIVITY_FIRST_AID'
    WHEN name ILIKE '%cpr%' OR name ILIKE '%aed%' OR name ILIKE '%defibrillat%' THEN 'CPR_AED'
    WHEN name ILIKE '%refresher%' THEN 'ANNUAL_SKILLS_REFRESHER'
    WHEN name ILIKE '%oxygen%' THEN 'OXYGEN_THERAPY'
END
"""
COURSE_TYPE_FUNCTION = """
CREATE FUNCTION rft_course_type(course_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(course_name, '[^A-Z]', '', 'g')
"""


def upgrade() -> None:
    op.add_column("courses", sa.Column("course_type", sa.String(40)))
    op.execute(COURSE_TYPE_FROM_NAME)
    unmatched = op.get_bind().execute(
        sa.text("SELECT id, name FROM courses WHERE course_type IS NULL ORDER BY id")
    )
    for course in unmatched:
        log.warning("course %s (%r): no course type in its name, set to EFAW", *course)
    op.execute("UPDATE courses SET course_type = 'EFAW' WHERE course_type IS NULL")
    op.alter_column("courses", "course_type", nullable=False)
    op.create_check_constraint(
        "course_type", "courses", f"course_type IN ({', '.join(map(repr, COURSE_TYPES))})"
    )
    op.execute("DROP FUNCTION rft_course_type(text)")


def downgrade() -> None:
    op.execute(COURSE_TYPE_FUNCTION)
    op.drop_constraint("ck_courses_course_type", "courses")
    op.drop_column("courses", "course_type")
