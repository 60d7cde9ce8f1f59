"""UK GDPR routes under /api/admin/users/{user_id}: subject access export and erasure.

Admins only: the admin users function's gate (``admit``) runs before these routes.
Both are audited with the admin's identity (``rft_common.privacy.service``).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from rft_common.core.observability import logger
from rft_common.http.api import error_doc, ok_doc
from rft_common.http.params import NOT_FOUND, UserId
from rft_common.privacy.service import (
    Actor,
    DataExport,
    ErasureRequest,
    ErasureResult,
    erase_user,
    export_user_data,
)
from rft_common.staff.gate import ADMIN_ERRORS, READ_ERRORS, SECURITY, acting_admin

router = Router()

TAGS = ["admin data protection"]


@router.get(
    "/api/admin/users/<user_id>/data-export",
    summary="Everything held about a person (UK GDPR subject access)",
    description="The profile (every stored field except the password hash), consent "
    "flags, every booking with its contact details as stored, the payments of those "
    "bookings and every audit entry about the person. The export itself is recorded in "
    "the audit log (who exported whose data, when) before the data is read.",
    tags=TAGS,
    security=SECURITY,
    responses={**ok_doc("The person's data", DataExport), **NOT_FOUND, **READ_ERRORS},
)
def get_data_export(user_id: UserId) -> DataExport:
    admin = acting_admin(router)
    document = export_user_data(user_id, actor=Actor(admin.email, admin.id))
    logger.info("personal data exported", extra={"admin_id": admin.id, "user_id": user_id})
    return document


@router.post(
    "/api/admin/users/<user_id>/erase",
    summary="Erase a person (UK GDPR right to erasure), keeping the money",
    description="One transaction. Scrubbed: name, email (becomes "
    "`erased-<id>@erased.invalid`), phone, address, company, notes, password hash, "
    "consents; every booking's contact details (replaced by `[erased]` markers); the "
    "values in older audit entries. Kept, so revenue and statistics stay exact (payment "
    "records are kept 7 years): the user id and statistics, and every booking's id, "
    "reference, session, status, amount, payment status, Stripe ids and dates. A salted "
    "hash of the email goes on a suppression list, so the backfill never re-creates the "
    "person from old bookings; a new checkout later creates a fresh customer. The audit "
    "log records who, when and the reason, without the erased values.",
    tags=TAGS,
    security=SECURITY,
    responses={
        **ok_doc("What was erased", ErasureResult),
        **NOT_FOUND,
        409: error_doc(
            "Refused, with the reason: a staff account, a customer with a session yet "
            "to run (both unless `force`), or a user already erased"
        ),
        **ADMIN_ERRORS,
    },
)
def post_erase(user_id: UserId, request: ErasureRequest) -> ErasureResult:
    admin = acting_admin(router)
    result = erase_user(user_id, request, actor=Actor(admin.email, admin.id))
    logger.info(
        "user erased",
        extra={
            "admin_id": admin.id,
            "user_id": user_id,
            "bookings_redacted": result.bookings_redacted,
            "forced": result.forced,
        },
    )
    return result
