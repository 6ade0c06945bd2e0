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


def test_errors_sit_below_everything() -> None:
    imported = {m for w, m in _imports(PACKAGE) if w.endswith("src/esim_gateway/errors.py")}
    assert not any(m.startswith(("strawberry", "httpx", "esim_gateway")) for m in imported)
