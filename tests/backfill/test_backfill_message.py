"""The backfill message contract: the committed JSON Schema, the example operators
send, and what the worker refuses. Version 2 (a range of email keys) is what enqueue
sends; version 1 (a range of booking ids) is still accepted from the queue."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from rft_common.backfill.service import (
    BookingRangeMessage,
    EmailKeyRangeMessage,
    message_json_schema,
    parse_message,
)
from tests.conftest import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "docs" / "backfill-message.schema.json"
EXAMPLE_FILE = PROJECT_ROOT / "docs" / "backfill-message.example.json"
VALID_V2 = {"version": 2, "batchId": "b-2", "firstEmailKey": -5, "lastEmailKey": 10}
VALID_V1 = {"version": 1, "batchId": "b-1", "firstBookingId": 1, "lastBookingId": 10}


def test_the_committed_schema_is_the_one_the_worker_validates_with():
    committed = json.loads(SCHEMA_FILE.read_text())

    assert committed == message_json_schema(), "regenerate: rft backfill schema > " + str(
        SCHEMA_FILE.relative_to(PROJECT_ROOT)
    )


def test_the_operators_example_is_a_valid_version_2_message():
    example = EXAMPLE_FILE.read_text()

    jsonschema.validate(json.loads(example), json.loads(SCHEMA_FILE.read_text()))
    message = parse_message(example)
    assert isinstance(message, EmailKeyRangeMessage)
    assert message.batch_id == "manual-2026-11-25-001"


@pytest.mark.parametrize(
    ("body", "kind"),
    [(VALID_V2, EmailKeyRangeMessage), (VALID_V1, BookingRangeMessage)],
    ids=["version 2", "version 1"],
)
def test_both_versions_round_trip_through_their_json(body, kind):
    message = parse_message(json.dumps(body))

    assert isinstance(message, kind)
    assert json.loads(message.to_json()) == body
    jsonschema.validate(body, message_json_schema())


@pytest.mark.parametrize(
    "body",
    [
        VALID_V2 | {"version": 3},
        VALID_V2 | {"version": "2"},
        VALID_V2 | {"firstEmailKey": "1"},
        VALID_V2 | {"firstEmailKey": -(2**31) - 1},
        VALID_V2 | {"lastEmailKey": 2**31},
        VALID_V2 | {"firstEmailKey": 11},
        {"version": 2, "batchId": "b-2", "firstBookingId": 1, "lastBookingId": 10},
        VALID_V1 | {"version": "1"},
        VALID_V1 | {"firstBookingId": "1"},
        VALID_V1 | {"firstBookingId": 0},
        VALID_V1 | {"lastBookingId": 2**31},
        VALID_V1 | {"firstBookingId": 11},
        {"version": 1, "batchId": "b-1", "firstEmailKey": 1, "lastEmailKey": 2},
        VALID_V2 | {"batchId": ""},
        VALID_V2 | {"batchId": "has space"},
        VALID_V1 | {"batchId": "x" * 65},
        VALID_V2 | {"priority": "high"},
        {"version": 2, "batchId": "b-1"},
    ],
    ids=lambda body: json.dumps(body)[:60],
)
def test_messages_outside_the_contract_are_refused_by_the_worker(body):
    with pytest.raises(ValidationError):
        parse_message(json.dumps(body))


@pytest.mark.parametrize(
    "body",
    [
        VALID_V2 | {"version": 3},
        VALID_V2 | {"lastEmailKey": 2**31},
        VALID_V1 | {"firstBookingId": 0},
        VALID_V2 | {"priority": "high"},
        {"version": 1, "batchId": "b-1", "firstEmailKey": 1, "lastEmailKey": 2},
    ],
    ids=lambda body: json.dumps(body)[:60],
)
def test_the_schema_refuses_them_too(body):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, message_json_schema())


def test_a_backwards_range_names_its_fields():
    with pytest.raises(ValidationError, match="firstEmailKey must not exceed lastEmailKey"):
        parse_message(json.dumps(VALID_V2 | {"firstEmailKey": 11}))
