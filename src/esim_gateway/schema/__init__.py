"""The GraphQL schema, built by a factory (nothing is configured at import time)."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLInterfaceType, GraphQLUnionType
from graphql import execute as graphql_execute
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from esim_gateway.schema.error_log import log_graphql_errors
from esim_gateway.schema.errors import (
    ERROR_TYPES,
    EXCEPTION_HANDLERS,
    ErrorCode,
    error_code,
    with_code,
)
from esim_gateway.schema.execution import AttributeFieldsExecutionContext
from esim_gateway.schema.extensions import OperationObserver, counted_execution, operation_span
from esim_gateway.schema.inputs import build_flat_inputs
from esim_gateway.schema.limits import DocumentChecks, DocumentGate
from esim_gateway.schema.root import Mutation, Query, Subscription
from esim_gateway.schema.types import Package

_log = logging.getLogger("esim_gateway.schema")

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
    """Strawberry's schema, logging errors without the request's text (`error_log`), and
    executing queries and mutations on a straight path (`execute`).

    The straight path re-implements three extensions (`DocumentChecks`, `OperationObserver`,
    `MaskErrors`) and nothing else. Given anything more (another extension, schema
    directives, incremental execution), the schema falls back to Strawberry's own `execute`
    and logs one WARNING naming what it does not re-implement: the extension runs and the
    answer is right, only slower. Falling back rather than refusing to build, because a
    gateway that stays up and correct beats one that will not start over a speed-up;
    tests/api/test_straight_execute.py fails when the production build falls back, so the
    loss of speed does not go unnoticed either.
    """

    #: what `execute` runs each operation through, taken from the extensions it was given;
    #: None: Strawberry's path (the naive build, or something the straight path lacks)
    gate: DocumentGate | None = None
    masker: MaskErrors | None = None

    def __init__(self, *args: Any, straight: bool = True, **kwargs: Any) -> None:
        """`straight=False`: always Strawberry's path (the benchmarks' naive baseline)."""
        super().__init__(*args, **kwargs)
        self._straight = straight
        self._vetted: tuple[object, ...] | None = None
        self._vet()

    def _vet(self) -> None:
        """Takes the straight path when it re-implements all that this schema runs."""
        self._vetted = self.extensions
        self.gate = self.masker = None
        if not self._straight:
            return
        gate, masker, unhandled = _straight_path_parts(self)
        if unhandled:
            _log.warning(
                "GatewaySchema's straight path does not re-implement %s: queries and"
                " mutations run through Strawberry's own execute (correct, slower)",
                ", ".join(unhandled),
            )
            return
        self.gate, self.masker = gate, masker

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """What Strawberry's `execute` does with our three extensions (parse and checks
        through the `DocumentGate`, span and metrics, masking), in that order, without
        its extension runner: that runner builds a context manager per hook and phase on
        every operation, ~90 us of a cached `{ __typename }`'s ~150 here (issue 12,
        'execution'). Subscriptions still go through Strawberry and the same extensions."""
        if self.extensions is not self._vetted:  # extensions set after the build
            self._vet()
        if self.gate is None:
            return await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        context = self._create_execution_context(
            query=query,
            allowed_operation_types=DEFAULT_ALLOWED_OPERATION_TYPES
            if allowed_operation_types is None
            else allowed_operation_types,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
        )
        with operation_span(context):
            try:
                result = await self._run(context, self.gate)
            except (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError):
                raise
            except Exception as exc:  # as Strawberry: the operation's one error
                error = (
                    exc
                    if isinstance(exc, GraphQLError)
                    else GraphQLError(str(exc), original_error=exc)
                )
                result = self._refused(context, [error])
            context.result = result
            if self.masker is not None and result.errors:
                result.errors = self.masker._process_errors(result.errors)
        return result

    async def _run(self, context: ExecutionContext, gate: DocumentGate) -> ExecutionResult:
        if not context.query:
            raise MissingQueryError
        try:
            document = context.graphql_document = gate.parse(context.query)
        except GraphQLError as error:  # a syntax error, or too many tokens
            return self._refused(context, [error])
        try:
            operation_type = context.operation_type
        except RuntimeError as error:
            raise CannotGetOperationTypeError(context.operation_name) from error
        if operation_type not in context.allowed_operations:
            raise InvalidOperationTypeError(operation_type)
        errors = gate.errors(
            self._schema, context.query, document, context.validation_rules, context.variables
        )
        if errors:
            return self._refused(context, errors)
        with counted_execution(context):
            outcome = graphql_execute(
                self._schema,
                document,
                root_value=context.root_value,
                variable_values=context.variables,
                operation_name=context.operation_name,
                context_value=context.context,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # as Strawberry
                executor_class=self.execution_context_class,
                operation_extensions=context.operation_extensions,
            )
            if inspect.isawaitable(outcome):
                outcome = await outcome
            context.result = outcome  # what the hooks read
            if outcome.errors:
                context.pre_execution_errors = outcome.errors
                self._process_errors(outcome.errors, context)
        return ExecutionResult(data=outcome.data, errors=outcome.errors)

    def _refused(self, context: ExecutionContext, errors: list[GraphQLError]) -> ExecutionResult:
        context.pre_execution_errors = errors
        self._process_errors(errors, context)
        return ExecutionResult(data=None, errors=errors)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Every error of every path (this one, Strawberry's, subscriptions) comes here
        before it is masked: coded (`ErrorCode`), then logged."""
        for error in errors:
            with_code(error)
        query = execution_context.query if execution_context is not None else None
        variables = execution_context.variables if execution_context is not None else None
        log_graphql_errors(errors, self._schema, query, variables)


