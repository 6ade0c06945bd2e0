"""Per-operation metrics, log context and trace span.

`operation_span` and `counted_execution` are what every operation goes through: the
schema's own `execute` (`GatewaySchema`) calls them directly, and `OperationObserver` runs
them as Strawberry extension hooks for the paths Strawberry drives itself (subscriptions).
One place per concern, two ways in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import structlog
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from esim_gateway.ops.tracing import Tracing

__all__ = ["OperationObserver", "counted_execution", "operation_span"]


@contextlib.contextmanager
def operation_span(context: ExecutionContext) -> Iterator[None]:
    """The operation's trace span (when tracing is on), named and marked once it ended."""
    services = getattr(context.context, "services", None)
    tracing = services.tracing if services is not None else None
    if not isinstance(tracing, Tracing) or not tracing.enabled:
        yield
        return
    with tracing.span("graphql.operation") as span:
        yield
        if span is None:
            return
        try:
            kind = context.operation_type.value
        except Exception:  # a document that did not parse has no operation type
            kind = "graphql"
        name = context.operation_name
        span.update_name(f"{kind} {name}" if name else kind)
        span.set_attribute("graphql.operation.type", kind)
        if name:
            span.set_attribute("graphql.operation.name", name)
        result = context.result
        errors = getattr(result, "errors", None) or context.pre_execution_errors
        if errors:
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute("graphql.errors", len(errors))
            span.set_status(Status(StatusCode.ERROR, "GraphQL errors"))


@contextlib.contextmanager
def counted_execution(context: ExecutionContext) -> Iterator[None]:
    """Binds the operation and principal to log lines; counts the operation by outcome."""
    request_context = context.context
    name = context.operation_name or "anonymous"
    principal = getattr(getattr(request_context, "principal", None), "id", None)
    structlog.contextvars.bind_contextvars(operation=name, principal=principal)
    yield
    result = context.result
    outcome = "error" if result is not None and result.errors else "ok"
    services = getattr(request_context, "services", None)
    metrics = services.metrics if services is not None else None
    if metrics is not None:
        metrics.count_operation(name, outcome)


class OperationObserver(SchemaExtension):
    """`operation_span` and `counted_execution` as Strawberry hooks.

    One hook per operation (not per field: per-field hooks are what make tracing
    extensions slow on large lists).
    """

    def on_operation(self) -> Iterator[None]:
        with operation_span(self.execution_context):
            yield

    def on_execute(self) -> Iterator[None]:
        with counted_execution(self.execution_context):
            yield
