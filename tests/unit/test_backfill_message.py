"""The backfill message contract: the committed JSON Schema, the example operators
send, and what the worker refuses."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from rft_common.backfill import BackfillMessage, message_json_schema
from tests.conftest import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "docs" / "backfill-message.schema.json"
EXAMPLE_FILE = PROJECT_ROOT / "docs" / "backfill-message.example.json"
VALID = {"version": 1, "batchId": "b-1", "firstBookingId": 1, "lastBookingId": 10}


def test_the_committed_schema_is_the_one_the_worker_validates_with():
    committed = json.loads(SCHEMA_FILE.read_text())

    assert committed == message_json_schema(), "regenerate: rft backfill schema > " + str(
        SCHEMA_FILE.relative_to(PROJECT_ROOT)
    )


def test_the_operators_example_is_a_valid_message():
    example = EXAMPLE_FILE.read_text()

    jsonschema.validate(json.loads(example), json.loads(SCHEMA_FILE.read_text()))
    assert BackfillMessage.model_validate_json(example).batch_id == "manual-2026-11-25-001"


def test_a_message_round_trips_through_its_json():
    message = BackfillMessage.model_validate(VALID)

    assert json.loads(message.to_json()) == VALID


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"version": "1"},
        {"firstBookingId": "1"},
        {"firstBookingId": 0},
        {"lastBookingId": 2**31},
        {"batchId": ""},
        {"batchId": "has space"},
        {"batchId": "x" * 65},
        {"priority": "high"},
    ],
    ids=lambda change: json.dumps(change)[:40],
)
def test_messages_outside_the_schema_are_refused_by_schema_and_worker_alike(change):
    body = VALID | change

    with pytest.raises(ValidationError):
        BackfillMessage.model_validate_json(json.dumps(body))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, message_json_schema())


def test_a_backwards_range_is_refused():
    with pytest.raises(ValidationError, match="must not exceed"):
        BackfillMessage.model_validate(VALID | {"firstBookingId": 11})


def test_a_message_without_a_range_is_refused():
    with pytest.raises(ValidationError):
        BackfillMessage.model_validate({"version": 1, "batchId": "b-1"})
