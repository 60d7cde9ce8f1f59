"""The admin API on the local stack: its export bucket and dev-only signing secrets.

``local_admin_environment`` is a ``LocalResource`` (``rft_tools.local.aws``): it creates
the export bucket in the stack's moto server and returns what stands in locally for
the template's ``AdminExportBucket``, ``AdminJwtSecretArn`` and
``AdminRefreshSecretArn``. The signing secrets are fixed and public on purpose: they
only ever sign tokens for a stack on this machine (``rft dev token``, the local login).
In AWS the secrets come from Secrets Manager, and the functions never read
``ADMIN_JWT_SECRET`` / ``ADMIN_REFRESH_SECRET`` when the ``..._ARN`` is set.

``local_staff`` gives the stack one staff member per staff role
(``local-admin@example.com``, ``local-instructor@example.com``), without a password:
``rft dev token`` acts as them, so the audit trail names a staff member, never a
customer. ``rft run`` makes them before anything else, so on a fresh database the admin
is user 1 and the instructor user 2, as the first accounts of a new system are: the
company's admin-ui browser check signs its token for user 1 (the old login's admin).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from rft_common.core.vocabulary import STAFF_ROLES
from rft_common.db.postgres import Connection

LOCAL_ADMIN_JWT_SECRET = "rft-local-stack-only-admin-jwt-secret-never-used-in-aws-0123456789"  # noqa: S105
LOCAL_ADMIN_REFRESH_SECRET = "rft-local-stack-only-admin-refresh-secret-never-used-in-aws-987654"  # noqa: S105
LOCAL_EXPORT_BUCKET = "rft-admin-exports-local"

ADD_LOCAL_STAFF = """
    INSERT INTO users (id, email, name, role)
    SELECT coalesce(CAST(:first_id AS integer) + n - 1, nextval('users_id_seq')),
           'local-' || role || '@example.com', 'Local ' || role, role
    FROM unnest(CAST(:roles AS text[])) WITH ORDINALITY AS wanted (role, n)
    WHERE NOT EXISTS (SELECT 1 FROM users WHERE email = 'local-' || role || '@example.com')
    ORDER BY n
    ON CONFLICT DO NOTHING
"""
FIND_LOCAL_STAFF = """
    SELECT users.role, users.id
    FROM unnest(CAST(:roles AS text[])) AS wanted (role)
    JOIN users ON users.email = 'local-' || wanted.role || '@example.com'
        AND users.role = wanted.role
"""


def local_staff_email(role: str) -> str:
    return f"local-{role}@example.com"


def local_staff(connection: Connection, *, first_id: int | None = None) -> dict[str, int]:
    """The local staff members' ids by role, created if missing: the next ids of the
    sequence, in ``STAFF_ROLES`` order, or from ``first_id`` on (a test that wants the
    small ids for customers)."""
    roles = list(STAFF_ROLES)
    connection.execute(ADD_LOCAL_STAFF, {"roles": roles, "first_id": first_id})
    rows = connection.execute(FIND_LOCAL_STAFF, {"roles": roles}).all()
    return {row.role: row.id for row in rows}


def local_admin_environment(template: dict[str, Any]) -> dict[str, str]:
    if "AdminExportBucket" not in (template.get("Resources") or {}):
        return {}
    import boto3

    s3 = boto3.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):  # moto's state is per process
        s3.create_bucket(
            Bucket=LOCAL_EXPORT_BUCKET,
            CreateBucketConfiguration={"LocationConstraint": os.environ["AWS_REGION"]},
        )
    return {
        "ADMIN_EXPORT_BUCKET": LOCAL_EXPORT_BUCKET,
        "ADMIN_JWT_SECRET": LOCAL_ADMIN_JWT_SECRET,
        "ADMIN_REFRESH_SECRET": LOCAL_ADMIN_REFRESH_SECRET,
    }
