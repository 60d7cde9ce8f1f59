"""The backfill worker's three timeouts, derived from each other in this one place.

``template.yaml`` cannot compute, so it states the numbers; a test
(``tests/backfill/test_backfill_timeouts.py``) checks them against these.

- ``SOCKET_TIMEOUT_SECONDS`` (``DB_SOCKET_TIMEOUT_SECONDS``): the longest one
  statement may take, lock waits included, before the worker gives up its
  connection. A batch normally takes well under a second; the rest is headroom for
  a busy database.
- ``FUNCTION_TIMEOUT_SECONDS`` (the function's ``Timeout``): three socket timeouts. A
  batch that times out is retried once on a fresh connection (``run_transaction``
  with ``idempotent``), so one batch may take two socket timeouts; the third leaves
  room for the other batches of the invocation (``BatchSize``), each normally under
  a second. The Lambda is never killed mid-retry.
- ``VISIBILITY_TIMEOUT_SECONDS`` (the queue's ``VisibilityTimeout``): six function
  timeouts, AWS's advice for an SQS event source, so that a message is not received
  again while an invocation that holds it can still be running (including Lambda's
  own retries of a throttled invocation). A batch that fails is received again one
  visibility timeout later.
"""

SOCKET_TIMEOUT_SECONDS = 20
FUNCTION_TIMEOUT_SECONDS = 3 * SOCKET_TIMEOUT_SECONDS
VISIBILITY_TIMEOUT_SECONDS = 6 * FUNCTION_TIMEOUT_SECONDS