class CheapMaskErrors(MaskErrors):
    """Strawberry's MaskErrors, asking a result for its errors directly: its check, an
    `isinstance` against a runtime-checkable Protocol, cost ~7 us on every request, with
    or without errors (issue 12, 'execution'). A masked error keeps its code."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": ErrorCode.INTERNAL_SERVER_ERROR}
        return masked

    def _process_result(self, result: object) -> None:
        errors = getattr(result, "errors", None)  # what the Protocol check looks for
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]


def _straight_path_parts(
    schema: strawberry.Schema,
) -> tuple[DocumentGate | None, MaskErrors | None, list[str]]:
    """The gate and masker of the extensions `GatewaySchema.execute` re-implements, and
    what it does not: any other extension (exact types: a subclass may add hooks), a second
    of one kind, a missing `DocumentChecks` or `OperationObserver` (the straight path runs
    both always), schema directives (Strawberry's `DirectivesExtension`) and incremental
    execution (`@defer`/`@stream`, another executor)."""
    gate: DocumentGate | None = None
    masker: MaskErrors | None = None
    observed = False
    unhandled: list[str] = []
    for entry in schema.extensions:
        # a factory builds the instance Strawberry would build for each operation
        extension = entry if isinstance(entry, SchemaExtension) else entry()
        kind = type(extension)
        if kind is DocumentChecks and gate is None:
            gate = extension.gate  # type: ignore[attr-defined]
        elif kind is OperationObserver and not observed:
            observed = True
        elif kind in (MaskErrors, CheapMaskErrors) and masker is None:
            masker = extension  # type: ignore[assignment]
        else:
            unhandled.append(f"the extension {kind.__module__}.{kind.__qualname__}")
    if gate is None:
        unhandled.append("a schema without DocumentChecks")
    if not observed:
        unhandled.append("a schema without OperationObserver")
    if schema.directives:
        unhandled.append("schema directives")
    if schema.config.enable_experimental_incremental_execution:
        unhandled.append("incremental execution")
    return gate, masker, unhandled


def should_mask(error: GraphQLError) -> bool:
    """Mask the server's own faults only: the client's mistakes and our refusals are
    shown, with their code."""
    return error_code(error) is ErrorCode.INTERNAL_SERVER_ERROR


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
        straight=caches,
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
