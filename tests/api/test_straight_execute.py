"""`GatewaySchema.execute` answers exactly as Strawberry's own `execute` with the same
extensions: same data, same errors (masked alike), same exceptions for operations a
request may not run, and each operation counted once. The straight path only drops
Strawberry's extension runner (issue 12); these documents cover each of its branches."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from esim_gateway.context import Context
from esim_gateway.dataloaders.loaders import build_loaders
from esim_gateway.http.auth import DEMO_PRINCIPAL
from esim_gateway.schema import GatewaySchema, build_schema
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
