"""Cold start: each handler's import-and-init and first request in a fresh interpreter,
the first request after an emulated SnapStart restore, the imports that cost most, and
the build sizes.

The headline figures run the ``sam build`` artifacts (function + layer) on Python 3.13
with only boto3 besides, as Lambda does: one fresh interpreter per run imports the
handler (import + init) and then serves one first request against the bench database
(first request = import + init + that request). Production runs SnapStart, so each
API function is also measured as a restored environment serves: a fresh interpreter
imports the handler with the runtime's hook library emulated, runs the before-snapshot
hooks, then the after-restore hooks, and only then is one request timed, on a fresh
database connection (``after_restore_ms``). ``import boto3`` alone on the same runtime
is the yardstick for import + init. The dev-venv figure (import only) is for
comparison. The import profile is ``python -X importtime`` of the built handler.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.booking import _add_sessions, _event
from bench.environment import fresh_database
from rft_tools.cfn_template import load_template
from rft_tools.paths import LOCAL_DIR, PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "template.yaml"
BUILD_DIR = PROJECT_ROOT / ".aws-sam" / "build"
SAM_PYENV_VERSION = "3.11.7:3.13.0"
BENCH_ADMIN_SECRET = "bench-only-admin-jwt-secret-0123456789abcdef"  # noqa: S105 - local bench
BENCH_WEBHOOK_SECRET = "whsec_bench_only_0123456789"  # noqa: S105 - local bench
HANDLER_IMPORT_STARTS = "importing the handler"
MEASURE = f"""
import importlib.util, json, sys, time, types
restore = sys.argv[3:] == ["restore"]
hooks = {{"before_snapshot": [], "after_restore": []}}
if restore:  # Lambda's hook library, as the managed runtime provides it
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_before_snapshot = hooks["before_snapshot"].append
    runtime.register_after_restore = hooks["after_restore"].append
    sys.modules["snapshot_restore_py"] = runtime
print("{HANDLER_IMPORT_STARTS}", file=sys.stderr, flush=True)
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = time.perf_counter()
result = {{"import_ms": (imported - started) * 1000}}
if len(sys.argv) > 2:
    class Context:
        function_name = "cold-start"
        function_version = "$LATEST"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:eu-west-2:123456789012:function:cold-start"
        aws_request_id = "cold-start"
        def get_remaining_time_in_millis(self):
            return 10_000
    if restore:
        assert hooks["before_snapshot"] and hooks["after_restore"], hooks
        for hook in hooks["before_snapshot"]:
            hook()
        for hook in hooks["after_restore"]:
            hook()
        started = time.perf_counter()
    response = module.lambda_handler(json.loads(sys.argv[2]), Context())
    result["first_request_ms"] = (time.perf_counter() - started) * 1000
    result["status"] = response.get("statusCode", 200)
    result["failures"] = len(response.get("batchItemFailures", []))
print("\\n" + json.dumps(result))
"""
TOP_IMPORTS = 10

RUNTIME_ENV = LOCAL_DIR / "python3.13-runtime"
"""Python 3.13 with only boto3, standing in for the Lambda runtime."""


def functions() -> dict[str, tuple[str, str]]:
    """``{function_dir_name: (logical_id, handler_file_name)}`` for the template's functions."""
    found = {}
    for logical_id, resource in load_template(TEMPLATE)["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        code_dir = Path(resource["Properties"]["CodeUri"])
        module = resource["Properties"]["Handler"].rsplit(".", 1)[0]
        found[code_dir.name] = (logical_id, f"{module}.py")
    return found


def runtime_python() -> Path:
    """A python3.13 environment with the locked boto3, as the Lambda runtime provides."""
    python = RUNTIME_ENV / "bin" / "python"
    if not python.exists():
        uv = PROJECT_ROOT / ".tools" / "bin" / "uv"
        environment = os.environ | {"PYENV_VERSION": SAM_PYENV_VERSION}
        subprocess.run(
            [uv, "venv", "--quiet", "--python", "3.13", RUNTIME_ENV], env=environment, check=True
        )
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", python, f"boto3=={version('boto3')}"],
            env=environment,
            check=True,
        )
    return python


