"""Local AWS for the stack: one in-process moto server (SQS, S3, Secrets Manager...).

Handlers and the ``rft`` CLI reach it through ``AWS_ENDPOINT_URL``, which boto3
honours for every client, with dummy credentials. Anything that needs resources in
it (queues, buckets) registers a ``LocalResource`` in ``LOCAL_RESOURCES``; the stack
creates them from the template's settings on start and exports what they return as
environment variables.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

LocalResource = Callable[[dict[str, Any]], dict[str, str]]
"""Given the loaded template, create local resources; return env vars describing them."""

LOCAL_RESOURCES: list[LocalResource] = []

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_REGION": "eu-west-2",
    "AWS_DEFAULT_REGION": "eu-west-2",
}


def start_moto_server() -> tuple[Any, str]:
    """Start moto on a free loopback port; returns the server and its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"
