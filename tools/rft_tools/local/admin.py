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
customer.
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

LOCAL_STAFF_FIRST_ID = 900_000_001
"""The local staff members' ids: far above the sequence's, so the customers a fresh stack
gets keep ids 1, 2, ... (the contract fuzzing and README's tour rely on them)."""
ADD_LOCAL_STAFF = """
    INSERT INTO users (id, email, name, role)
    SELECT :first_id + n - 1, 'local-' || role || '@example.com', 'Local ' || role, role
    FROM unnest(CAST(:roles AS text[])) WITH ORDINALITY AS wanted (role, n)
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


def local_staff(connection: Connection) -> dict[str, int]:
    """The local staff members' ids by role, created if missing."""
    roles = list(STAFF_ROLES)
    connection.execute(ADD_LOCAL_STAFF, {"roles": roles, "first_id": LOCAL_STAFF_FIRST_ID})
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
