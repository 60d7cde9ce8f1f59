"""Renewal reminders: the daily run (docs/reminders.md "Renewal reminders").

Invoked by the stack's EventBridge Scheduler schedule (daily, disabled by default, like
retention) or at once by ``rft reminders run``. Idempotent: each certificate, stage and
recipient is decided once (``renewal_reminders``); the email sender sends what it queued.
Metrics: ``RemindersSent`` (reminders queued, one per certificate and recipient),
``RemindersSkipped`` per ``reason``, ``RenewalsBookedAfterReminder``.
"""

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.core.observability import METRICS_NAMESPACE, logger, metrics
from rft_common.renewals.reminders import SENT, run_reminders


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    report = run_reminders(dry_run=bool(event.get("dry_run")))
    summary = report.as_dict()
    logger.info("renewal reminders run", extra={"report": summary})
    if report.dry_run:
        return summary
    metrics.add_metric(name="RemindersSent", unit=MetricUnit.Count, value=report.total(SENT))
    metrics.add_metric(
        name="RenewalsBookedAfterReminder", unit=MetricUnit.Count, value=report.renewals_booked
    )
    for reason, count in sorted(report.skipped().items()):
        with single_metric(
            name="RemindersSkipped",
            unit=MetricUnit.Count,
            value=count,
            namespace=METRICS_NAMESPACE,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name="reason", value=reason)
    return summary
