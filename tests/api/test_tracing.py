"""OpenTelemetry traces: one span per operation, one per provider call, nothing per field."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Receive, Scope, Send

from esim_gateway.config import ConfigError, Settings
from esim_gateway.ops.tracing import build_tracing
from tests.api.test_ordering import ORDER, buy
from tests.conftest import GatewayFactory, make_sandboxes


class RecordHeaders:
    """Keeps the headers of every request the simulator receives."""

    def __init__(self, app: ASGIApp, seen: list[dict[str, str]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _values(span: ReadableSpan) -> list[str]:
    return [str(v) for v in (span.attributes or {}).values()] + [span.name]


async def test_an_operation_is_one_span_with_a_child_per_provider_call(
    gateway_factory: GatewayFactory,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    sandboxes = make_sandboxes()
    upstream_headers: list[dict[str, str]] = []
    sandboxes.roamify.app.add_middleware(RecordHeaders, seen=upstream_headers)
    async with gateway_factory(sandboxes=sandboxes, tracer_provider=tracer_provider) as gw:
        order = await buy(gw, "ROAMIFY", quantity=2)
        assert order["__typename"] == "Order"
        # the sandbox's fulfilment webhooks make the gateway call Roamify in the buy's
        # trace; let them finish so only the Order query's calls are counted below
        await gw.roamify.settle()
        exporter.clear()
        upstream_headers.clear()
        gw.roamify.control.calls.clear()
        gw.services.ledger.invalidate(order["id"])

        result = await gw.post(ORDER, {"id": order["id"]})
        assert result.json()["data"]["order"]["__typename"] == "Order"

        spans = exporter.get_finished_spans()
        operations = [s for s in spans if s.kind is SpanKind.SERVER]
        calls = [s for s in spans if s.kind is SpanKind.CLIENT]
        assert len(operations) == 1 and operations[0].name == "query Order"
        operation = operations[0]
        assert operation.attributes is not None
        assert operation.attributes["graphql.operation.name"] == "Order"
        assert operation.attributes["graphql.operation.type"] == "query"
        # one span per upstream call, none per resolved field
        upstream = len(gw.roamify.control.calls.calls)
        assert upstream >= 1 and len(calls) == upstream and len(spans) == 1 + upstream
        for call in calls:
            assert call.parent is not None and call.parent.span_id == operation.context.span_id
            assert call.context.trace_id == operation.context.trace_id
            assert call.attributes is not None and call.attributes["esim.provider"] == "roamify"
            assert call.attributes["http.response.status_code"] == 200
        # the provider saw our trace context
        assert len(upstream_headers) == upstream
        trace_id = format(operation.context.trace_id, "032x")
        assert all(h["traceparent"].split("-")[1] == trace_id for h in upstream_headers)
        # spans never carry eSIM credentials
        esims = result.json()["data"]["order"]["esims"]
        secrets = {e["activationCode"] for e in esims} | {e["lpa"] for e in esims}
        assert all(secret not in value for s in spans for value in _values(s) for secret in secrets)


async def test_a_failed_provider_call_marks_its_span_as_an_error(
    gateway_factory: GatewayFactory,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    async with gateway_factory(tracer_provider=tracer_provider) as gw:
        gw.roamify.control.faults.arm(
            "GET", "/api/esim/packages", status=503, body={"message": "down"}, times=None
        )
        body = (
            await gw.post(
                "{ packages(filter: {provider: ROAMIFY}, first: 1) { totalCount"
                " providerErrors { provider statusCode } } }"
            )
        ).json()
        assert body["data"]["packages"]["providerErrors"] == [
            {"provider": "ROAMIFY", "statusCode": 503}
        ], body
        calls = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
        assert calls and all(s.status.status_code is StatusCode.ERROR for s in calls)
        assert {s.attributes["http.response.status_code"] for s in calls if s.attributes} == {503}


async def test_a_rejected_document_is_an_error_span(
    gateway_factory: GatewayFactory,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    async with gateway_factory(tracer_provider=tracer_provider) as gw:
        response = await gw.post("query Broken { nosuchfield }")
        assert response.json()["errors"]
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR and span.name == "query Broken"


async def test_tracing_is_off_unless_configured(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory() as gw:
        assert not gw.services.tracing.enabled


def test_an_otlp_endpoint_gets_an_exporter_of_our_own() -> None:
    settings = Settings.from_mapping(
        {"ESIM_GATEWAY_OTEL_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}
    )
    tracing = build_tracing(enabled=settings.otel_enabled, endpoint=settings.otel_endpoint)
    try:
        assert tracing.enabled and tracing.owned_provider is not None
    finally:
        tracing.shutdown()
    with pytest.raises(ConfigError):
        Settings.from_mapping({"ESIM_GATEWAY_OTEL_ENDPOINT": "collector:4318"})
    with pytest.raises(ConfigError):
        Settings.from_mapping({"ESIM_GATEWAY_OTEL_ENABLED": "maybe"})
