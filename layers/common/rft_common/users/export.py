"""The users list as CSV: the file the admin dashboard's export has always had (its
columns, in the list's order, with the list's filters), written by ``kit.csv_export``."""

from __future__ import annotations

from rft_common.core.vocabulary import BUSINESS_TIME_ZONE
from rft_common.kit.csv_export import ExportLink, InlineCsv, export_csv
from rft_common.users.listing import SortOrder, UserFilters, UserSort, filter_conditions, order_by

CSV_HEADER = (
    "Name",
    "Email",
    "Phone",
    "Role",
    "Customer Type",
    "Company",
    "City",
    "Postcode",
    "Newsletter",
    "Total Bookings",
    "Total Spent (GBP)",
    "Member Since",
    "Last Booking",
)


# Formatted by PostgreSQL: pg8000 reads text far faster than dates and decimals,
# which matters at 300,000 rows. Money keeps its two decimals (numeric(12,2)); dates
# are days in the company's time zone (``:time_zone``), '' when there is none.
EXPORT_COLUMNS = """
    users.name, users.email, users.phone, users.role, users.customer_type,
    users.company_name, users.city, users.postcode,
    CASE WHEN users.newsletter_subscribed THEN 'Yes' ELSE 'No' END AS newsletter,
    CAST(users.total_bookings AS text) AS total_bookings,
    CAST(users.total_spent AS text) AS total_spent,
    coalesce(to_char(timezone(:time_zone, users.created_at), 'YYYY-MM-DD'), '') AS created_on,
    coalesce(to_char(timezone(:time_zone, users.last_booking_at), 'YYYY-MM-DD'), '')
        AS last_booking_on
"""
TEXT_CELLS = 8
"""The first columns hold text people typed; only those can start a formula."""


def export_users(
    filters: UserFilters, sort: UserSort, order: SortOrder, *, inline: bool = True
) -> InlineCsv | ExportLink:
    """Every user matching ``filters``, in the list's order, as CSV: the text itself when
    ``inline`` and it fits in a response, otherwise a file in S3 and a link to it."""
    where, parameters = filter_conditions(filters)
    sql = f"SELECT {EXPORT_COLUMNS} FROM users WHERE {where} {order_by(sort, order)}"
    parameters = parameters | {"time_zone": BUSINESS_TIME_ZONE}
    return export_csv("users", sql, parameters, CSV_HEADER, TEXT_CELLS, inline=inline)
