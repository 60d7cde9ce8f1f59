"""A function of the template, run locally: the one loader the local API, the SQS
pollers and the schedules share.

``template_function`` reads a ``AWS::Serverless::Function`` (``Globals.Function``
applied) and checks, before anything is served, what running it locally needs: a
literal ``CodeUri`` directory, a ``module.function`` ``Handler`` whose file exists, and
layers that are either this template's ``AWS::Serverless::LayerVersion`` with a literal
``ContentUri`` directory (put on ``sys.path`` behind the code while importing, as Lambda
puts ``/opt/python`` behind ``/var/task``) or references to layers published elsewhere
(the AppConfig and Secrets Manager extensions), which are not code to import here.
A ``TemplateFunction`` then loads its handler as one execution environment.
"""

from __future__ import annotations

import contextvars
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import uuid4

from rft_tools.cfn_template import function_environment, function_properties, literal_int

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "eu-west-2"
DEFAULT_MEMORY_MB = 128  # Lambda's defaults when neither the function nor Globals set them
DEFAULT_TIMEOUT_S = 3
FUNCTION_TYPE = "AWS::Serverless::Function"
LAYER_TYPE = "AWS::Serverless::LayerVersion"


class FunctionDefinitionError(ValueError):
    """A function of the template cannot run locally as it is written."""


