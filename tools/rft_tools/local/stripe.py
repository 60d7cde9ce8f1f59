"""localstripe, a Stripe-compatible server, for the local stack and the tests.

Started as a child process (``local.localstripe_server``) on a free port of 127.0.0.1
with an empty store, pickled to a file of the caller's (mode 0600; the stack's is under
``.local/``, the tests' in a temporary directory), and stopped with the stack.
The SDK reaches it through ``STRIPE_API_BASE``; any ``sk_test_`` key works.
localstripe ignores Idempotency-Keys, has no ``charge.refunded`` event and answers 500
to ``confirm`` with a payment method (attach the method with ``modify``
first): see docs/api.md, "Checkout and payments".
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

LOCAL_STRIPE_SECRET_KEY = "sk_test_rft_local_stack_only"  # noqa: S105 - localstripe accepts any
LOCAL_STRIPE_WEBHOOK_SECRET = "whsec_rft_local_stack_only_never_used_in_aws"  # noqa: S105
WEBHOOK_ENDPOINT_ID = "rft-local"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(  # noqa: S310 - loopback URL built here
        f"{url}/v1/customers", headers={"Authorization": f"Bearer {LOCAL_STRIPE_SECRET_KEY}"}
    )
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"localstripe exited with {process.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=1):  # noqa: S310 - loopback URL built here
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise TimeoutError(f"localstripe did not serve within {timeout_s} s")


@contextmanager
def localstripe(log: Path | None = None, store: Path | None = None) -> Iterator[str]:
    """A fresh localstripe for the duration of the block; yields its base URL.

    Its store is pickled to ``store``, or to a temporary directory removed afterwards.
    """
    with ExitStack() as cleanup:
        if store is None:
            store = Path(cleanup.enter_context(tempfile.TemporaryDirectory())) / "store.pickle"
        yield cleanup.enter_context(_serving(log, store))


@contextmanager
def _serving(log: Path | None, store: Path) -> Iterator[str]:
    port = _free_port()
    output = log.open("w") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "rft_tools.local.localstripe_server",
            "--port",
            str(port),
            "--store",
            str(store),
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log is not None:
            output.close()


def register_webhook(api_base: str, target_url: str, secret: str) -> None:
    """Make localstripe post its events to ``target_url``, signed with ``secret``."""
    body = urllib.parse.urlencode({"url": target_url, "secret": secret}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback URL built here
        f"{api_base}/_config/webhooks/{WEBHOOK_ENDPOINT_ID}", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - loopback URL built here
        pass


def local_stripe_environment(api_base: str) -> dict[str, str]:
    """What stands in locally for the template's Stripe secrets."""
    return {
        "STRIPE_API_BASE": api_base,
        "STRIPE_SECRET_KEY": LOCAL_STRIPE_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": LOCAL_STRIPE_WEBHOOK_SECRET,
    }
