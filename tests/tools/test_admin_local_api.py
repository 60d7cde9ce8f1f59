"""The admin API through the template-driven local server (what ``make run`` serves).

API Gateway routes ``/api/admin/users/export`` to the export even though
``/api/admin/users/{user_id}`` matches it too (a literal segment wins); the legacy
app got this wrong. The export answers the CSV itself; a script's JSON link is
downloaded from the local S3 (moto).
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from rft_common.core import settings
from rft_common.kit import csv_export as export
from rft_tools.cfn_template import load_template
from rft_tools.local.admin import LOCAL_ADMIN_JWT_SECRET, local_admin_environment
from rft_tools.local.api import make_server
from rft_tools.local.aws import LOCAL_CREDENTIALS, start_moto_server
from tests.admin_helpers import add_user, token_for
from tests.conftest import PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "template.yaml"
pytestmark = pytest.mark.usefixtures("signed_in_admin")


@pytest.fixture
def local_api(db, database_url, set_flags) -> Iterator[str]:
    """The local server on a free port, with the stack's local AWS and admin settings."""
    set_flags({"admin_users_api": {"default": True}})
    saved_environment = dict(os.environ)
    aws, endpoint = start_moto_server()
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, **LOCAL_CREDENTIALS})
    environment = {
        "DATABASE_URL": database_url,
        "RFT_FLAGS_FILE": os.environ["RFT_FLAGS_FILE"],
        "AWS_ENDPOINT_URL": endpoint,
        **LOCAL_CREDENTIALS,
        **local_admin_environment(load_template(TEMPLATE)),
    }
    server = make_server(TEMPLATE, "127.0.0.1", 0, environment)
    settings.get_settings.cache_clear()
    export.s3_client.cache_clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        aws.stop()
        os.environ.clear()
        os.environ.update(saved_environment)
        settings.get_settings.cache_clear()
        export.s3_client.cache_clear()


def get(url: str, token: str | None = None, **headers: str) -> tuple[int, str, bytes]:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def local_token(role: str = "admin") -> str:
    return token_for(role, secret=LOCAL_ADMIN_JWT_SECRET)


def test_export_is_not_shadowed_by_the_user_route_and_answers_the_csv(local_api, db):
    with db.begin() as connection:
        add_user(connection, "sam@example.com", name="Sam Patel")

    status, content_type, csv_bytes = get(
        f"{local_api}/api/admin/users/export?role=customer&format=csv",
        local_token(),
        **{"Content-Type": "application/json"},
    )

    assert (status, content_type) == (200, "text/csv; charset=utf-8")
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"), newline="")))
    assert [row[:2] for row in rows] == [["Name", "Email"], ["Sam Patel", "sam@example.com"]]


def test_a_scripts_export_link_downloads_from_the_local_s3(local_api, db):
    with db.begin() as connection:
        add_user(connection, "sam@example.com", name="Sam Patel")

    status, _, body = get(
        f"{local_api}/api/admin/users/export?role=customer",
        local_token(),
        Accept="application/json",
    )
    exported = json.loads(body)
    link_status, content_type, csv_bytes = get(exported["downloadUrl"])

    assert status == 200, body
    assert exported["rows"] == 1
    assert (link_status, content_type) == (200, "text/csv; charset=utf-8")
    assert csv_bytes.decode("utf-8-sig").splitlines()[1].startswith("Sam Patel,")


def test_the_user_route_still_serves_ids(local_api, db):
    with db.begin() as connection:
        user_id = add_user(connection, "sam@example.com", name="Sam Patel")

    found = get(f"{local_api}/api/admin/users/{user_id}", local_token())
    not_an_id = get(f"{local_api}/api/admin/users/exports", local_token())

    assert found[0] == 200
    assert json.loads(found[2])["id"] == user_id
    assert not_an_id[0] == 422


def test_the_local_stack_refuses_anonymous_and_non_admin_callers(local_api, db):
    assert get(f"{local_api}/api/admin/users")[0] == 401
    assert get(f"{local_api}/api/admin/users", local_token("instructor"))[0] == 403
    assert get(f"{local_api}/api/admin/users", token_for())[0] == 401  # not the local secret


def test_the_docs_are_served_without_a_token(local_api, db):
    document = get(f"{local_api}/api/openapi.json")
    page = get(f"{local_api}/api/docs")

    assert document[0] == 200
    assert json.loads(document[2])["servers"] == [{"url": "/"}]
    assert (page[0], page[1]) == (200, "text/html")