class LambdaContext:
    """The parts of the Python runtime's context object that handlers and Powertools use."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self, function_name: str, memory_limit_in_mb: int, timeout_s: int) -> None:
        region = os.environ.get("AWS_REGION", DEFAULT_REGION)
        self.function_name = function_name
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        self.aws_request_id = str(uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid4().hex}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


Handler = Callable[[dict[str, Any], LambdaContext], Any]


@dataclass(frozen=True)
class TemplateFunction:
    """One ``AWS::Serverless::Function``, resolved and checked for running locally."""

    function_id: str
    code_dir: Path
    handler_module: str  # dotted, relative to code_dir
    handler_function: str
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: int = DEFAULT_TIMEOUT_S
    layer_dirs: tuple[Path, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict, hash=False)
    """The template's literal variables, Globals first; intrinsics are left out."""
    events: Mapping[str, dict[str, Any]] = field(default_factory=dict, hash=False)

    def context(self) -> LambdaContext:
        return LambdaContext(self.function_id, self.memory_mb, self.timeout_s)

    def load_handler(self, environment_name: str = "") -> Handler:
        """The handler, from a module of its own: one per ``environment_name``, as each
        Lambda execution environment imports the code afresh.

        Several functions ship an ``app.py``, so the module is named
        ``lambda_<LogicalId>[_<environment_name>]``. The functions share this process and
        so the layer's one Logger: each call logs under its own function's
        ``POWERTOOLS_SERVICE_NAME``, as it would in its own Lambda.
        """
        name = "_".join(part for part in ("lambda", self.function_id, environment_name) if part)
        module = self._import(name)
        handler = getattr(module, self.handler_function, None)
        if not callable(handler):
            del sys.modules[name]
            raise FunctionDefinitionError(
                f"{self.function_id}: {self.handler_module}.py has no function "
                f"{self.handler_function!r} (Handler)"
            )
        return self._logging_as_its_service(handler)

    def _logging_as_its_service(self, handler: Handler) -> Handler:
        service = self.environment.get("POWERTOOLS_SERVICE_NAME")
        if not service:
            return handler
        from rft_common.core.observability import logger

        def as_its_service(event: dict[str, Any], context: LambdaContext) -> Any:
            logger.thread_safe_append_keys(service=service)
            return handler(event, context)

        def invoke(event: dict[str, Any], context: LambdaContext) -> Any:
            # a context of its own: the service key does not outlive the call
            return contextvars.copy_context().run(as_its_service, event, context)

        return invoke

    def _import(self, name: str) -> ModuleType:
        """Import the handler file as module ``name``.

        The code dir and the layers are on ``sys.path`` only while importing, and
        modules the code dir brought in are dropped from ``sys.modules`` afterwards, so
        the next function imports its own ``models.py`` & co. (The handler keeps its
        references; imports deferred to call time cannot see the code dir.)
        """
        spec = importlib.util.spec_from_file_location(name, self.handler_file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {self.handler_file}")
        module = importlib.util.module_from_spec(spec)
        known = set(sys.modules) | {name}
        search_path = [str(self.code_dir), *(str(layer) for layer in self.layer_dirs)]
        sys.modules[name] = module
        sys.path[0:0] = search_path
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        finally:
            for entry in search_path:
                sys.path.remove(entry)
            for module_name in set(sys.modules) - known:
                module_file = getattr(sys.modules.get(module_name), "__file__", None)
                if module_file and Path(module_file).resolve().is_relative_to(self.code_dir):
                    sys.modules.pop(module_name, None)
        return module

    @property
    def handler_file(self) -> Path:
        return self.code_dir.joinpath(*self.handler_module.split(".")).with_suffix(".py")


def template_function(
    template: dict[str, Any], logical_id: str, base_dir: Path
) -> TemplateFunction:
    """The function ``logical_id`` of the template, paths resolved against ``base_dir``.

    Raises ``FunctionDefinitionError`` naming the function and the property at fault.
    """
    resource = (template.get("Resources") or {}).get(logical_id)
    if not isinstance(resource, dict) or resource.get("Type") != FUNCTION_TYPE:
        raise FunctionDefinitionError(f"the template has no {FUNCTION_TYPE} {logical_id!r}")
    properties = function_properties(template, logical_id)
    code_uri, handler = properties.get("CodeUri"), properties.get("Handler")
    module, _, function = handler.rpartition(".") if isinstance(handler, str) else ("", "", "")
    if not isinstance(code_uri, str) or not module or not function:
        raise FunctionDefinitionError(
            f"{logical_id}: running locally needs a literal CodeUri and a 'module.function' "
            f"Handler, got CodeUri={code_uri!r} Handler={handler!r}"
        )
    resolved = TemplateFunction(
        function_id=logical_id,
        code_dir=(base_dir / code_uri).resolve(),
        handler_module=module,
        handler_function=function,
        memory_mb=literal_int(properties.get("MemorySize"), DEFAULT_MEMORY_MB),
        timeout_s=literal_int(properties.get("Timeout"), DEFAULT_TIMEOUT_S),
        layer_dirs=_layer_dirs(template, logical_id, properties.get("Layers"), base_dir),
        environment=function_environment(template, logical_id, {}),
        events={
            name: event
            for name, event in (properties.get("Events") or {}).items()
            if isinstance(event, dict)
        },
    )
    if not resolved.handler_file.is_file():
        raise FunctionDefinitionError(
            f"{logical_id}: Handler {handler!r} needs {resolved.handler_file}, which does not exist"
        )
    return resolved


def functions_with_events(
    template: dict[str, Any], base_dir: Path, event_types: Collection[str]
) -> list[tuple[TemplateFunction, dict[str, dict[str, Any]]]]:
    """Every function with events of the given types, and those events by name.

    Only these functions are resolved (and checked): others do not run locally here.
    """
    found = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != FUNCTION_TYPE:
            continue
        events = function_properties(template, logical_id).get("Events") or {}
        if any(
            isinstance(event, dict) and event.get("Type") in event_types
            for event in events.values()
        ):
            function = template_function(template, logical_id, base_dir)
            matching = {
                name: event
                for name, event in function.events.items()
                if event.get("Type") in event_types
            }
            found.append((function, matching))
    return found


def adopt_environment(function: TemplateFunction, overrides: Mapping[str, str]) -> None:
    """Give this process the function's environment (then ``overrides``) for keys not set
    yet: the functions share the stack's process, and the stack's own values win."""
    for key, value in (dict(function.environment) | dict(overrides)).items():
        os.environ.setdefault(key, value)


def _layer_dirs(
    template: dict[str, Any], logical_id: str, layers: Any, base_dir: Path
) -> tuple[Path, ...]:
    """The content directories of the function's layers defined in this template."""
    if layers is None:
        return ()
    if not isinstance(layers, list):
        raise FunctionDefinitionError(f"{logical_id}: Layers must be a list, got {layers!r}")
    resources = template.get("Resources") or {}
    directories = []
    for layer in layers:
        reference = layer.get("Ref") if isinstance(layer, dict) else None
        resource = resources.get(reference) if isinstance(reference, str) else None
        if not isinstance(resource, dict) or resource.get("Type") != LAYER_TYPE:
            continue  # a published layer's ARN (a parameter or a literal): not code here
        content_uri = (resource.get("Properties") or {}).get("ContentUri")
        directory = (base_dir / content_uri).resolve() if isinstance(content_uri, str) else None
        if directory is None or not directory.is_dir():
            raise FunctionDefinitionError(
                f"{logical_id}: layer {reference} needs a literal ContentUri directory, "
                f"got {content_uri!r}"
            )
        directories.append(directory)
    return tuple(directories)
