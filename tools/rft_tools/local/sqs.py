"""Local SQS for the stack: the template's queues in moto, and pollers that invoke
functions the way Lambda's SQS event source mapping does.

- ``create_queues`` creates every ``AWS::SQS::Queue`` of the template with its literal
  attributes (visibility timeout, retention, redrive policy with ``maxReceiveCount``;
  the dead-letter target is resolved to the local queue).
- ``SqsPoller`` serves one function's ``SQS`` event: ``MaximumConcurrency`` threads
  (``ScalingConfig``; Lambda's minimum of 2 when absent), each with its own copy of
  the handler module, as each Lambda execution environment has its own. Each receives
  up to ``BatchSize`` messages, invokes the handler with the event Lambda would send
  (``sam local generate-event sqs receive-message`` shape), deletes the messages that
  succeeded and leaves the ``batchItemFailures`` to reappear after the visibility
  timeout (when the handler raises, or answers something else, all of them).

Deliberate differences from Lambda: no batching window (a batch is what one round of
receives returns), no scaling ramp, ``Timeout`` is reported in the context but not
enforced, and every function shares the stack's process and environment.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rft_common.db import postgres
from rft_tools.cfn_template import literal_int, load_template
from rft_tools.local.functions import (
    FunctionDefinitionError,
    Handler,
    TemplateFunction,
    adopt_environment,
    functions_with_events,
)
from rft_tools.paths import LOCAL_DIR

RECEIVE_LIMIT = 10
"""SQS returns at most ten messages per ``ReceiveMessage``."""
DEFAULT_BATCH_SIZE = 10
DEFAULT_MAXIMUM_CONCURRENCY = 2
QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
)
BACKFILL_SETTINGS = LOCAL_DIR / "backfill.json"
"""Where ``rft backfill`` finds the running stack's queues (see ``local_backfill_settings``)."""


@dataclass(frozen=True)
class LocalQueue:
    logical_id: str
    url: str
    arn: str


def sqs_client() -> Any:
    import boto3

    return boto3.client("sqs")


def create_queues(template: dict[str, Any], client: Any = None) -> dict[str, LocalQueue]:
    """Every SQS queue of the template, created (or found) in the local SQS."""
    client = client or sqs_client()
    resources = template.get("Resources") or {}
    queue_ids = [key for key, value in resources.items() if value.get("Type") == "AWS::SQS::Queue"]
    created: dict[str, LocalQueue] = {}

    def create(logical_id: str) -> LocalQueue:
        if logical_id in created:
            return created[logical_id]
        properties = resources[logical_id].get("Properties") or {}
        attributes = {
            name: str(properties[name])
            for name in QUEUE_ATTRIBUTES
            if isinstance(properties.get(name), int | str)
        }
        redrive = properties.get("RedrivePolicy")
        if isinstance(redrive, str):  # CloudFormation takes the policy as JSON text too
            redrive = json.loads(redrive)
        if isinstance(redrive, dict):
            target = redrive["deadLetterTargetArn"]
            dead_letter_id = target["Fn::GetAtt"][0] if isinstance(target, dict) else None
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": create(dead_letter_id).arn if dead_letter_id else target,
                    "maxReceiveCount": int(redrive["maxReceiveCount"]),
                }
            )
        name = properties.get("QueueName")
        url = client.create_queue(
            QueueName=name if isinstance(name, str) else logical_id, Attributes=attributes
        )["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        created[logical_id] = LocalQueue(logical_id, url, arn)
        return created[logical_id]

    for logical_id in queue_ids:
        create(logical_id)
    return created


def create_backfill_queues(template: dict[str, Any]) -> dict[str, str]:
    """``LOCAL_RESOURCES`` entry: the template's queues; the backfill's URLs as env vars.

    They are also written to ``.local/backfill.json`` with the SQS endpoint, so ``rft
    backfill`` run from another shell finds the running stack's queues.
    """
    queues = create_queues(template)
    environment = {
        "BACKFILL_QUEUE_URL": queues["BackfillQueue"].url,
        "BACKFILL_DLQ_URL": queues["BackfillDeadLetterQueue"].url,
    }
    BACKFILL_SETTINGS.parent.mkdir(parents=True, exist_ok=True)
    BACKFILL_SETTINGS.write_text(
        json.dumps({"AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"], **environment}, indent=2)
    )
    return environment


