"""Reviewed artifacts: the committed SDL matches the code; imports point one way."""

from __future__ import annotations

import ast
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
