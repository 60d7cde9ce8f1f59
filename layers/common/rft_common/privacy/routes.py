"""UK GDPR routes: subject access export and erasure of a user
(/api/admin/users/{user_id}), and erasure of an attendee known by name only
(/api/admin/attendees/{attendee_id}/erase).

Admins only: the admin users function's gate (``admit``) runs before these routes.
Both are audited with the admin's identity (``rft_common.privacy.service``).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from rft_common.core.observability import logger
from rft_common.http.api import error_doc, ok_doc
from rft_common.http.params import NOT_FOUND, AttendeeId, UserId
from rft_common.privacy.service import (
    Actor,
    AttendeeErasureRequest,
    AttendeeErasureResult,
    DataExport,
    ErasureRequest,
    ErasureResult,
    erase_attendee,
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


@router.post(
    "/api/admin/attendees/<attendee_id>/erase",
    summary="Erase a person known only as a name on someone else's booking",
    description="For an attendee with no account of their own (a participant the booker "
    "named, listed with its `attendee_id` under `booked_attendees` in the booker's detail). "
    "One transaction: the attendee's name, email, dietary requirements and medical "
    "conditions are scrubbed and `erased_at` set; the place on the booking and its "
    "certificate (number, course type, dates; legitimate interests: an employer relies on "
    "it) stay; the booker's audit log records who, when and the reason, without values. "
    "The renewals list leaves the attendee out. An attendee who is a user: erase the user.",
    tags=TAGS,
    security=SECURITY,
    responses={
        **ok_doc("What was erased", AttendeeErasureResult),
        404: error_doc("No attendee has this id"),
        409: error_doc(
            "Refused, with the reason: the attendee is a user (erase the user), is the "
            "booker's own place, or was already erased"
        ),
        **ADMIN_ERRORS,
    },
)
def post_erase_attendee(
    attendee_id: AttendeeId, request: AttendeeErasureRequest
) -> AttendeeErasureResult:
    admin = acting_admin(router)
    result = erase_attendee(attendee_id, request, actor=Actor(admin.email, admin.id))
    logger.info(
        "attendee erased",
        extra={"admin_id": admin.id, "attendee_id": attendee_id, "booking_id": result.booking_id},
    )
    return result
