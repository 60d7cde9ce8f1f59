"""The local event source mapping reads handler answers and builds events as Lambda does."""

from __future__ import annotations

import pytest

from rft_tools.cfn_template import parse_template
from rft_tools.local.sqs import failed_message_ids, sqs_event, sqs_event_sources
from tests.conftest import PROJECT_ROOT

IDS = ["m-1", "m-2", "m-3"]


@pytest.mark.parametrize(
    "answer",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, "done"],
    ids=["none", "empty", "no-failures", "null-failures", "plain-value"],
)
def test_answers_without_failures_mean_every_message_succeeded(answer):
    assert failed_message_ids(answer, IDS) == set()


def test_named_failures_are_the_only_messages_left_on_the_queue():
    answer = {"batchItemFailures": [{"itemIdentifier": "m-2"}]}

    assert failed_message_ids(answer, IDS) == {"m-2"}


@pytest.mark.parametrize(
    "failures",
    [[{"itemIdentifier": "not-in-batch"}], [{"itemIdentifier": ""}], [{"id": "m-1"}], "m-1"],
    ids=["unknown-id", "empty-id", "wrong-key", "not-a-list"],
)
def test_a_malformed_failure_list_fails_the_whole_batch(failures):
    assert failed_message_ids({"batchItemFailures": failures}, IDS) == set(IDS)


def test_events_carry_what_receive_message_returned_in_lambdas_shape():
    received = {
        "MessageId": "m-1",
        "ReceiptHandle": "handle",
        "Body": '{"version": 1}',
        "MD5OfBody": "md5",
        "MD5OfMessageAttributes": "md5-attributes",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
        "MessageAttributes": {
            "origin": {"StringValue": "operator", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    }

    (record,) = sqs_event([received], "arn:aws:sqs:eu-west-2:123456789012:BackfillQueue")["Records"]

    assert record["messageId"] == "m-1"
    assert record["receiptHandle"] == "handle"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["origin"]["stringValue"] == "operator"
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert record["md5OfMessageAttributes"] == "md5-attributes"
    assert (record["eventSource"], record["awsRegion"]) == ("aws:sqs", "eu-west-2")


def test_batch_size_and_concurrency_come_from_the_template():
    template = parse_template((PROJECT_ROOT / "template.yaml").read_text())
    event = template["Resources"]["BackfillWorkerFunction"]["Properties"]["Events"]
    settings = event["BackfillQueue"]["Properties"]

    (source,) = [
        source
        for source in sqs_event_sources(template, PROJECT_ROOT)
        if source.function.function_id == "BackfillWorkerFunction"
    ]

    assert (source.batch_size, source.maximum_concurrency) == (
        settings["BatchSize"],
        settings["ScalingConfig"]["MaximumConcurrency"],
    )
    assert (source.queue_id, source.function.timeout_s) == ("BackfillQueue", 60)
