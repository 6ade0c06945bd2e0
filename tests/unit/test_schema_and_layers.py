"""Reviewed artifacts: the committed SDL matches the code; imports point one way."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from esim_gateway.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "esim_gateway"


def test_schema_graphql_is_generated_from_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == build_schema().as_str() + "\n", (
        "schema.graphql drifted: run `esim-gateway export-schema schema.graphql`"
    )


def test_possible_types_json_is_generated_from_the_code() -> None:
    from esim_gateway.cli import possible_types_json

    committed = (ROOT / "possible-types.json").read_text()
    assert committed == possible_types_json(), (
        "possible-types.json drifted: run `esim-gateway export-schema schema.graphql`"
    )


def test_possible_types_list_every_member_of_the_result_unions() -> None:
    import json

    from esim_gateway.cli import possible_types_json

    types = json.loads(possible_types_json())
    assert types["Node"] == ["Esim", "Order", "Package"]
    assert "IdempotencyConflictError" in types["CreateOrderResult"]
    assert set(types["CreateOrderResult"]) - {"Order"} <= set(types["Error"])


def test_export_schema_writes_possible_types_beside_the_sdl(tmp_path: Path) -> None:
    from esim_gateway.cli import main

    assert main(["export-schema", str(tmp_path / "schema.graphql")]) == 0
    assert (tmp_path / "possible-types.json").read_text() == (
        ROOT / "possible-types.json"
    ).read_text()


def _imports(folder: Path) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update((str(path.relative_to(ROOT)), a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add((str(path.relative_to(ROOT)), node.module))
    return found


def _offending(folder: str, forbidden: tuple[str, ...]) -> list[tuple[str, str]]:
    return sorted(
        (where, module)
        for where, module in _imports(PACKAGE / folder)
        if module.startswith(forbidden)
    )


def test_providers_know_nothing_of_graphql_starlette_or_the_sandbox() -> None:
    assert (
        _offending(
            "providers",
            (
                "strawberry",
                "starlette",
                "esim_gateway.sandbox",
                "esim_gateway.schema",
                "esim_gateway.resolvers",
            ),
        )
        == []
    )


def test_the_sandbox_never_imports_the_gateway_side() -> None:
    assert (
        _offending(
            "sandbox",
            (
                "esim_gateway.providers",
                "esim_gateway.schema",
                "esim_gateway.resolvers",
                "esim_gateway.ledger",
            ),
        )
        == []
    )


def test_the_schema_never_talks_http() -> None:
    assert _offending("schema", ("httpx", "esim_gateway.providers._http")) == []
    assert _offending("resolvers", ("httpx", "strawberry")) == []


def test_purchasing_knows_nothing_of_graphql_or_http() -> None:
    assert (
        _offending("purchasing", ("httpx", "strawberry", "starlette", "esim_gateway.schema")) == []
    )


def test_errors_sit_below_everything() -> None:
    imported = {m for w, m in _imports(PACKAGE) if w.endswith("src/esim_gateway/errors.py")}
    assert not any(m.startswith(("strawberry", "httpx", "esim_gateway")) for m in imported)


# --- the layers -------------------------------------------------------------------------
#: Top to bottom. A package (or root module) may import only what sits in a layer below
#: its own: never its own layer's neighbours, never anything above. Every package and
#: root module has its place here (a new one must be placed: see the test below).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),
    ("cli", "asgi"),  # the commands and the server's entry point
    ("app",),  # the composition root: build_services, the start/stop list, the routes
    ("sandbox",),  # the simulators: of the gateway, only `signatures` and `http.replay`
    ("http",),  # the edge: the endpoint, GraphQL over HTTP, auth, the install page
    ("webhooks",),  # provider events in: applied through the purchase driver
    ("schema",),  # GraphQL types and unions
    ("resolvers",),  # the use cases, thin
    ("purchasing",),  # the exactly-once driver, reconciler, scheduler
    ("context",),  # the per-request context and the typed Services
    ("dataloaders", "install", "outbound"),  # per-request loaders; install data; our events out
    ("ledger",),  # the stores and migrations
    ("pricing", "live"),  # prices and currencies; the subscriptions' broker
    ("providers",),  # one adapter per provider, behind the gateway protocol
    ("ops",),  # logging, metrics, tracing, heap, background loops, rate limits
    ("domain", "signatures"),  # shared records and events; signature algorithms
    ("config",),
    ("errors",),
)
LAYER = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}

#: `context` names every service's type for type checking only: at run time it imports
#: only the loaders. Its type-only imports are the one exception to the layers.
TYPE_ONLY_EXEMPT = {"context"}


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "esim_gateway" or len(parts) < 2:
        return None
    return parts[1]


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _walk(node: ast.AST, *, skip_type_only: bool) -> Iterator[ast.AST]:
    for child in ast.iter_child_nodes(node):
        if skip_type_only and isinstance(child, ast.stmt) and _is_type_checking(child):
            continue
        yield child
        yield from _walk(child, skip_type_only=skip_type_only)


def _unit_imports() -> set[tuple[str, str, str]]:
    """(importing unit, imported unit, importing file) for every import between units,
    function-level imports included."""
    found: set[tuple[str, str, str]] = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        unit = relative.parts[0].removesuffix(".py")
        if unit == "__init__":
            continue
        tree = ast.parse(path.read_text())
        for node in _walk(tree, skip_type_only=unit in TYPE_ONLY_EXEMPT):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                if node.module == "esim_gateway":
                    targets = [f"esim_gateway.{alias.name}" for alias in node.names]
                else:
                    targets = [node.module]
            for target in targets:
                other = _unit(target)
                if other is not None and other != unit:
                    found.add((unit, other, str(relative)))
    return found


def _units() -> set[str]:
    return {
        p.name.removesuffix(".py")
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()
    }


def test_every_package_and_root_module_has_its_layer() -> None:
    assert _units() - set(LAYER) == set()


def test_no_module_imports_its_own_layer_or_a_layer_above() -> None:
    upward = sorted(
        f"{where}: {unit} -> {other}"
        for unit, other, where in _unit_imports()
        if unit in LAYER and other in LAYER and LAYER[other] <= LAYER[unit]
    )
    assert upward == []


def test_packages_import_each_other_in_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for unit, other, _ in _unit_imports():
        graph.setdefault(unit, set()).add(other)
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(unit: str, path: list[str]) -> None:
        state[unit] = "open"
        for other in sorted(graph.get(unit, ())):
            if state.get(other) == "open":
                cycles.append([*path[path.index(other) :], other])
            elif other not in state:
                visit(other, [*path, other])
        state[unit] = "done"

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [unit])
    assert cycles == []


def test_the_root_holds_at_most_ten_modules() -> None:
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 10, root


def test_the_ledger_imports_nothing_above_it() -> None:
    # below the ledger: errors and the shared records (providers.base until they move to
    # domain.py); the outbound event names it writes live in the ledger itself
    below = (
        "esim_gateway.ledger",
        "esim_gateway.errors",
        "esim_gateway.domain",
        "esim_gateway.providers.base",
    )
    imported = {module for _, module in _imports(PACKAGE / "ledger")}
    above = sorted(m for m in imported if m.startswith("esim_gateway") and not m.startswith(below))
    assert above == []
