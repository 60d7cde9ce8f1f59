"""Opaque keyset cursors: where the previous page ended, bound to the query it paged.

A cursor carries the last row's sort key and id, and a fingerprint of the query
(filters, sort, order, or the user whose bookings are paged). A cursor presented
with a different query is refused rather than silently paging something else.
Cursors are not secret: tampering can only move the position within the same query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from rft_common.core.errors import InvalidRequest

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
"""The most rows one page of any admin list holds."""

READ_ONLY_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
"""First statement of a read: the page and its total see the same data."""


def query_fingerprint(query: Any) -> str:
    """A short stable digest of anything JSON-serialisable that defines a query."""
    canonical = json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(fingerprint: str, position: list[Any]) -> str:
    payload = json.dumps({"q": fingerprint, "after": position}, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(token: str, fingerprint: str) -> list[Any]:
    """The position a cursor carries; ``InvalidRequest`` naming ``cursor`` otherwise."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidRequest("not a cursor issued by this API", field="cursor") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("after"), list):
        raise InvalidRequest("not a cursor issued by this API", field="cursor")
    if payload.get("q") != fingerprint:
        raise InvalidRequest(
            "this cursor belongs to a different search, filter or sort; "
            "repeat the request without it to start again",
            field="cursor",
        )
    return payload["after"]
