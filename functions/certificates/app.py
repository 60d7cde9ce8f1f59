"""Certificates: issue one to every attendee of a completed session (README "Certificates").

Invoked by the stack's EventBridge Scheduler schedule (hourly, disabled by default, like
retention) or at once by ``rft certificates issue``. Idempotent: a run issues only the
certificates not issued yet.
"""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.certificates.service import issue_certificates
from rft_common.core.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    report = issue_certificates()
    logger.info("certificates run", extra=report.as_dict())
    metrics.add_metric(name="CertificatesIssued", unit=MetricUnit.Count, value=report.issued)
    return report.as_dict()
