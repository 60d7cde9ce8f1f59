"""The layer's architecture, stated as rules its imports must keep (read from the source).

    core  <-  aws  <-  db  <-  kit  <-  domains  <-  routes  <-  functions

- ``core`` (settings, errors, logging, vocabulary) imports nothing else of ours;
  ``aws`` only ``core``; ``db`` ``core`` and ``aws`` (the RDS secret); ``kit`` (CSV
  exports) the three of them; ``http`` (the resolver, error shapes, shared parameters
  and CSV answers) ``core``, ``db`` and ``kit``, never a domain.
- A domain (``customers``, ``checkout``, ``staff``, ``users``, ...) imports the
  infrastructure, itself, and peers only where ``PEER_INTERFACES`` names the module it
  may use; ``customers`` (identity and the audit trail) is the kernel every domain
  shares.
- Routes (``routes.py`` and ``*_routes.py`` in a domain, ``staff/gate.py`` and all of
  ``http``) are the only modules that import Powertools' event handler, and no domain
  module imports a route module. ``http/docs.py`` assembles every router.
- No two modules import each other, directly or round a cycle.
- Only ``__init__`` stays at the top of ``rft_common``.

Imports inside functions count (they are deferred, not absent); imports under
``TYPE_CHECKING`` do not (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "layers" / "common" / "rft_common"
INFRASTRUCTURE = {
    "core": set(),
    "aws": {"core"},
    "db": {"core", "aws"},
    "kit": {"core", "aws", "db"},
    "http": {"core", "db", "kit"},
}
KERNEL = "customers"
ACTING_STAFF = "staff.tokens"
"""Who is acting: every admin domain records the signed-in staff member it is given."""
OUTBOX = "email.outbox"
"""How any domain sends an email: a message written in the caller's own transaction (and
which messages are about a booking, which erasure forgets)."""
CONSENT = "consent.service"
"""How any domain records a person's consent, objection or withdrawal (the history)."""
UNSUBSCRIBE_LINKS = "consent.tokens"
"""The signed unsubscribe link every marketing message carries."""
PEER_INTERFACES: dict[str, set[str]] = {
    "users": {ACTING_STAFF, CONSENT},
    "privacy": {ACTING_STAFF, CONSENT, OUTBOX},
    "renewals": {ACTING_STAFF, CONSENT, UNSUBSCRIBE_LINKS},
    "checkout": {ACTING_STAFF, OUTBOX, CONSENT},
    "staff": {OUTBOX},
}
"""The one module of a peer domain that a domain may import, beyond the kernel."""
EVENT_HANDLER = "aws_lambda_powertools.event_handler"
HTTP = "http"
"""The HTTP layer every route module uses: all of it may import the event handler."""
ROUTE_MODULES_OUTSIDE_NAMING = {"staff.gate"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[str]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        yield from _imports(node)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, ours named below ``rft_common``; a name imported
    from a package counts as its submodule when there is one."""
    ours = modules()
    found = set()
    for name in _imports(ast.parse(path.read_text())):
        if name.startswith("rft_common."):
            local = name.removeprefix("rft_common.")
            if local in ours:
                found.add(local)
        else:
            found.add(name)
    return found


def is_route_module(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return (
        leaf == "routes"
        or leaf.endswith("_routes")
        or name in ROUTE_MODULES_OUTSIDE_NAMING
        or top(name) == HTTP
    )


def top(name: str) -> str:
    return name.split(".", 1)[0]


def ours(imported: set[str]) -> set[str]:
    return {name for name in imported if name in modules()}


ALL = modules()
DOMAIN_MODULES = [
    name for name in ALL if "." in name and top(name) not in INFRASTRUCTURE and name != ""
]


def test_only_the_package_init_stays_at_the_top():
    assert sorted(path.name for path in PACKAGE_ROOT.glob("*.py")) == ["__init__.py"]


@pytest.mark.parametrize("name", sorted(n for n in ALL if top(n) in INFRASTRUCTURE))
def test_infrastructure_imports_only_what_is_below_it(name):
    allowed = INFRASTRUCTURE[top(name)] | {top(name)}
    if name == "http.docs":
        pytest.skip("the OpenAPI assembly imports every router by design")
    wrong = {imported for imported in ours(imports_of(ALL[name])) if top(imported) not in allowed}
    assert wrong == set()


@pytest.mark.parametrize("name", sorted(n for n in DOMAIN_MODULES if not is_route_module(n)))
def test_a_domain_imports_infrastructure_itself_the_kernel_and_named_interfaces(name):
    domain = top(name)
    allowed_tops = set(INFRASTRUCTURE) | {domain, KERNEL}
    allowed_modules = PEER_INTERFACES.get(domain, set())
    wrong = {
        imported
        for imported in ours(imports_of(ALL[name]))
        if (top(imported) not in allowed_tops and imported not in allowed_modules)
        or is_route_module(imported)
    }
    assert wrong == set()


@pytest.mark.parametrize("name", sorted(n for n in ALL if n and not is_route_module(n)))
def test_only_route_modules_import_the_event_handler(name):
    assert not any(
        imported == EVENT_HANDLER or imported.startswith(EVENT_HANDLER + ".")
        for imported in imports_of(ALL[name])
    )


def test_no_module_imports_another_in_a_cycle():
    graph = {name: ours(imports_of(path)) - {name} for name, path in ALL.items()}
    # A package's __init__ is not an edge of interest (it is empty or re-exports nothing).
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []
