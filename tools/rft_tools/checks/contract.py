"""Contract fuzzing: schemathesis against the API document a running stack serves.

``check_contract`` loads ``GET /api/openapi.json`` from the stack and runs every
phase of schemathesis' engine over every operation in it: the coverage phase (each
schema's boundaries, and each way to break it one part at a time), property-based
fuzzing with valid and invalid data, and stateful sequences along the links it
infers between operations. Admin routes get an admin's bearer token through the
document's ``bearerAuth`` and ``staffBearerAuth`` schemes. Every response must pass ``CHECKS``.

Two of schemathesis' checks are left out on purpose:

- ``positive_data_acceptance`` wants every input the schema allows to be accepted,
  but some rules cannot be written in JSON Schema (an email address that can receive
  mail, a UK phone number or postcode, ``totalAmount`` equal to the session's price
  times the participants, ``cursor`` or ``offset`` but not both). Those inputs get
  the documented 422, which the other checks verify.
- ``unsupported_method``: which methods a path takes is API Gateway's business (it
  answers 403 to the others, the local emulator 405), not the functions'.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import schemathesis
from schemathesis.engine import events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder
from schemathesis.engine.statistic import Statistic

NOT_FUZZED = "/api/admin/auth/logout-everywhere"
"""Ends every session of the token the fuzzing holds, so every later case would be a 401;
its handler tests (``tests/staff/test_staff_power_ends.py``) walk it."""
FUZZED_LAST = "/api/admin/users/{user_id}/erase"
"""Erasure is final: fuzzed among the others, it erases the stack's first customers before
merge and unmerge are tried on them, so those could only be refused. It runs after
everything else."""
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
)
"""No 5xx; status, Content-Type, headers and body as documented; input the schema
forbids is refused; an admin route refuses the same request without its token."""


@dataclass
class ContractReport:
    cases: Counter[str] = field(default_factory=Counter)
    """Requests sent, by operation (``POST /api/bookings``)."""
    statuses: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    """Response statuses, by operation."""
    failures: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """Each distinct failed check (what failed and a curl command), by the operation or
    the stateful sequence it failed in."""
    errors: list[str] = field(default_factory=list)
    """What kept schemathesis from testing something (its problems, not the API's)."""

    def record(self, recorder: ScenarioRecorder) -> None:
        for case_id, node in recorder.cases.items():
            label = node.value.operation.label
            self.cases[label] += 1
            interaction = recorder.interactions.get(case_id)
            if interaction is not None and interaction.response is not None:
                self.statuses[label][interaction.response.status_code] += 1

    def describe_failures(self) -> str:
        return "\n\n".join(
            f"{label}: {entry}" for label, entries in self.failures.items() for entry in entries
        )


def check_contract(
    api: str, admin_token: str, *, max_examples: int, seed: int = 1
) -> ContractReport:
    """Fuzz every operation of the stack at ``api``; ``max_examples`` per operation and mode.

    ``seed`` and deterministic generation make a run repeatable against the same data.
    One worker: the local stack serves one request at a time anyway.
    """
    config = schemathesis.Config.from_dict(
        {
            "seed": seed,
            "workers": 1,
            "cache": {"enabled": False},
            "generation": {
                "mode": "all",
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
            },
            "auth": {
                "openapi": {
                    "bearerAuth": {"bearer": admin_token},
                    "staffBearerAuth": {"bearer": admin_token},
                }
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )
    # Selecting every path brings in GET /api/openapi.json too, which schemathesis
    # otherwise leaves out as the document it loaded.
    schema = (
        schemathesis.openapi.from_url(f"{api}/api/openapi.json", config=config)
        .include(path_regex="^/")
        .exclude(path=NOT_FUZZED)
    )
    report = ContractReport()
    statistic = Statistic()
    for selection in (schema.exclude(path=FUZZED_LAST), schema.include(path=FUZZED_LAST)):
        _fuzz(selection, report, statistic)
    for label, groups in statistic.failures.items():
        report.failures[label] += [
            f"{failure.title} ({failure.code}): {failure.message}\n  {group.code_sample}"
            for group in groups.values()
            for failure in group.failures
        ]
    return report


def _fuzz(schema, report: ContractReport, statistic: Statistic) -> None:
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            statistic.on_scenario_finished(event.recorder)
            report.record(event.recorder)
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.info.title}: {event.info}")
        elif isinstance(event, events.FatalError):
            raise event.exception
