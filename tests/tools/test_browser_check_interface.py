"""What the company's browser checks (``../shared/realclient``) take from this checkout.

They are run against our stack to judge it, so the names they import and the commands
they run are an interface: each is run here exactly as they run it, through the venv's
interpreter and ``rft``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rft_tools.local.admin import LOCAL_ADMIN_JWT_SECRET
from rft_tools.local.stripe import LOCAL_STRIPE_SECRET_KEY
from tests.conftest import PROJECT_ROOT

IMPORTS = {
    "from rft_tools.local_admin import LOCAL_ADMIN_JWT_SECRET as s; print(s)": (
        LOCAL_ADMIN_JWT_SECRET
    ),
    "from rft_tools import local_stripe as m\nprint(m.LOCAL_STRIPE_SECRET_KEY)": (
        LOCAL_STRIPE_SECRET_KEY
    ),
}


@pytest.mark.parametrize("program", IMPORTS)
def test_the_secrets_they_import_are_the_local_stacks(program):
    printed = subprocess.run(
        [sys.executable, "-c", program], cwd=PROJECT_ROOT, check=True, capture_output=True,
        text=True,
    ).stdout  # fmt: skip

    assert printed.strip() == IMPORTS[program]


def test_rft_seed_demo_prints_the_sessions_they_book(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    printed = subprocess.run(
        [sys.executable, "-m", "rft_tools.cli", "seed", "demo"], cwd=PROJECT_ROOT, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip

    sessions = json.loads(printed)["sessions"]
    assert sessions and {"session_id", "status", "max_capacity", "current_capacity", "price",
                         "course"} <= set(sessions[0])  # fmt: skip
