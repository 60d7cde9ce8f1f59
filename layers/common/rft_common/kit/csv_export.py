"""CSV exports, in the response when they fit, else via S3: the kit the users and
renewals exports share.

The admin dashboard saves whatever body the export answers as ``users-YYYY-MM-DD.csv``,
so the CSV itself is the answer. A synchronous Lambda response is capped at 6 MB
(of JSON, in which the CSV is one escaped string) and 300,000 customers make about
45 MB of CSV, so a file whose escaped size passes ``INLINE_LIMIT_BYTES`` goes to S3
instead and the caller is sent there (303 to a presigned GET URL valid for
``LINK_SECONDS``). Rows stream from PostgreSQL through a server-side cursor
(``FETCH_BATCH``: 5,000 at a time); once a file is known to be too big, what was read
so far and every further batch go into an S3 multipart upload (``PART_BYTES``
parts), so memory stays flat whatever the size. Scripts that ask for JSON always get
the link. The bucket deletes exports after a day (template.yaml).

Every file is UTF-8 (with a byte-order mark, so that Excel reads the accents in names),
with RFC 4180 quoting from the ``csv`` module. A cell that a spreadsheet would run
as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) is
prefixed with ``'``, as OWASP recommends against CSV injection.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rft_common.core.errors import FeatureDisabled
from rft_common.core.settings import get_settings
from rft_common.core.vocabulary import BUSINESS_TIME_ZONE
from rft_common.db.paging import READ_ONLY_SNAPSHOT
from rft_common.db.postgres import Connection, run_transaction

DECLARE_EXPORT_CURSOR = "DECLARE export_rows NO SCROLL CURSOR FOR "
"""Put before an export's SELECT: its rows are then read in batches (``FETCH_BATCH``)."""
FETCH_BATCH = "FETCH FORWARD 5000 FROM export_rows"
"""The next rows of the export (FETCH takes its count as a literal, not a parameter)."""
PART_BYTES = 8 * 1024 * 1024  # S3's minimum part is 5 MiB
LINK_SECONDS = 15 * 60
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BYTE_ORDER_MARK = "\ufeff"
INLINE_LIMIT_BYTES = 5_500_000
"""Most CSV (JSON-escaped) a response carries: Lambda's 6 MB less room for headers."""
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


class ExportLink(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    download_url: str = Field(description="Presigned GET URL of the CSV file")
    expires_at: datetime = Field(description="When the download URL stops working")
    file_name: str
    rows: int = Field(description="Rows in the file (the header line not counted)")


@dataclass(frozen=True)
class InlineCsv:
    """An export small enough to be the response itself."""

    text: str
    file_name: str
    rows: int


def neutralise(cell: str) -> str:
    """``'`` before a cell a spreadsheet would evaluate as a formula."""
    return f"'{cell}" if cell.startswith(FORMULA_PREFIXES) else cell


def csv_record(row: Sequence[Any], text_cells: int) -> list[str]:
    typed = [neutralise(cell or "") for cell in row[:text_cells]]
    return typed + list(row[text_cells:])


def csv_chunks(
    batches: Iterable[Iterable[Any]], header: Sequence[str], text_cells: int
) -> Iterator[str]:
    """The whole CSV text, one chunk per batch of rows, header and byte-order mark first.

    The first ``text_cells`` cells of each row are text people typed (neutralised).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF line ends, quotes doubled, quoted as needed
    buffer.write(BYTE_ORDER_MARK)
    writer.writerow(header)
    for batch in batches:
        writer.writerows(csv_record(row, text_cells) for row in batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


@cache
def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    # SigV4 presigning works in every region and for KMS-encrypted objects.
    return boto3.client("s3", config=Config(signature_version="s3v4"))


@dataclass
class MultipartUpload:
    """Bytes written in parts of ``PART_BYTES`` to one new S3 object."""

    bucket: str
    key: str
    content_type: str
    content_disposition: str
    size: int = 0
    _upload_id: str = ""
    _buffer: bytearray = field(default_factory=bytearray)
    _parts: list[dict[str, Any]] = field(default_factory=list)

    def __enter__(self) -> MultipartUpload:
        self._upload_id = s3_client().create_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            ContentType=self.content_type,
            ContentDisposition=self.content_disposition,
        )["UploadId"]
        return self

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= PART_BYTES:
            self._send_part()

    def _send_part(self) -> None:
        number = len(self._parts) + 1
        response = s3_client().upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=bytes(self._buffer),
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self._buffer.clear()

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        if kind is not None:
            s3_client().abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
            )
            return
        if self._buffer or not self._parts:
            self._send_part()
        s3_client().complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )


def export_file_name(now: datetime, kind: str) -> str:
    """``<kind>-YYYY-MM-DD.csv`` with the company's date (``users-...``: the name the
    dashboard saves)."""
    return f"{kind}-{now.astimezone(ZoneInfo(BUSINESS_TIME_ZONE)):%Y-%m-%d}.csv"


def _escaped_size(chunk: str) -> int:
    return len(json.dumps(chunk)) - 2


def export_csv(
    kind: str,
    sql: str,
    parameters: dict[str, Any],
    header: Sequence[str],
    text_cells: int,
    *,
    inline: bool = True,
) -> InlineCsv | ExportLink:
    """The rows of the SELECT ``sql`` as CSV (``<kind>-YYYY-MM-DD.csv``), read in one snapshot:
    the text itself when ``inline`` and it fits in a response, otherwise a file in S3
    (``exports/<kind>/...``) and a link to it. The first ``text_cells`` columns are text
    people typed; the others are formatted by PostgreSQL."""
    now = datetime.now(UTC)
    file_name = export_file_name(now, kind)
    key = f"exports/{kind}/{now:%Y/%m/%d}/{uuid.uuid4().hex}/{file_name}"

    def write(connection: Connection) -> tuple[int, str | None]:
        connection.execute(READ_ONLY_SNAPSHOT)
        rows = 0

        def batches() -> Iterator[Sequence[Any]]:
            nonlocal rows
            connection.execute(DECLARE_EXPORT_CURSOR + sql, parameters)
            while batch := connection.execute(FETCH_BATCH).all():
                rows += len(batch)
                yield batch

        held: list[str] = []
        held_size = 0
        upload: MultipartUpload | None = None
        with ExitStack() as stack:
            for chunk in csv_chunks(batches(), header, text_cells):
                if upload is None and inline:
                    held.append(chunk)
                    held_size += _escaped_size(chunk)
                    if held_size <= INLINE_LIMIT_BYTES:
                        continue
                if upload is None:
                    upload = stack.enter_context(_upload(key, file_name))
                    chunk, held = "".join(held) if held else chunk, []
                upload.write(chunk.encode("utf-8"))
        return rows, None if upload is not None else "".join(held)

    rows, text = run_transaction(write, attempts=1)
    if text is not None:
        return InlineCsv(text=text, file_name=file_name, rows=rows)
    url = s3_client().generate_presigned_url(
        "get_object", Params={"Bucket": _bucket(), "Key": key}, ExpiresIn=LINK_SECONDS
    )
    return ExportLink(
        download_url=url,
        expires_at=now + timedelta(seconds=LINK_SECONDS),
        file_name=file_name,
        rows=rows,
    )


def _bucket() -> str:
    bucket = get_settings().admin_export_bucket
    if not bucket:
        raise FeatureDisabled("exports have no bucket configured (ADMIN_EXPORT_BUCKET)")
    return bucket


def _upload(key: str, file_name: str) -> MultipartUpload:
    return MultipartUpload(
        _bucket(),
        key,
        content_type=CSV_CONTENT_TYPE,
        content_disposition=f"attachment; filename={file_name}",
    )
