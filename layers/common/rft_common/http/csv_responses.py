"""How a route answers with a CSV export (``kit.csv_export``): the file itself, a JSON
link for scripts, or 303 to the file in S3; and how the OpenAPI document says so."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from rft_common.core.observability import logger
from rft_common.kit.csv_export import CSV_CONTENT_TYPE, ExportLink, InlineCsv


def csv_responses(file_name: str) -> dict[int | str, dict[str, Any]]:
    """The documented answers of a CSV export saved as ``file_name``."""
    return {
        200: {
            "description": "The CSV file itself (`Content-Disposition: attachment; "
            f"filename={file_name}`); with `Accept: application/json`, a download link",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"model": ExportLink},
            },
        },
        303: {
            "description": "The file is too big for a response (about 6 MB): `Location` is "
            "a presigned S3 URL of it, valid for 15 minutes (the bucket allows the admin "
            "origin)",
        },
    }


def wants_json(accept: str | None) -> bool:
    """Whether the caller asked for JSON rather than the file (scripts, not the dashboard)."""
    types = {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}
    return "application/json" in types and "text/csv" not in types


def csv_export_response(
    exported: InlineCsv | ExportLink, *, as_link: bool, what: str, admin_id: int
) -> Response[Any]:
    """The CSV itself, the JSON link (``as_link``), or 303 to the file in S3; the export
    of ``what`` logged with the admin who asked (``admin_id``)."""
    logger.info(
        f"{what} exported",
        extra={
            "admin_id": admin_id,
            "rows": exported.rows,
            "file_name": exported.file_name,
            "inline": isinstance(exported, InlineCsv),
        },
    )
    if isinstance(exported, InlineCsv):
        return Response(
            status_code=200,
            content_type=CSV_CONTENT_TYPE,
            body=exported.text,
            headers={"Content-Disposition": f"attachment; filename={exported.file_name}"},
        )
    if as_link:
        return Response(
            status_code=200,
            content_type="application/json",
            body=exported.model_dump_json(by_alias=True),
        )
    return Response(
        status_code=303,
        content_type="text/plain; charset=utf-8",
        body=f"The export is at {exported.download_url}",
        headers={"Location": exported.download_url},
    )
