"""`GatewaySchema.execute` answers exactly as Strawberry's own `execute` with the same
extensions: same data, same errors (masked alike), same exceptions for operations a
request may not run, and each operation counted once. The straight path only drops
Strawberry's extension runner (issue 12); these documents cover each of its branches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import strawberry
from graphql import DirectiveLocation
from strawberry.directive import DirectiveValue
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from esim_gateway.context import Context
from esim_gateway.dataloaders.loaders import build_loaders
from esim_gateway.http.auth import DEMO_PRINCIPAL
from esim_gateway.schema import GatewaySchema, Limits, build_schema, document_gate
from esim_gateway.schema.extensions import OperationObserver
from esim_gateway.schema.limits import DocumentChecks
from tests.conftest import Gateway

DOCUMENTS = {
    "trivial": ("{ __typename }", None),
    "catalog": ("query Plans { packages(first: 2) { totalCount edges { node { id } } } }", None),
    "variables": (
        "query One($id: ID!) { order(id: $id) { __typename ... on Error { message } } }",
        {"id": "not-an-order"},
    ),
    "syntax error": ("{ packages(", None),
    "unknown field": ("{ nope }", None),
    "bad variable": ("query One($id: ID!) { order(id: $id) { __typename } }", {"id": 5}),
    "missing variable": ("query One($id: ID!) { order(id: $id) { __typename } }", None),
    "too deep": (
        "{ orders { edges { node { esims { order { esims { order { esims { order { id } } } }"
        " } } } } } }",
        None,
    ),
    "too expensive": ("{ packages(first: 100000) { edges { node { id name } } } }", None),
}


def response(result: Any) -> dict[str, Any]:
    return {
        "data": result.data,
        "errors": [e.formatted for e in result.errors or []],
        "extensions": result.extensions or {},
    }


def counted(gateway: Gateway) -> float:
    metrics = gateway.services.metrics
    return sum(
        float(sample.value)
        for metric in metrics.operations.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def both(
    gateway: Gateway, schema: GatewaySchema, document: str, **options: Any
) -> tuple[Any, Any]:
    """The straight path's answer, then Strawberry's; both count the operation alike (once
    when it executed, not when it was refused before)."""
    answers, counts = [], []
    for execute in (schema.execute, lambda *a, **k: strawberry.Schema.execute(schema, *a, **k)):
        services = gateway.services
        context = Context(
            services=services,
            principal=DEMO_PRINCIPAL,
            loaders=build_loaders(services.providers, services.ledger),
        )
        before = counted(gateway)
        answers.append(await execute(document, context_value=context, **options))
        counts.append(counted(gateway) - before)
    assert counts[0] == counts[1] <= 1
    return answers[0], answers[1]


@pytest.mark.parametrize("name", DOCUMENTS)
async def test_answers_as_strawberry_does(gateway: Gateway, name: str) -> None:
    document, variables = DOCUMENTS[name]
    schema = gateway.app.state.schema
    assert schema.gate is not None  # the tuned build takes the straight path
    straight, strawberrys = await both(gateway, schema, document, variable_values=variables)
    assert response(straight) == response(strawberrys)
    if name in ("trivial", "catalog", "variables"):
        assert not straight.errors


async def test_unexpected_errors_are_masked_alike(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> list[Any]:
        raise RuntimeError("internal detail that must not reach a client")

    monkeypatch.setattr(gateway.services.catalog, "status", broken)
    masked = build_schema(mask_errors=True)
    straight, strawberrys = await both(gateway, masked, "{ catalogStatus { plans } }")
    assert response(straight) == response(strawberrys)
    assert [e.message for e in straight.errors] == ["Unexpected error."]


@pytest.mark.parametrize(
    ("document", "options", "refusal"),
    [
        ("query A { __typename }", {"operation_name": "B"}, CannotGetOperationTypeError),
        (
            "mutation { __typename }",
            {"allowed_operation_types": {OperationType.QUERY}},
            InvalidOperationTypeError,
        ),
    ],
)
async def test_refuses_what_strawberry_refuses(
    gateway: Gateway, document: str, options: dict[str, Any], refusal: type[Exception]
) -> None:
    schema = gateway.app.state.schema
    for execute in (schema.execute, lambda *a, **k: strawberry.Schema.execute(schema, *a, **k)):
        with pytest.raises(refusal):
            await execute(document, **options)


class Recorder(SchemaExtension):
    """An extension the straight path does not re-implement: records each execution."""

    executed: ClassVar[list[str | None]] = []

    def on_execute(self) -> Iterator[None]:
        Recorder.executed.append(self.execution_context.query)
        yield


@strawberry.type
class Small:
    greeting: str = "hello"


@strawberry.directive(locations=[DirectiveLocation.FIELD])
def shout(value: DirectiveValue[str]) -> str:
    text: str = value  # DirectiveValue reads as Any
    return text.upper()


def straight(schema: GatewaySchema) -> bool:
    """Whether `execute` takes the straight path (else Strawberry's own)."""
    return schema.gate is not None


def fallbacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "esim_gateway.schema"]


async def test_an_extension_added_after_the_build_runs_and_is_named_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    schema = build_schema.__wrapped__()  # a schema of its own, not the cached one
    assert straight(schema)
    Recorder.executed.clear()
    schema.extensions = (*schema.extensions, Recorder)
    for _ in range(2):
        result = await schema.execute("{ __typename }")
        assert result.data == {"__typename": "Query"} and not result.errors
    assert Recorder.executed == ["{ __typename }"] * 2
    assert not straight(schema)  # Strawberry's own execute runs every extension
    (warning,) = fallbacks(caplog)
    assert f"the extension {__name__}.Recorder" in warning


async def test_a_schema_built_with_an_unknown_extension_warns_at_build_and_runs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = document_gate(Limits(), introspection=True, cache_size=8)
    schema = GatewaySchema(
        query=Small, extensions=[lambda: DocumentChecks(gate), OperationObserver, Recorder]
    )
    (warning,) = fallbacks(caplog)
    assert f"{__name__}.Recorder" in warning and "Strawberry's own execute" in warning
    Recorder.executed.clear()
    result = await schema.execute("{ greeting }", root_value=Small())
    assert result.data == {"greeting": "hello"}
    assert Recorder.executed == ["{ greeting }"]


async def test_schema_directives_make_the_schema_take_strawberrys_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = document_gate(Limits(), introspection=True, cache_size=8)
    extensions = [lambda: DocumentChecks(gate), OperationObserver]
    plain = GatewaySchema(query=Small, extensions=extensions)
    assert plain.gate is gate and not fallbacks(caplog)
    schema = GatewaySchema(query=Small, extensions=extensions, directives=[shout])
    assert not straight(schema)
    (warning,) = fallbacks(caplog)
    assert "schema directives" in warning
    result = await schema.execute("{ greeting @shout }", root_value=Small())
    assert result.data == {"greeting": "HELLO"}


def test_incremental_execution_and_a_missing_gate_make_the_schema_take_strawberrys_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    incremental = GatewaySchema(
        query=Small,
        extensions=[OperationObserver],
        config=StrawberryConfig(enable_experimental_incremental_execution=True),
    )
    assert not straight(incremental)
    (warning,) = fallbacks(caplog)
    assert "incremental execution" in warning and "without DocumentChecks" in warning
