"""GET /api/openapi.json and GET /api/docs: one OpenAPI document for the whole API.

The document is generated, not written: a resolver that includes every router of
every function renders it (``get_openapi_json_schema``), so it lists each route with
its parameters, bodies, responses and the shared error shape, and declares the
admin routes' bearer scheme. That resolver only renders; it never serves a request.
The Swagger UI page embeds the document and Swagger's own files, so it works offline.

Rendering imports every other router and Powertools' OpenAPI models and builds every
schema (about 300 ms), so ``sam build`` renders the document once into the layer
(``PRERENDERED``, layers/common/Makefile) and the function only reads it. Where that
file is absent (locally, in tests) the first request renders it instead.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi import swagger_ui as swagger_files
from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from rft_common.http.api import ERROR_RESPONSES, security_schemes

router = Router()

TITLE = "React Fast Training customer user system"
VERSION = "1.0.0"
DESCRIPTION = (
    "The booking site's checkout (`/api/bookings`), the admin dashboard's sign-in "
    "(`/api/admin/auth`), its users API (`/api/admin/users`), UK GDPR subject access and "
    "erasure (`/api/admin/users/{user_id}/data-export`, `/erase`) and certificate renewals "
    "(`/api/admin/renewals`). Every error has the body `{message, errors: [{field, message}]}`. "
    "Admin routes need `Authorization: Bearer <token>` with the access token "
    "`POST /api/admin/auth/login` answers (HS256 JWT with "
    "`id`, `email`, `role: admin`, `iss` and `aud`); locally, `rft dev token --role admin` "
    "prints one."
)
SWAGGER_FILES = Path(swagger_files.__file__).parent
PRERENDERED = Path(__file__).resolve().parent.parent / "openapi.json"
"""``render_document()`` as the layer ships it (``rft_common/openapi.json``)."""


def _all_routers() -> list[Router]:
    from rft_common.checkout import admin_routes as admin_payments
    from rft_common.checkout import booking_routes as bookings
    from rft_common.checkout import routes as checkout
    from rft_common.checkout import webhook_routes as stripe_webhook
    from rft_common.consent import routes as unsubscribe
    from rft_common.privacy import routes as admin_privacy
    from rft_common.renewals import routes as admin_renewals
    from rft_common.staff import routes as admin_auth
    from rft_common.users import duplicate_routes as admin_duplicates
    from rft_common.users import routes as admin_users

    return [
        checkout.router,
        bookings.router,
        stripe_webhook.router,
        unsubscribe.router,
        admin_auth.router,
        admin_users.router,
        admin_duplicates.router,
        admin_payments.router,
        admin_privacy.router,
        admin_renewals.router,
        router,
    ]


def render_document() -> str:
    """The OpenAPI 3.1 document, with ``/`` as its server.

    Rendered by a plain validating resolver: ``create_resolver``'s setting for failed
    response validation would document Powertools' own 500 body, which the functions
    never send (their catch-all handler answers with ``ErrorResponse``).
    """
    from aws_lambda_powertools.event_handler.openapi.models import Server

    resolver = APIGatewayRestResolver(enable_validation=True)
    for included in _all_routers():
        resolver.include_router(included)
    return resolver.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        servers=[Server(url="/")],
        security_schemes=security_schemes(),
    )


@cache
def api_document(base_path: str) -> str:
    """The document with ``base_path`` (e.g. ``/prod``) as its server: the layer's
    rendering if it ships one, else rendered now."""
    rendered = (
        PRERENDERED.read_text(encoding="utf-8") if PRERENDERED.exists() else render_document()
    )
    document = json.loads(rendered)
    document["servers"] = [{"url": base_path or "/"}]
    return json.dumps(document)


@cache
def swagger_asset(name: str) -> str:
    """One of Swagger UI's files from Powertools' package. The layer ships them gzipped
    (1.3 MB less, layers/common/Makefile); a local install has them as they are."""
    path = SWAGGER_FILES / name
    if path.exists():
        return path.read_text(encoding="utf-8")
    import gzip

    return gzip.decompress(path.with_name(f"{name}.gz").read_bytes()).decode("utf-8")


def _base_path() -> str:
    """The stage prefix the browser must add, as Powertools' own Swagger route finds it."""
    context = cast(APIGatewayProxyEvent, router.current_event).request_context
    stage = context.stage
    if stage and stage != "$default" and context.path.startswith(f"/{stage}"):
        return f"/{stage}"
    return ""


@router.get(
    "/api/openapi.json",
    summary="This API's OpenAPI 3.1 document",
    tags=["docs"],
    responses={
        200: {"description": "The document", "content": {"application/json": {}}},
        422: ERROR_RESPONSES[422],
        500: ERROR_RESPONSES[500],
    },
)
def openapi_json() -> Response[str]:
    return Response(
        status_code=200, content_type="application/json", body=api_document(_base_path())
    )


@router.get(
    "/api/docs",
    summary="Swagger UI for the OpenAPI document",
    tags=["docs"],
    responses={
        200: {"description": "An HTML page", "content": {"text/html": {}}},
        422: ERROR_RESPONSES[422],
        500: ERROR_RESPONSES[500],
    },
)
def swagger_ui() -> Response[str]:
    page = generate_swagger_html(
        # Escaped so that the document cannot close the page's <script> element.
        api_document(_base_path()).replace("</", "<\\/"),
        swagger_asset("swagger-ui-bundle.min.js"),
        swagger_asset("swagger-ui.min.css"),
        swagger_base_url="",
        oauth2_config=None,
        persist_authorization=True,
    )
    return Response(status_code=200, content_type="text/html", body=page)
