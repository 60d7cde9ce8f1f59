"""The stack migrates without alembic.ini's logging: its console handler on the root logger
printed every message of the functions' Logger (created earlier) a second time."""

from __future__ import annotations

import logging

from rft_tools.operations import migrations
from tests.conftest import scratch_database


def test_the_stacks_migrations_leave_the_root_loggers_handlers_alone(
    postgres_server_url: str,
) -> None:
    url = scratch_database(postgres_server_url, "rft_migrations_logging")
    handlers = list(logging.root.handlers)
    migrations.upgrade(url, configure_logging=False)
    assert logging.root.handlers == handlers
