"""Schema extensions of our own: per-operation metrics and log context."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from strawberry.extensions import SchemaExtension

__all__ = ["OperationObserver"]


class OperationObserver(SchemaExtension):
    """Counts operations by name and outcome; binds the operation and principal to logs.

    One hook per operation (not per field: per-field hooks are what make tracing
    extensions slow on large lists).
    """

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
