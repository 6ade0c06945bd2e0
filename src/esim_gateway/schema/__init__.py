"""The GraphQL schema, built by a factory (nothing is configured at import time)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import strawberry
from graphql import GraphQLError, GraphQLInterfaceType, GraphQLUnionType
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from esim_gateway.errors import GatewayError
from esim_gateway.schema.error_log import log_graphql_errors
from esim_gateway.schema.errors import ERROR_TYPES, EXCEPTION_HANDLERS
from esim_gateway.schema.execution import AttributeFieldsExecutionContext
from esim_gateway.schema.extensions import OperationObserver
from esim_gateway.schema.inputs import build_flat_inputs
from esim_gateway.schema.limits import DocumentChecks, DocumentGate
from esim_gateway.schema.root import Mutation, Query, Subscription
from esim_gateway.schema.types import Package

__all__ = [
    "GatewaySchema",
    "Limits",
    "build_schema",
    "document_gate",
    "possible_types",
    "should_mask",
]


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 8
    max_aliases: int = 15
    max_tokens: int = 2000
    max_cost: int = 10_000
    max_directives_per_field: int = 5


class GatewaySchema(strawberry.Schema):
    """Strawberry's schema, logging errors without the request's text (`error_log`)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        query = execution_context.query if execution_context is not None else None
        variables = execution_context.variables if execution_context is not None else None
        log_graphql_errors(errors, self._schema, query, variables)


class CheapMaskErrors(MaskErrors):
    """Strawberry's MaskErrors, asking a result for its errors directly: its check, an
    `isinstance` against a runtime-checkable Protocol, cost ~7 us on every request, with
    or without errors (issue 12, 'execution')."""

    def _process_result(self, result: object) -> None:
        errors = getattr(result, "errors", None)  # what the Protocol check looks for
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]


def should_mask(error: GraphQLError) -> bool:
    """Mask unexpected exceptions only: syntax/validation errors and our own are shown."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    return not isinstance(original, GatewayError)


def document_gate(limits: Limits, *, introspection: bool, cache_size: int) -> DocumentGate:
    """The checks every document passes before it runs, for these limits."""
    return DocumentGate(
        max_depth=limits.max_depth,
        max_aliases=limits.max_aliases,
        max_tokens=limits.max_tokens,
        max_cost=limits.max_cost,
        max_directives_per_field=limits.max_directives_per_field,
        introspection=introspection,
        cache_size=cache_size,
    )


@functools.cache
def build_schema(
    limits: Limits = Limits(),
    *,
    introspection: bool = True,
    mask_errors: bool = True,
    caches: bool = True,
) -> GatewaySchema:
    """One schema per configuration, built once (schemas hold no per-request state).

    `caches=False` parses and validates every document afresh and executes every field
    through graphql-core's full path: only the benchmarks' naive baseline wants that.
    """
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = []
    gate = document_gate(limits, introspection=introspection, cache_size=512 if caches else 0)
    # Few extensions on purpose: Strawberry builds each one per request and wraps each of
    # its hooks, so every limit on the document shares one (DocumentChecks).
    extensions += [lambda: DocumentChecks(gate), OperationObserver]
    if mask_errors:
        extensions.append(lambda: CheapMaskErrors(should_mask_error=should_mask))
    schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[*ERROR_TYPES, Package],
        extensions=extensions,
        exception_handlers=EXCEPTION_HANDLERS,
        config=StrawberryConfig(disable_field_suggestions=not introspection),
        execution_context_class=AttributeFieldsExecutionContext if caches else None,
    )
    build_flat_inputs(schema)
    return schema


def possible_types(schema: strawberry.Schema) -> dict[str, list[str]]:
    """Every union and interface with the object types it may be: the map Apollo Client's
    `InMemoryCache({possibleTypes})` takes (and `possible-types.json` holds)."""
    core = schema._schema
    return {
        name: sorted(t.name for t in core.get_possible_types(kind))
        for name, kind in sorted(core.type_map.items())
        if not name.startswith("__") and isinstance(kind, GraphQLInterfaceType | GraphQLUnionType)
    }
