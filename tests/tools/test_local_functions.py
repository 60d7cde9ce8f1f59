"""The one loader of a template function that the local API, SQS pollers and schedules share."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rft_tools.cfn_template import load_template, parse_template
from rft_tools.local.functions import (
    FunctionDefinitionError,
    adopt_environment,
    functions_with_events,
    template_function,
)
from tests.conftest import PROJECT_ROOT

TEMPLATE = """\
Parameters:
  ExtensionLayerArn:
    Type: String
Globals:
  Function:
    Handler: app.lambda_handler
    Timeout: 10
    Layers: [!Ref SharedLayer, !Ref ExtensionLayerArn]
    Environment:
      Variables:
        STAGE: local
        SECRET_ARN: !Ref Secret
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/shared/
  Queue:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker/
      MemorySize: 512
      Environment:
        Variables:
          BATCH: 25
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
        Nightly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 day)
"""

WORKER = """\
import helper


def lambda_handler(event, context):
    return {"helper": helper.NAME, "function": context.function_name}
"""


@pytest.fixture(autouse=True)
def _isolate_process_state() -> Iterator[None]:
    """Loading imports handler modules and adopting writes os.environ; undo both."""
    environ = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(environ)
    for name in [name for name in sys.modules if name.startswith("lambda_")]:
        del sys.modules[name]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    _write(tmp_path / "functions" / "worker" / "app.py", WORKER)
    _write(tmp_path / "functions" / "worker" / "helper.py", "NAME = 'worker'\n")
    (tmp_path / "layers" / "shared").mkdir(parents=True)
    return tmp_path


def _template(**replacements: str) -> dict[str, Any]:
    text = TEMPLATE
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return parse_template(text)


def test_a_function_is_resolved_with_globals_layers_and_literal_environment(base_dir):
    worker = template_function(_template(), "Worker", base_dir)

    assert worker.code_dir == base_dir / "functions" / "worker"
    assert (worker.handler_module, worker.handler_function) == ("app", "lambda_handler")
    assert (worker.memory_mb, worker.timeout_s) == (512, 10)
    # The template's own layer is code to import; the extension's ARN is not.
    assert worker.layer_dirs == (base_dir / "layers" / "shared",)
    # !Ref values cannot be resolved locally, so they are left for overrides.
    assert worker.environment == {"STAGE": "local", "BATCH": "25"}
    assert set(worker.events) == {"Queue", "Nightly"}


def test_a_missing_function_is_named(base_dir):
    with pytest.raises(FunctionDefinitionError, match="no AWS::Serverless::Function 'Nope'"):
        template_function(_template(), "Nope", base_dir)


def test_a_resource_that_is_not_a_function_is_refused(base_dir):
    with pytest.raises(FunctionDefinitionError, match="'Queue'"):
        template_function(_template(), "Queue", base_dir)


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ("Handler: lambda_handler", "'module.function' Handler"),
        ("Handler: app.", "'module.function' Handler"),
        ("Handler: !Ref HandlerName", "'module.function' Handler"),
        ("Handler: missing.lambda_handler", r"missing\.py, which does not exist"),
    ],
    ids=["no-module", "no-function", "intrinsic", "no-file"],
)
def test_a_bad_handler_is_an_error_before_anything_runs(base_dir, replacement, message):
    template = _template(**{"Handler: app.lambda_handler": replacement})

    with pytest.raises(FunctionDefinitionError, match=message):
        template_function(template, "Worker", base_dir)


def test_a_code_uri_that_is_not_literal_is_an_error(base_dir):
    template = _template(**{"CodeUri: functions/worker/": "CodeUri: !Ref Code"})

    with pytest.raises(FunctionDefinitionError, match="literal CodeUri"):
        template_function(template, "Worker", base_dir)


def test_a_template_layer_without_its_directory_is_an_error(base_dir):
    template = _template(**{"ContentUri: layers/shared/": "ContentUri: layers/gone/"})

    with pytest.raises(FunctionDefinitionError, match="layer SharedLayer"):
        template_function(template, "Worker", base_dir)


def test_a_handler_function_missing_from_its_module_is_an_error(base_dir):
    template = _template(**{"Handler: app.lambda_handler": "Handler: app.missing"})
    worker = template_function(template, "Worker", base_dir)

    with pytest.raises(FunctionDefinitionError, match=r"app\.py has no function 'missing'"):
        worker.load_handler()
    assert "lambda_Worker" not in sys.modules


def test_each_execution_environment_gets_its_own_module(base_dir):
    worker = template_function(_template(), "Worker", base_dir)

    first, second = worker.load_handler("0"), worker.load_handler("1")

    assert first({}, worker.context()) == {"helper": "worker", "function": "Worker"}
    assert sys.modules["lambda_Worker_0"] is not sys.modules["lambda_Worker_1"]
    assert first is not second
    # The code dir's sibling modules do not leak to the next function's imports.
    assert "helper" not in sys.modules
    assert str(base_dir / "functions" / "worker") not in sys.path


def test_only_functions_with_the_wanted_events_are_resolved(base_dir):
    template = _template()
    template["Resources"]["Broken"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"CodeUri": "functions/none", "Events": {"Api": {"Type": "Api"}}},
    }

    ((worker, events),) = functions_with_events(template, base_dir, ("SQS",))

    assert worker.function_id == "Worker"
    assert list(events) == ["Queue"]
    with pytest.raises(FunctionDefinitionError, match="Broken"):
        functions_with_events(template, base_dir, ("Api",))


def test_adopting_an_environment_keeps_what_the_process_already_has(base_dir, monkeypatch):
    worker = template_function(_template(), "Worker", base_dir)
    monkeypatch.setenv("STAGE", "stack")
    monkeypatch.delenv("BATCH", raising=False)
    monkeypatch.delenv("SECRET_ARN", raising=False)

    adopt_environment(worker, {"SECRET_ARN": "arn:local"})

    assert (os.environ["STAGE"], os.environ["BATCH"]) == ("stack", "25")
    assert os.environ["SECRET_ARN"] == "arn:local"


def test_every_function_of_the_project_template_resolves():
    template = load_template(PROJECT_ROOT / "template.yaml")
    function_ids = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]

    functions = [
        template_function(template, logical_id, PROJECT_ROOT) for logical_id in function_ids
    ]

    assert all(function.handler_file.is_file() for function in functions)
    common = PROJECT_ROOT / "layers" / "common"
    assert all(function.layer_dirs == (common,) for function in functions)


LOGGING_WORKER = """\
from rft_common.core.observability import logger


def lambda_handler(event, context):
    logger.info("worked")
"""


def test_a_function_logs_under_its_own_service_name_and_only_during_its_call(
    base_dir: Path,
) -> None:
    from rft_common.core.observability import logger

    _write(base_dir / "functions" / "worker" / "app.py", LOGGING_WORKER)
    template = _template(
        **{"BATCH: 25": "BATCH: 25\n          POWERTOOLS_SERVICE_NAME: rft-worker"}
    )
    handler = template_function(template, "Worker", base_dir).load_handler()
    services: dict[str, str] = {}

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            formatted = json.loads(logger.registered_formatter.format(record))
            services[formatted["message"]] = formatted["service"]

    collect = Collect()
    logging.getLogger(logger.name).addHandler(collect)
    try:
        handler({}, None)
        logger.info("outside")
    finally:
        logging.getLogger(logger.name).removeHandler(collect)
    assert services["worked"] == "rft-worker"
    assert services["outside"] != "rft-worker"
