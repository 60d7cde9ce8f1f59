"""localstripe as the stack runs it: on 127.0.0.1 only, its store private to the caller."""

from __future__ import annotations

import json
import socket
import stat
import urllib.parse
import urllib.request
from pathlib import Path

from rft_tools.local.stripe import LOCAL_STRIPE_SECRET_KEY, localstripe


def _create_customer(api_base: str) -> str:
    request = urllib.request.Request(
        f"{api_base}/v1/customers",
        data=urllib.parse.urlencode({"email": "ada@example.com"}).encode(),
        headers={"Authorization": f"Bearer {LOCAL_STRIPE_SECRET_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["id"]


def test_the_store_is_the_callers_file_with_mode_0600_and_only_loopback_listens(
    tmp_path: Path,
) -> None:
    store = tmp_path / "localstripe.pickle"
    with localstripe(store=store) as api_base:
        _create_customer(api_base)
        port = urllib.parse.urlsplit(api_base).port
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as other_interface:
            assert other_interface.connect_ex(("::1", port)) != 0
