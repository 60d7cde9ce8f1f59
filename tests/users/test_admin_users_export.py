"""GET /api/admin/users/export: the CSV itself, or via S3 (moto) when it is too big.

Requests are sent as the dashboard sends them (``Content-Type: application/json`` on
a GET, the default ``Accept``), unless a test says otherwise.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import boto3
import pytest
from sqlalchemy import create_engine, text

from rft_common.core import settings
from rft_common.db import postgres
from rft_common.kit import csv_export
from rft_common.kit.csv_export import PART_BYTES
from rft_common.users.export import CSV_HEADER
from rft_tools.operations import migrations
from tests.admin_helpers import ADMIN_EMAIL, add_signed_in_admin, add_user, call, token_for
from tests.conftest import scratch_database
from tests.factories import add_session, generate_customers, legacy_insert_booking

pytestmark = pytest.mark.usefixtures("signed_in_admin", "export_bucket")

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def dashboard_headers(**extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token_for()}",
        "Content-Type": "application/json",
        "Accept": "*/*",
        **extra,
    }


def headers_of(raw: dict) -> dict[str, str]:
    return {name.lower(): values[0] for name, values in raw["multiValueHeaders"].items()}


def export(function, query: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """The response headers and the CSV text of an export answered in the response."""
    status, body, raw = call(
        function, "GET", "/api/admin/users/export", query=query, headers=dashboard_headers()
    )
    assert status == 200, body
    return headers_of(raw), body


def stored_object(url: str) -> tuple[str, str]:
    """The text and ETag of the export object a presigned URL points at."""
    parsed = urlparse(url)
    bucket = settings.get_settings().admin_export_bucket
    key = parsed.path.removeprefix(f"/{bucket}").lstrip("/")  # path or virtual-host style
    stored = boto3.client("s3").get_object(Bucket=bucket, Key=key)
    return stored["Body"].read().decode("utf-8"), stored["ETag"]


def records(content: str) -> list[list[str]]:
    assert content.startswith("\ufeff")  # so that Excel reads UTF-8
    return list(csv.reader(io.StringIO(content[1:], newline="")))


def test_the_csv_has_the_dashboards_columns_in_the_lists_order(admin_users_function, db):
    with db.begin() as connection:
        session_id = add_session(connection)
        sam = add_user(
            connection,
            "sam@example.com",
            name="Sam Patel",
            phone="07700 900123",
            customer_type="corporate",
            company_name="Acme Ltd",
            city="Sheffield",
            postcode="S1 2HE",
            newsletter_subscribed=True,
            created_at="2025-06-30 23:30+00",  # 1 July in the UK
        )
        legacy_insert_booking(
            connection,
            session_id=session_id,
            email="sam@example.com",
            user_id=sam,
            reference="R1",
            created_at="2025-08-01 10:00+00",
        )
        add_user(connection, "zoe@example.com", name="Zoë Ångström", created_at="2025-01-01")

    headers, content = export(admin_users_function)

    today = datetime.now(ZoneInfo("Europe/London")).date().isoformat()
    assert records(content) == [
        list(CSV_HEADER),
        ["Alex Admin", ADMIN_EMAIL, "", "admin", "", "", "", "", "No", "0", "0.00", today, ""],
        [
            "Sam Patel", "sam@example.com", "07700 900123", "customer", "corporate", "Acme Ltd",
            "Sheffield", "S1 2HE", "Yes", "1", "75.00", "2025-07-01", "2025-08-01",
        ],
        [
            "Zoë Ångström", "zoe@example.com", "", "customer", "", "", "", "", "No", "0", "0.00",
            "2025-01-01", "",
        ],
    ]  # fmt: skip
    assert headers["content-type"] == "text/csv; charset=utf-8"
    assert headers["content-disposition"] == f"attachment; filename=users-{today}.csv"


def test_a_small_export_is_answered_inline_and_writes_nothing_to_s3(
    admin_users_function, db, export_bucket
):
    with db.begin() as connection:
        add_user(connection, "sam@example.com", name="Sam")

    export(admin_users_function, {"role": "customer", "format": "csv"})

    assert boto3.client("s3").list_objects_v2(Bucket=export_bucket)["KeyCount"] == 0


def test_scripts_asking_for_json_still_get_a_download_link(admin_users_function, db):
    with db.begin() as connection:
        add_user(connection, "sam@example.com", name="Sam Patel")

    status, body, _ = call(
        admin_users_function,
        "GET",
        "/api/admin/users/export",
        headers=dashboard_headers(Accept="application/json"),
    )

    assert status == 200
    assert set(body) == {"downloadUrl", "expiresAt", "fileName", "rows"}
    assert body["rows"] == 2  # and the signed-in admin
    assert "X-Amz-Signature=" in body["downloadUrl"]
    content, _ = stored_object(body["downloadUrl"])
    assert records(content)[1][:2] == ["Sam Patel", "sam@example.com"]
    assert body["fileName"].startswith("users-") and body["fileName"].endswith(".csv")


def test_a_file_too_big_for_a_response_is_a_303_to_its_s3_copy(
    admin_users_function, db, monkeypatch
):
    with db.begin() as connection:
        for number in range(30):
            add_user(connection, f"user{number}@example.com", name=f"User {number}")
    monkeypatch.setattr(csv_export, "INLINE_LIMIT_BYTES", 1_000)

    status, _, raw = call(
        admin_users_function, "GET", "/api/admin/users/export", headers=dashboard_headers()
    )

    assert status == 303
    content, _ = stored_object(headers_of(raw)["location"])
    assert len(records(content)) == 32  # the header, 30 users and the signed-in admin
    assert len(raw["body"]) < 2_000


@pytest.mark.parametrize("file_format", ["json", "xlsx", ""])
def test_a_format_other_than_csv_is_422(admin_users_function, db, file_format):
    status, body, _ = call(
        admin_users_function,
        "GET",
        "/api/admin/users/export",
        query={"format": file_format},
        headers=dashboard_headers(),
    )

    assert (status, body["errors"][0]["field"]) == (422, "format")


def test_quoting_follows_rfc_4180(admin_users_function, db):
    awkward = 'O"Brien, Ltd\r\nsecond line'
    with db.begin() as connection:
        add_user(connection, "ob@example.com", name="Seán O'Brien", company_name=awkward)

    _, content = export(admin_users_function)

    assert '"O""Brien, Ltd\r\nsecond line"' in content
    assert content.endswith("\r\n")
    assert records(content)[1][:6] == [
        "Seán O'Brien",
        "ob@example.com",
        "",
        "customer",
        "",
        awkward,
    ]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(admin_users_function, db, start):
    formula = f"{start}cmd|'/C calc'!A0"  # fits every column, postcode's 20 included
    with db.begin() as connection:
        add_user(
            connection,
            "f@example.com",
            name=formula,
            phone=formula,
            company_name=formula,
            city=formula,
            postcode=formula,
        )

    _, content = export(admin_users_function)

    row = records(content)[1]
    assert [row[0], row[2], row[5], row[6], row[7]] == [f"'{formula}"] * 5


def test_a_phone_number_starting_with_plus_is_kept_as_text(admin_users_function, db):
    with db.begin() as connection:
        add_user(connection, "intl@example.com", name="Intl", phone="+44 7700 900123")

    _, content = export(admin_users_function)

    assert records(content)[1][2] == "'+44 7700 900123"


def test_the_export_takes_the_lists_filters_and_sort(admin_users_function, db):
    with db.begin() as connection:
        for name in ("Bea Smith", "Al Smith", "Cy Jones"):
            add_user(connection, f"{name.split()[0].lower()}@example.com", name=name)
        add_user(connection, "staff@example.com", name="Di Smith", role="admin")

    _, content = export(
        admin_users_function,
        {"search": "smith", "role": "customer", "sort": "name", "order": "asc", "format": "csv"},
    )

    assert [row[0] for row in records(content)[1:]] == ["Al Smith", "Bea Smith"]


def test_invalid_filters_are_422_and_write_nothing(admin_users_function, db, export_bucket):
    status, body, _ = call(
        admin_users_function, "GET", "/api/admin/users/export", query={"hasBookings": "maybe"}
    )

    assert status == 422
    assert body["errors"][0]["field"] == "hasBookings"
    assert boto3.client("s3").list_objects_v2(Bucket=export_bucket)["KeyCount"] == 0


# --- scale ---------------------------------------------------------------------------------

SCALE_CUSTOMERS = int(os.environ.get("RFT_EXPORT_SCALE_CUSTOMERS", "100000"))


@pytest.fixture(scope="module")
def scale_database(postgres_server_url) -> Iterator[str]:
    """A database of its own with ``SCALE_CUSTOMERS`` generated customers.

    The trigram search index is dropped here before generating: maintaining it
    triples the time to insert the rows, and the export never searches.
    """
    url = scratch_database(postgres_server_url, "rft_export_scale_test")
    migrations.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_users_search_trgm"))
        generate_customers(connection, SCALE_CUSTOMERS)
    engine.dispose()
    yield url


@pytest.fixture
def app_on_scale_database(scale_database, monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", scale_database)
    settings.get_settings.cache_clear()
    postgres.reset_pool()
    add_signed_in_admin()
    yield scale_database
    settings.get_settings.cache_clear()
    postgres.reset_pool()


def test_a_large_export_streams_to_s3_in_parts_and_the_response_is_a_redirect(
    admin_users_function, app_on_scale_database
):
    status, _, raw = call(
        admin_users_function, "GET", "/api/admin/users/export", headers=dashboard_headers()
    )

    assert status == 303
    assert len(raw["body"]) < 2_000
    content, etag = stored_object(headers_of(raw)["location"])
    rows = records(content)
    assert len(rows) - 1 == SCALE_CUSTOMERS + 1  # and the signed-in admin
    assert len(content.encode()) > LAMBDA_RESPONSE_LIMIT
    parts = int(json.loads(etag).rpartition("-")[2])  # a multipart ETag ends in -<parts>
    assert parts >= 2
    assert len(content.encode()) / parts < 2 * PART_BYTES  # never more than ~a part in memory
    engine = create_engine(app_on_scale_database)
    with engine.connect() as connection:
        emails = set(connection.execute(text("SELECT email FROM users")).scalars())
    engine.dispose()
    assert {row[1] for row in rows[1:]} == emails
