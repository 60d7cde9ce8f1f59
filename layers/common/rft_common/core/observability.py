"""Logger and Metrics, created once and applied the same way on every entry point.

Tracing is Lambda's active tracing (``Tracing: Active`` in template.yaml): Lambda
records each invocation's segments without the X-Ray SDK, whose import (it pulls in
botocore) cost about 400 ms of every cold start.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics

METRICS_NAMESPACE = "RFT/Customers"

logger = Logger()
metrics = Metrics(namespace=METRICS_NAMESPACE)

# Most requests (every admin read, the sessions list) publish no metric by design;
# Powertools would warn about it on each of them (its documented way to silence it).
warnings.filterwarnings("ignore", message="No application metrics to publish")
