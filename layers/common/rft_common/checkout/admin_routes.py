"""GET /api/admin/payments/unplaced: paid bookings that got no seat, for staff to resolve.

Served by the admin function, so ``routes.admin_users.admit`` (the flag, then an admin
token) gates it like every other admin route.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rft_common.core.formatting import money
from rft_common.db.postgres import run_transaction
from rft_common.staff.gate import READ_ERRORS, SECURITY

router = Router()

UNPLACED_BOOKINGS = """
    SELECT b.id, b.booking_reference, b.course_schedule_id, c.name AS course_name,
           s.start_datetime, s.status AS session_status, b.unplaced_reason,
           b.payment_amount, b.number_of_attendees, b.stripe_payment_intent_id, b.user_id,
           b.contact_details ->> 'name' AS name, b.contact_details ->> 'email' AS email,
           b.contact_details ->> 'phone' AS phone, b.created_at
    FROM bookings AS b
    JOIN course_schedules AS s ON s.id = b.course_schedule_id
    JOIN courses AS c ON c.id = s.course_id
    WHERE b.unplaced_reason IS NOT NULL AND b.status = 'pending' AND b.payment_status = 'paid'
    ORDER BY b.created_at, b.id
    LIMIT :limit
"""


class UnplacedBooking(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    booking_id: int
    booking_reference: str
    course_session_id: int
    course_name: str
    session_start: datetime
    session_status: str
    reason: str = Field(examples=["session_full", "already_booked", "session_cancelled"])
    amount: str = Field(description="GBP paid, decimal string", examples=["337.50"])
    number_of_participants: int
    payment_intent_id: str
    customer_id: int | None
    name: str | None
    email: str | None
    phone: str | None
    created_at: datetime


class UnplacedBookings(BaseModel):
    data: list[UnplacedBooking]


@router.get(
    "/api/admin/payments/unplaced",
    summary="Paid bookings that got no seat, oldest first",
    description="Each was paid through Stripe but found no place (the session filled up or "
    "was cancelled, or the email already held a booking on it). It is stored `pending` + "
    "`paid`, takes no seat, and stays listed until staff confirm, cancel or refund it.",
    tags=["admin payments"],
    security=SECURITY,
    responses={
        200: {
            "description": "The unplaced paid bookings",
            "content": {"application/json": {"model": UnplacedBookings}},
        },
        **READ_ERRORS,
    },
)
def get_unplaced_bookings(
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> UnplacedBookings:
    rows = run_transaction(
        lambda connection: connection.execute(UNPLACED_BOOKINGS, {"limit": limit}).all()
    )
    return UnplacedBookings(
        data=[
            UnplacedBooking(
                booking_id=row.id,
                booking_reference=row.booking_reference,
                course_session_id=row.course_schedule_id,
                course_name=row.course_name,
                session_start=row.start_datetime,
                session_status=row.session_status,
                reason=row.unplaced_reason,
                amount=money(row.payment_amount),
                number_of_participants=row.number_of_attendees,
                payment_intent_id=row.stripe_payment_intent_id,
                customer_id=row.user_id,
                name=row.name,
                email=row.email,
                phone=row.phone,
                created_at=row.created_at,
            )
            for row in rows
        ]
    )
