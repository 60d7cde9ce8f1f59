"""The flag cache under threads (the local stack runs worker invocations on threads)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider

from rft_common.aws.flags import CachedFlagStore

DOCUMENT = json.loads(
    '{"customer_accounts": {"default": true}, "admin_users_api": {"default": true},'
    ' "backfill": {"default": true}}'
)


class SlowStore(StoreProvider):
    """A source that takes a while to answer, as AppConfig does."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        self.calls += 1
        time.sleep(0.05)
        return DOCUMENT

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration


def test_threads_asking_at_once_all_get_the_document_from_one_fetch():
    source = SlowStore()
    store = CachedFlagStore(source, max_age=60)
    start = threading.Barrier(8)

    def ask(_: int) -> dict[str, Any]:
        start.wait()
        return store.get_configuration()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(8)))

    assert answers == [DOCUMENT] * 8
    assert source.calls == 1
