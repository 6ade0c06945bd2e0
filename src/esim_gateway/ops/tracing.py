"""OpenTelemetry traces (the optional extra ``esim-gateway[otel]``).

One span per GraphQL operation and one per provider call, never one per field: a span
per resolved field is what makes tracing extensions slow on large lists (Strawberry
#3475). Provider calls are children of their operation's span, and carry the W3C
``traceparent`` upstream.

Nothing here imports OpenTelemetry unless tracing is switched on, so the gateway runs
without the extra. Spans never carry documents, variables, URLs with query strings or
exception messages: those can hold eSIM credentials; the error type is enough to find
the log line with the same request id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esim_gateway.config import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ["TRACER_NAME", "Tracing", "build_tracing"]

TRACER_NAME = "esim_gateway"
AttributeValue = str | int | float | bool


@dataclass(slots=True)
class Tracing:
    """Starts spans, or does nothing at all when tracing is off (`tracer` is None)."""

    tracer: Tracer | None = None
    #: a provider this app built (and so flushes and shuts down at exit)
    owned_provider: TracerProvider | None = None

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    @contextlib.contextmanager
    def span(
        self, name: str, *, client: bool = False, attributes: Mapping[str, AttributeValue] = {}
    ) -> Iterator[Span | None]:
        if self.tracer is None:
            yield None
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode

        kind = SpanKind.CLIENT if client else SpanKind.SERVER
        with self.tracer.start_as_current_span(
            name,
            kind=kind,
            attributes=dict(attributes),
            record_exception=False,  # messages may quote provider bodies
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute("error.type", type(exc).__name__)
                raise

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """Adds ``traceparent`` (and ``tracestate``) for the current span, if any."""
        if self.tracer is not None:
            from opentelemetry.propagate import inject

            inject(headers)

    def shutdown(self) -> None:
        if self.owned_provider is not None:
            self.owned_provider.shutdown()


def build_tracing(
    *, enabled: bool, endpoint: str | None, tracer_provider: Any | None = None
) -> Tracing:
    """Tracing as configured.

    * ``tracer_provider`` given (tests, embedding apps): spans go there.
    * ``endpoint`` set: our own SDK provider exporting OTLP over HTTP to it.
    * only ``enabled``: the global provider, as set up by ``opentelemetry-instrument`` or
      the host process (without one, OpenTelemetry's own no-op).
    """
    if tracer_provider is None and not enabled and endpoint is None:
        return Tracing()
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ConfigError(
            "tracing is configured but OpenTelemetry is not installed: "
            "pip install 'esim-gateway[otel]'"
        ) from None
    from importlib.metadata import version

    __version__ = version("esim-gateway")
    if tracer_provider is not None:
        return Tracing(trace.get_tracer(TRACER_NAME, __version__, tracer_provider))
    if endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": "esim-gateway"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return Tracing(trace.get_tracer(TRACER_NAME, __version__, provider), provider)
    return Tracing(trace.get_tracer(TRACER_NAME, __version__))
