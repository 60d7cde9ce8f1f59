"""The template's backfill timeouts are the ones ``rft_common.backfill.timeouts``
derives from each other."""

from __future__ import annotations

from rft_common.backfill import timeouts as backfill_timeouts
from rft_tools.cfn_template import load_template
from tests.conftest import PROJECT_ROOT

RESOURCES = load_template(PROJECT_ROOT / "template.yaml")["Resources"]
WORKER = RESOURCES["BackfillWorkerFunction"]["Properties"]
QUEUE = RESOURCES["BackfillQueue"]["Properties"]


def test_the_socket_timeout_is_the_derivations():
    socket = WORKER["Environment"]["Variables"]["DB_SOCKET_TIMEOUT_SECONDS"]

    assert int(socket) == backfill_timeouts.SOCKET_TIMEOUT_SECONDS


def test_the_function_timeout_fits_a_batch_its_retry_and_the_rest_of_the_invocation():
    assert WORKER["Timeout"] == backfill_timeouts.FUNCTION_TIMEOUT_SECONDS
    assert WORKER["Timeout"] > 2 * backfill_timeouts.SOCKET_TIMEOUT_SECONDS


def test_the_visibility_timeout_is_six_function_timeouts():
    assert QUEUE["VisibilityTimeout"] == backfill_timeouts.VISIBILITY_TIMEOUT_SECONDS
    assert QUEUE["VisibilityTimeout"] == 6 * WORKER["Timeout"]
