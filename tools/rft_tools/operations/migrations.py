"""Run alembic programmatically against a given URL (the CLI, the stack and tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config

from rft_tools.paths import PROJECT_ROOT


def alembic_config() -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return config


@contextmanager
def _database(url: str) -> Iterator[None]:
    """Point the app settings (which migrations/env.py reads) at ``url`` for a while."""
    from rft_common.core.settings import get_settings

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        get_settings.cache_clear()


def upgrade(url: str, revision: str = "head", *, configure_logging: bool = True) -> None:
    """``configure_logging=False`` leaves logging as it is: alembic.ini's console handler on
    the root logger would print every record of a logger created earlier a second time."""
    config = alembic_config()
    config.attributes["configure_logging"] = configure_logging
    with _database(url):
        command.upgrade(config, revision)


def downgrade(url: str, revision: str) -> None:
    with _database(url):
        command.downgrade(alembic_config(), revision)


def stamp(url: str, revision: str) -> None:
    with _database(url):
        command.stamp(alembic_config(), revision)


def check(url: str) -> None:
    with _database(url):
        command.check(alembic_config())