def _rest_event(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "requestId": "cold-start",
            "resourcePath": path,
            "path": f"/bench{path}",
            "httpMethod": method,
            "protocol": "HTTP/1.1",
            "stage": "bench",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def _stripe_event(run: int) -> dict[str, Any]:
    """A Stripe event the webhook acknowledges and ignores, signed as Stripe signs."""
    payload = json.dumps(
        {"id": f"evt_cold_{run}", "object": "event", "type": "customer.created", "data": {}}
    )
    timestamp = int(time.time())
    signature = hmac.new(
        BENCH_WEBHOOK_SECRET.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    event = _rest_event(
        "POST",
        "/api/stripe/webhook",
        {"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={signature}"},
    )
    return event | {"body": payload}


BENCH_ADMIN_EMAIL = "bench@reactfasttraining.co.uk"


def _add_admin(database_url: str) -> int:
    """The admin the admin requests act as: the gate and /me look them up (active, an
    admin, at token version 0), so their first request is a served one, not a 401."""
    from rft_common.db.postgres import transaction_at

    with transaction_at(database_url) as connection:
        return connection.execute(
            "INSERT INTO users (email, name, role, password_hash) "
            "VALUES (:email, 'Bench Admin', 'admin', 'bcrypt$unusable') RETURNING id",
            {"email": BENCH_ADMIN_EMAIL},
        ).scalar_one()


def first_requests(session_id: int, admin_id: int) -> dict[str, Any]:
    """The first request of each function: ``{name: callable(run) -> event}``.

    Every request does what a customer's or operator's would: the checkout books a
    seat (a pending booking: a paid one also asks Stripe for its PaymentIntent), the
    admin list runs its query with its total, the sign-in's /me looks up the token's
    staff member, the worker links a batch, the webhook
    verifies a Stripe signature (importing stripe). A function not listed here is
    measured without a first request.
    """
    from rft_common.staff.tokens import issue_access_token

    token = issue_access_token(
        BENCH_ADMIN_SECRET,
        user_id=admin_id,
        email=BENCH_ADMIN_EMAIL,
        role="admin",
        token_version=0,
    )
    return {
        "create_booking": lambda run: _event(session_id, f"cold-{run}@example.com"),
        "admin_users": lambda run: _rest_event(
            "GET", "/api/admin/users", {"Authorization": f"Bearer {token}"}
        ),
        "admin_auth": lambda run: _rest_event(
            "GET", "/api/admin/auth/me", {"Authorization": f"Bearer {token}"}
        ),
        "api_docs": lambda run: _rest_event("GET", "/api/openapi.json", {}),
        "stripe_webhook": _stripe_event,
        "backfill_worker": lambda run: {
            "Records": [
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": "cold-start",
                    "body": json.dumps(
                        {
                            "version": 1,
                            "batchId": f"cold-start-{run}-{uuid.uuid4().hex[:8]}",
                            "firstBookingId": 1,
                            "lastBookingId": 2000,
                        }
                    ),
                    "attributes": {
                        "ApproximateReceiveCount": "1",
                        "ApproximateFirstReceiveTimestamp": "1764000000000",
                        "SenderId": "AIDAEXAMPLE",
                        "SentTimestamp": "1764000000000",
                    },
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:eu-west-2:123456789012:cold-start",
                    "awsRegion": "eu-west-2",
                }
            ]
        },
    }


def measure(
    python: Path | str,
    handler_file: Path,
    environment: dict[str, str],
    runs: int,
    first_request: Any = None,
    *,
    restored: bool = False,
) -> dict[str, float]:
    """Medians over ``runs`` fresh interpreters: ``import_ms`` and ``first_request_ms``
    (import + init + the request; with ``restored``, the request alone, after the
    before-snapshot and after-restore hooks)."""
    samples: list[dict[str, Any]] = []
    for run in range(runs):
        arguments = [python, "-c", MEASURE, str(handler_file)]
        if first_request is not None:
            arguments.append(json.dumps(first_request(run)))
            if restored:
                arguments.append("restore")
        completed = subprocess.run(
            arguments, env=environment, capture_output=True, text=True, check=True
        )
        sample = json.loads(completed.stdout.strip().splitlines()[-1])
        if sample.get("status", 200) >= 500 or sample.get("failures"):
            raise RuntimeError(f"{handler_file}: the first request failed: {completed.stdout}")
        samples.append(sample)
    medians = {"import_ms": round(statistics.median(s["import_ms"] for s in samples), 1)}
    if first_request is not None:
        medians["first_request_ms"] = round(
            statistics.median(s["first_request_ms"] for s in samples), 1
        )
    return medians


API_FUNCTIONS = ("create_booking", "admin_users", "admin_auth", "api_docs", "stripe_webhook")
"""The functions behind API Gateway (a restored environment's first request is timed)."""

IMPORT_BOTO3 = """
import time
started = time.perf_counter()
import boto3
print((time.perf_counter() - started) * 1000)
"""


def import_boto3_ms(python: Path | str, runs: int) -> float:
    """Median of ``import boto3`` alone in ``runs`` fresh interpreters: the yardstick for
    a function's import + init on the same runtime."""
    samples = [
        float(
            subprocess.run(
                [python, "-c", IMPORT_BOTO3], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return round(statistics.median(samples), 1)


IMPORTED_WITH = {
    "pydantic_core": "pydantic",
    "annotated_types": "pydantic",
    "typing_inspection": "pydantic",
    "jmespath": "aws_lambda_powertools",
    "dateutil": "aws_lambda_powertools",
    "six": "aws_lambda_powertools",
}
"""Libraries counted as part of the one that depends on them."""


def import_tree(python: Path | str, handler_file: Path, environment: dict[str, str]) -> list[dict]:
    """The handler's imports as ``python -X importtime`` reports them (``parse_importtime``)."""
    completed = subprocess.run(
        [python, "-X", "importtime", "-c", MEASURE, str(handler_file)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_importtime(completed.stderr)


def parse_importtime(stderr: str) -> list[dict]:
    """What the handler imported, from ``MEASURE``'s ``-X importtime`` output, as a tree:
    each module with its own time (``self_ms``), its time including what it imports first
    (``cumulative_ms``) and the modules it imported (``imports``). Python's start-up and
    the measuring script's own imports come before the marker and are left out."""
    # importtime prints each module after the modules it imports, indented two spaces
    # per level: a module's imports are the lines one level deeper just before it.
    imported_at_depth: dict[int, list[dict]] = {}
    _, _, handler_imports = stderr.partition(HANDLER_IMPORT_STARTS)
    for line in handler_imports.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, indented_name = line.removeprefix("import time:").split("|")
        depth = (len(indented_name) - len(indented_name.lstrip())) // 2
        module = {
            "module": indented_name.strip(),
            "self_ms": int(self_us) / 1000,
            "cumulative_ms": int(cumulative_us) / 1000,
            "imports": imported_at_depth.pop(depth + 1, []),
        }
        imported_at_depth.setdefault(depth, []).append(module)
    return imported_at_depth.get(0, [])


def _walk(modules: list[dict]) -> Iterator[dict]:
    for module in modules:
        yield module
        yield from _walk(module["imports"])


def slowest_imports(tree: list[dict]) -> list[dict]:
    """The ``TOP_IMPORTS`` modules with the largest cumulative import time (a nested
    module's time is part of its importer's)."""
    ranked = sorted(_walk(tree), key=lambda module: -module["cumulative_ms"])
    return [
        {
            "module": module["module"],
            "cumulative_ms": round(module["cumulative_ms"], 1),
            "self_ms": round(module["self_ms"], 1),
        }
        for module in ranked[:TOP_IMPORTS]
    ]


def import_time_by_library(tree: list[dict]) -> dict[str, float]:
    """Each module's own import time, summed per library, largest first: what each
    library costs the cold start.

    A standard-library module counts for the library (or our ``rft_common``) that
    imported it, directly or through other standard modules: asyncio is
    SQLAlchemy's or Powertools' cost, not Python's. A module that several libraries
    use counts for the first to import it. ``stdlib`` is what the handler file itself
    imports from the standard library (its own code's time is not in the profile).
    """
    totals: dict[str, float] = {}

    def count(modules: list[dict], importer: str) -> None:
        for module in modules:
            top_level = module["module"].partition(".")[0]
            if top_level in sys.stdlib_module_names or top_level.startswith("_"):
                library = importer
            else:
                library = IMPORTED_WITH.get(top_level, top_level)
            totals[library] = totals.get(library, 0.0) + module["self_ms"]
            count(module["imports"], library)

    count(tree, "stdlib")
    return {
        library: round(ms, 1) for library, ms in sorted(totals.items(), key=lambda item: -item[1])
    }


def built(environment: dict[str, str], logical_id: str) -> dict[str, str]:
    """``environment`` with Lambda's module path: the function's own code and libraries
    (``/var/task``) before the layer's (``/opt/python``)."""
    paths = [BUILD_DIR / logical_id, BUILD_DIR / "CommonLayer" / "python"]
    return environment | {"PYTHONPATH": os.pathsep.join(str(path) for path in paths)}


def _size_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return round(total / 1e6, 3)


def build_sizes() -> dict[str, Any]:
    """``sam build`` (via ``make build``), then the unzipped size of each artifact."""
    subprocess.run(["make", "-s", "build"], cwd=PROJECT_ROOT, check=True, capture_output=True)
    template = load_template(TEMPLATE)["Resources"]
    sizes = {
        name: _size_mb(BUILD_DIR / name)
        for name, resource in template.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    return {"layer_mb": _size_mb(BUILD_DIR / "CommonLayer"), "function_mb": sizes}


def run(server_url: str, flags_file: Path, *, quick: bool) -> dict[str, Any]:
    database_url = fresh_database(server_url, "bench_cold_start")
    [session_id] = _add_sessions(database_url, 1, capacity=10**6)
    environment = os.environ | {
        "DATABASE_URL": database_url,
        "RFT_FLAGS_FILE": str(flags_file),
        "ADMIN_JWT_SECRET": BENCH_ADMIN_SECRET,
        "STRIPE_WEBHOOK_SECRET": BENCH_WEBHOOK_SECRET,
        "POWERTOOLS_METRICS_NAMESPACE": "RFT/Customers",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }
    runs = 3 if quick else 7
    sizes = build_sizes()
    python = runtime_python()
    requests = first_requests(session_id, _add_admin(database_url))
    found = {
        name: measure(
            python,
            BUILD_DIR / logical_id / handler,
            built(environment, logical_id),
            runs,
            requests.get(name),
        )
        for name, (logical_id, handler) in functions().items()
    }
    restored = {
        name: measure(
            python,
            BUILD_DIR / logical_id / handler,
            built(environment, logical_id),
            runs,
            requests[name],
            restored=True,
        )["first_request_ms"]
        for name, (logical_id, handler) in functions().items()
        if name in API_FUNCTIONS and name in requests
    }
    import_trees = {
        name: import_tree(python, BUILD_DIR / logical_id / handler, built(environment, logical_id))
        for name, (logical_id, handler) in functions().items()
    }
    return {
        "cold_start_ms": {name: figures["import_ms"] for name, figures in found.items()},
        "first_request_ms": {
            name: figures["first_request_ms"]
            for name, figures in found.items()
            if "first_request_ms" in figures
        },
        "first_request_after_restore_ms": restored,
        "import_boto3_ms": import_boto3_ms(python, runs),
        "cold_start_dev_venv_ms": {
            name: measure(
                sys.executable, PROJECT_ROOT / "functions" / name / handler, environment, runs
            )["import_ms"]
            for name, (_, handler) in functions().items()
        },
        "import_profile": {name: slowest_imports(tree) for name, tree in import_trees.items()},
        "import_ms_by_library": {
            name: import_time_by_library(tree) for name, tree in import_trees.items()
        },
        "cold_start_runs": runs,
        **sizes,
    }