# --- the event source mapping -------------------------------------------------------


@dataclass(frozen=True)
class SqsEventSource:
    """One ``SQS`` event of one function in the template."""

    function: TemplateFunction
    queue_id: str
    batch_size: int
    maximum_concurrency: int


def sqs_event_sources(template: dict[str, Any], base_dir: Path) -> list[SqsEventSource]:
    sources = []
    for function, events in functions_with_events(template, base_dir, ("SQS",)):
        for event_name, event in events.items():
            event_properties = event.get("Properties") or {}
            queue = event_properties.get("Queue")
            if not isinstance(queue, dict) or "Fn::GetAtt" not in queue:
                raise FunctionDefinitionError(
                    f"{function.function_id}.Events.{event_name}: the local SQS needs the "
                    f"Queue as !GetAtt <Queue>.Arn of this template, got {queue!r}"
                )
            scaling = event_properties.get("ScalingConfig") or {}
            sources.append(
                SqsEventSource(
                    function=function,
                    queue_id=queue["Fn::GetAtt"][0],
                    batch_size=literal_int(event_properties.get("BatchSize"), DEFAULT_BATCH_SIZE),
                    maximum_concurrency=literal_int(
                        scaling.get("MaximumConcurrency"), DEFAULT_MAXIMUM_CONCURRENCY
                    ),
                )
            )
    return sources


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda sends for messages as ``ReceiveMessage`` returned them."""
    region = queue_arn.split(":")[3]
    records = []
    for message in messages:
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": (
                        base64.b64encode(value["BinaryValue"]).decode()
                        if "BinaryValue" in value
                        else None
                    ),
                    "stringListValues": value.get("StringListValues", []),
                    "binaryListValues": [
                        base64.b64encode(item).decode()
                        for item in value.get("BinaryListValues", [])
                    ],
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        records.append(record)
    return {"Records": records}


def failed_message_ids(result: Any, message_ids: list[str]) -> set[str]:
    """The messages a handler's answer leaves on the queue, as Lambda reads it.

    ``{"batchItemFailures": [...]}`` names the failures; an answer naming a message
    that was not in the batch, or not of that shape, fails the whole batch. Any other
    answer (``None``, ``{}``, no or a null ``batchItemFailures``) means success.
    """
    if not isinstance(result, dict) or result.get("batchItemFailures") is None:
        return set()
    failures = result["batchItemFailures"]
    if not isinstance(failures, list) or not all(
        isinstance(item, dict) and item.get("itemIdentifier") in message_ids for item in failures
    ):
        return set(message_ids)
    return {item["itemIdentifier"] for item in failures}


MESSAGE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def messages_on_queue(client: Any, queue_url: str) -> int:
    """Messages on a queue: visible, in flight and delayed."""
    attributes = client.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=list(MESSAGE_COUNTS)
    )["Attributes"]
    return sum(int(attributes[name]) for name in MESSAGE_COUNTS)


class SqsPoller:
    """Lambda's event source mapping for one function and queue, on local threads."""

    def __init__(self, source: SqsEventSource, queue: LocalQueue, client: Any = None) -> None:
        self.source = source
        self.queue = queue
        self.client = client or sqs_client()
        # One module per concurrent "execution environment": Powertools' batch
        # processor and handler state must not be shared between parallel invocations.
        self.handlers: list[Handler] = [
            source.function.load_handler(str(index)) for index in range(source.maximum_concurrency)
        ]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def receive_batch(self, wait_seconds: int) -> list[dict[str, Any]]:
        """Up to ``BatchSize`` messages: one long poll, then whatever is ready at once."""
        messages: list[dict[str, Any]] = []
        while len(messages) < self.source.batch_size:
            received = self.client.receive_message(
                QueueUrl=self.queue.url,
                MaxNumberOfMessages=min(RECEIVE_LIMIT, self.source.batch_size - len(messages)),
                WaitTimeSeconds=0 if messages else wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            messages += received
        return messages

    def invoke(self, handler: Handler, messages: list[dict[str, Any]]) -> set[str]:
        """Invoke ``handler`` for one batch; delete what succeeded; return the failed ids."""
        message_ids = [message["MessageId"] for message in messages]
        function = self.source.function
        try:
            failed = failed_message_ids(
                handler(sqs_event(messages, self.queue.arn), function.context()), message_ids
            )
        except Exception:
            sys.stderr.write(f"{function.function_id} failed:\n{traceback.format_exc()}")
            failed = set(message_ids)
        succeeded = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(succeeded), RECEIVE_LIMIT):
            self.client.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(succeeded[start : start + RECEIVE_LIMIT])
                ],
            )
        return failed

    def depth(self) -> int:
        """Messages on the queue: visible, in flight and delayed."""
        return messages_on_queue(self.client, self.queue.url)

    def drain(self, timeout_s: float = 60) -> None:
        """Process until the queue is empty, all environments in parallel (tests).

        Failed messages come back after the visibility timeout until they succeed or
        move to the dead-letter queue, so this ends; ``TimeoutError`` if it does not.
        """
        deadline = time.monotonic() + timeout_s

        def work(handler: Handler) -> None:
            while self.depth() > 0 and time.monotonic() < deadline:
                messages = self.receive_batch(wait_seconds=1)
                if messages:
                    self.invoke(handler, messages)

        threads = [threading.Thread(target=work, args=(handler,)) for handler in self.handlers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.depth() > 0:
            raise TimeoutError(f"{self.queue.logical_id} still holds messages after {timeout_s}s")

    def start(self) -> None:
        """Poll in the background until ``stop``."""

        def work(handler: Handler) -> None:
            while not self._stopping.is_set():
                try:
                    messages = self.receive_batch(wait_seconds=1)
                    if messages:
                        self.invoke(handler, messages)
                except Exception:
                    sys.stderr.write(f"SQS poller for {self.source.function.function_id}:\n")
                    sys.stderr.write(traceback.format_exc())
                    self._stopping.wait(1)

        self._threads = [
            threading.Thread(target=work, args=(handler,), daemon=True, name=f"sqs-{index}")
            for index, handler in enumerate(self.handlers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)


@dataclass
class SqsPollers:
    pollers: list[SqsPoller]

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()


def start_sqs_pollers(
    template_path: Path, environment: dict[str, str], *, maximum_concurrency: int | None = None
) -> SqsPollers:
    """Poll every SQS event source of the template (the stack, after its resources).

    Each function's template environment is added to the process for keys not set yet:
    the functions share the stack's process, and the stack's values win. The shared
    database pool grows to one connection per concurrent invocation, plus the API's.
    ``maximum_concurrency`` replaces the template's (the bench measures several).
    """
    template = load_template(template_path)
    queues = create_queues(template)
    sources = sqs_event_sources(template, template_path.parent.resolve())
    if maximum_concurrency is not None:
        sources = [replace(source, maximum_concurrency=maximum_concurrency) for source in sources]
    connections = 1 + sum(source.maximum_concurrency for source in sources)
    os.environ["DB_POOL_SIZE"] = str(max(connections, int(os.environ.get("DB_POOL_SIZE", "1"))))
    postgres.reset_pool()  # rebuilt with the larger size on first use
    pollers = []
    for source in sources:
        adopt_environment(source.function, environment)
        poller = SqsPoller(source, queues[source.queue_id])
        poller.start()
        pollers.append(poller)
        print(
            f"polling {source.queue_id} for {source.function.function_id}: batch size "
            f"{source.batch_size}, concurrency {source.maximum_concurrency}",
            flush=True,
        )
    return SqsPollers(pollers)


def local_backfill_settings() -> dict[str, str]:
    """What the running stack wrote for ``rft backfill`` (empty when never started)."""
    if not BACKFILL_SETTINGS.exists():
        return {}
    return json.loads(BACKFILL_SETTINGS.read_text())
