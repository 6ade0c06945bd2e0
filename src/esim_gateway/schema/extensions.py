"""Schema extensions of our own: per-operation metrics, log context and trace span."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from strawberry.extensions import SchemaExtension

from esim_gateway.tracing import Tracing

__all__ = ["OperationObserver"]


class OperationObserver(SchemaExtension):
    """Counts operations by name and outcome; binds the operation and principal to logs;
    opens the operation's trace span.

    One hook per operation (not per field: per-field hooks are what make tracing
    extensions slow on large lists).
    """

    def on_operation(self) -> Iterator[None]:
        services = getattr(self.execution_context.context, "services", None)
        tracing = services.extras.get("tracing") if services is not None else None
        if not isinstance(tracing, Tracing) or not tracing.enabled:
            yield
            return
        with tracing.span("graphql.operation") as span:
            yield
            if span is None:
                return
            context = self.execution_context
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

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        name = self.execution_context.operation_name or "anonymous"
        principal = getattr(getattr(context, "principal", None), "id", None)
        structlog.contextvars.bind_contextvars(operation=name, principal=principal)
        yield
        result = self.execution_context.result
        outcome = "error" if result is not None and result.errors else "ok"
        services = getattr(context, "services", None)
        metrics = services.extras.get("metrics") if services is not None else None
        if metrics is not None:
            metrics.operations.labels(name, outcome).inc()
