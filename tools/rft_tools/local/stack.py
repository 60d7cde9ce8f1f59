"""The local stack behind ``make run``: database, migrations, flags, local AWS,
localstripe (with its webhook pointed at the local API), the SQS pollers, the rate
schedules (the email sender among them), the API; emails go to moto's SES and
``rft mail list`` reads them.

The API is served by ``local.api`` straight from ``template.yaml``. SIGINT (Ctrl-C)
and SIGTERM stop everything this process started, the embedded database included.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
from contextlib import ExitStack
from types import FrameType

from sqlalchemy import create_engine

from rft_common.db.postgres import transaction_at
from rft_tools.cfn_template import load_template
from rft_tools.checks.flag_document import flags_file
from rft_tools.data.demo import seed_demo
from rft_tools.local.admin import local_admin_environment, local_staff
from rft_tools.local.api import make_server
from rft_tools.local.aws import LOCAL_CREDENTIALS, LOCAL_RESOURCES, start_moto_server
from rft_tools.local.db import local_database
from rft_tools.local.mail import local_email_environment
from rft_tools.local.schedule import start_local_schedules
from rft_tools.local.sqs import create_backfill_queues, start_sqs_pollers
from rft_tools.local.stripe import (
    LOCAL_STRIPE_WEBHOOK_SECRET,
    local_stripe_environment,
    localstripe,
    register_webhook,
)
from rft_tools.operations import migrations
from rft_tools.paths import LOCAL_DIR, PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "template.yaml"
LOCAL_UNSUBSCRIBE_SECRET = "rft-local-stack-only-unsubscribe-key-never-used-in-aws-24680"  # noqa: S105
"""Keys the local stack's unsubscribe links, so that links it mails work across restarts."""
LOCAL_RESOURCES.append(create_backfill_queues)
LOCAL_RESOURCES.append(local_admin_environment)
LOCAL_RESOURCES.append(local_email_environment)


def _stop(signum: int, frame: FrameType | None) -> None:
    """Begin shutdown once; further signals must not interrupt the cleanup."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _add_local_staff(url: str) -> None:
    """The staff members ``rft dev token`` acts as."""
    with transaction_at(url) as connection:
        staff = local_staff(connection)
    print(
        "local staff (rft dev token acts as them): "
        + ", ".join(f"{role} id {user_id}" for role, user_id in sorted(staff.items()))
    )


def _seed_demo(url: str) -> None:
    """The demo sessions, on the first start and again whenever the earlier ones started."""
    engine = create_engine(url)
    with engine.begin() as connection:
        sessions = seed_demo(connection)
    engine.dispose()
    print(f"{len(sessions)} upcoming demo sessions (rft seed demo lists them)")


def local_environment(database_url: str, aws_endpoint: str) -> dict[str, str]:
    """What the template's intrinsic values stand for locally."""
    return {
        "DATABASE_URL": database_url,
        "RFT_FLAGS_FILE": str(flags_file()),
        "AWS_ENDPOINT_URL": aws_endpoint,
        "UNSUBSCRIBE_SECRET": LOCAL_UNSUBSCRIBE_SECRET,
        **LOCAL_CREDENTIALS,
    }


def _create_local_resources(environment: dict[str, str]) -> dict[str, str]:
    """Create queues, buckets... in the local AWS; their env vars join the environment."""
    os.environ.update(environment)
    template = load_template(TEMPLATE)
    created: dict[str, str] = {}
    for create in LOCAL_RESOURCES:
        created |= create(template)
    return created


def _refuse_a_taken_port(host: str, port: int) -> None:
    """Fail in one line before starting anything, rather than after, in a traceback."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the API server does
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise SystemExit(
                    f"rft run: port {port} on {host} is already in use; stop what holds it, "
                    f"or pick another: PORT={port + 1} make run"
                ) from None
            raise


def run(host: str, port: int) -> None:
    _refuse_a_taken_port(host, port)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with ExitStack() as stack:
        url = stack.enter_context(local_database())
        migrations.upgrade(url, configure_logging=False)  # the functions' logs print once
        _add_local_staff(url)  # first: on a fresh database the admin is user 1
        _seed_demo(url)
        aws, aws_endpoint = start_moto_server()
        stack.callback(aws.stop)
        stripe_url = stack.enter_context(
            localstripe(LOCAL_DIR / "localstripe.log", LOCAL_DIR / "localstripe.pickle")
        )
        environment = local_environment(url, aws_endpoint) | local_stripe_environment(stripe_url)
        environment |= _create_local_resources(environment)
        # SQS event sources (the backfill worker), polled like Lambda does
        stack.callback(start_sqs_pollers(TEMPLATE, environment).stop)
        # rate schedules (the duplicate scan), every RFT_LOCAL_SCHEDULE_SECONDS
        stack.callback(start_local_schedules(TEMPLATE, environment).stop)
        server = make_server(TEMPLATE, host, port, environment)
        stack.callback(server.server_close)
        routes = sorted({f"{r.method} {r.path}" for r in server.api.routes})
        api_url = f"http://{host}:{server.server_address[1]}"
        register_webhook(stripe_url, f"{api_url}/api/stripe/webhook", LOCAL_STRIPE_WEBHOOK_SECRET)
        banner = {
            "api": api_url,
            "aws_endpoint": aws_endpoint,
            "stripe": stripe_url,
            "mail": f"AWS_ENDPOINT_URL={aws_endpoint} rft mail list  (emails sent, newest first)",
        }
        print(json.dumps(banner | {"routes": routes}))
        print("press Ctrl-C to stop", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopping")
