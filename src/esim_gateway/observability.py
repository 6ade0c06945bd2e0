"""Logs, metrics and request accounting.

* Structured JSON logs (structlog, also formatting the stdlib loggers) with the request
  id, principal and operation bound per request; every event passes `redact_event`,
  which drops credential-named keys and masks credential-looking text.
* Prometheus metrics in a registry of the app's own (no global state between apps).
* `RequestStats` (a context variable) measures how long a request waited on providers,
  counting overlapping calls once, so `gateway_overhead_seconds` = total - waiting, the
  way Apollo Router's overhead metric is defined.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote

import httpx
import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from esim_gateway.errors import redact
from esim_gateway.forwarded import client_address
from esim_gateway.providers.parts import RequestParts, ResponseParts, takes_parts
from esim_gateway.tracing import Tracing

__all__ = [
    "InstrumentedTransport",
    "Metrics",
    "RequestAccounting",
    "RequestMiddleware",
    "RequestStats",
    "configure_logging",
    "current_stats",
    "redact_event",
]

_PROVIDER_LOG = logging.getLogger("esim_gateway.provider")
_ACCESS_LOG = logging.getLogger("esim_gateway.access")

_SENSITIVE = {
    "authorization",
    "token",
    "secret",
    "password",
    "apikey",
    "secretkey",
    "checksumkey",
    "xapikey",
    "xsignature",
    "signature",
    "activationcode",
    "lpa",
    "lpacode",
    "lpastring",
    "qrcodecontent",
    "pin",
    "puk",
    "roamifytoken",
    "jwt",
    "webhooksecret",
}


_NOT_LETTER = re.compile(r"[^a-z]")


@functools.lru_cache(maxsize=4096)
def _normal(key: str) -> str:
    # cached: log events use the same few keys over and over
    return _NOT_LETTER.sub("", key.lower())


def _render_json(event: Mapping[str, Any], default: Any = repr, **_: Any) -> str:
    # orjson: a fraction of the stdlib encoder's cost on every log line
    try:
        return orjson.dumps(event, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what orjson cannot encode (an int past 64 bits): the stdlib can
        return json.dumps(event, default=default)


#: values that cannot hold a credential: returned as they are, before the (slower) checks
#: for mappings and sequences; most of an access line's values are these
_PLAIN = frozenset({int, float, bool, type(None)})


def _scrub(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            k: "[redacted]" if _normal(str(k)) in _SENSITIVE else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact_event(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: no credential leaves the process in a log line."""
    for key in list(event):
        if _normal(key) in _SENSITIVE:
            event[key] = "[redacted]"
        else:
            event[key] = _scrub(event[key])
    return event


def configure_logging(
    level: str = "INFO",
    *,
    json: bool = True,
    handler: bool = True,
    library_access_logs: bool | None = None,
) -> None:
    """JSON lines on stderr for structlog and stdlib loggers alike.

    `handler=False` routes structlog into stdlib logging without installing a stderr
    handler (tests: pytest's own log capture then sees every record).
    `library_access_logs` lets httpx write its INFO line per provider call (our access
    line already counts and times them); None: only at DEBUG. uvicorn's access line is
    the server's to switch (`server_options`).
    """
    if library_access_logs is None:
        library_access_logs = level.upper() == "DEBUG"
    # Our lines carry no source file, thread or process fields: the logging HOWTO's
    # "Optimization" switches spare every record a stack walk and three lookups (~35 us a
    # line here, issue 12 'logging and metrics')
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("httpx").setLevel(logging.NOTSET if library_access_logs else logging.WARNING)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.format_exc_info,
        redact_event,
        # after the redaction: our clock, level and logger name carry no request text, and
        # scanning them cost ~5 us per line (issue 12, 'logging and metrics')
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_render_json)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        # drop records under the level before any processor (redaction walks values)
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.setLevel(level)
    if handler:
        root.handlers[:] = [stream]
    _access_writer.install(AccessLineWriter([*shared, renderer], stream) if handler else None)


class AccessLineWriter:
    """The access line, through the same processors and onto the same stream as any
    structlog line, without the stdlib round trip.

    Budget line "logging and metrics" (issue 12): a structlog event routed through stdlib
    logging builds a bound-logger proxy, a LogRecord, runs the level filter and the
    handler chain, and ProcessorFormatter copies the record before rendering (~35 us of
    the ~45 us a line costs in a tight loop, more in the server). The access line is
    written once per request, so it takes the short way while the logging configuration
    is still the one `configure_logging` installed: the access logger and the root have
    no other handler or filter. Otherwise (pytest's capture, a handler added by a user) it
    is logged as any other event.
    """

    def __init__(self, processors: list[Any], handler: logging.StreamHandler[Any]) -> None:
        self._processors = processors
        self._handler = handler

    def applies(self) -> bool:
        root = _ACCESS_LOG.root
        return (
            len(root.handlers) == 1
            and root.handlers[0] is self._handler
            and not root.filters
            and not self._handler.filters
            and not _ACCESS_LOG.handlers
            and not _ACCESS_LOG.filters
            and _ACCESS_LOG.propagate
            and self._handler.level <= logging.INFO
        )

    def write(self, event: dict[str, Any]) -> None:
        line: Any = event
        for processor in self._processors:
            line = processor(_ACCESS_LOG, "info", line)
        handler = self._handler
        handler.acquire()
        try:
            handler.stream.write(line + handler.terminator)
            handler.flush()
        except Exception:  # as StreamHandler.emit: a failed write is reported, not raised
            handler.handleError(logging.makeLogRecord({"msg": line}))
        finally:
            handler.release()


class _Installed:
    """The access line's writer for the logging configuration in force (process-wide,
    as logging's own configuration is); None when configure_logging installed no handler."""

    writer: AccessLineWriter | None = None

    def install(self, writer: AccessLineWriter | None) -> None:
        self.writer = writer


_access_writer = _Installed()


@dataclass
class RequestStats:
    """Time a request spent waiting on providers, overlapping calls counted once."""

    started: float = field(default_factory=time.perf_counter)
    calls: int = 0
    waiting: float = 0.0
    _in_flight: int = 0
    _since: float = 0.0

    def call_started(self) -> None:
        if self._in_flight == 0:
            self._since = time.perf_counter()
        self._in_flight += 1
        self.calls += 1

    def call_ended(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self.waiting += time.perf_counter() - self._since

    def overhead(self, now: float | None = None) -> float:
        total = (time.perf_counter() if now is None else now) - self.started
        return max(0.0, total - self.waiting)


_stats: contextvars.ContextVar[RequestStats | None] = contextvars.ContextVar(
    "esim_gateway_request_stats", default=None
)


def current_stats() -> RequestStats | None:
    return _stats.get()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # python_gc_*: the cyclic collector's runs per generation, read from gc.get_stats()
        # at scrape time (nothing per request); a rise per request means request state
        # is being left in reference cycles
        GCCollector(registry=r)
        self.operations = Counter(
            "graphql_operations",
            "GraphQL operations by name and outcome",
            ["operation", "outcome"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "http_request_seconds",
            "Request time",
            ["route"],
            registry=r,
        )
        self.overhead_seconds = Histogram(
            "gateway_overhead_seconds",
            "Request time minus time spent waiting on providers",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.provider_calls = Counter(
            "provider_calls",
            "Upstream calls by provider, endpoint and status",
            ["provider", "endpoint", "status"],
            registry=r,
        )
        self.provider_seconds = Histogram(
            "provider_call_seconds",
            "Upstream call latency",
            ["provider", "endpoint"],
            registry=r,
        )
        self.loader_batch = Histogram(
            "loader_batch_size",
            "Keys per loader batch",
            ["loader"],
            buckets=(1, 2, 5, 10, 20, 50, 100),
            registry=r,
        )
        self.circuit_open = Gauge(
            "provider_circuit_open",
            "1 while a provider's circuit is open",
            ["provider"],
            registry=r,
        )
        self.reconciler_backlog = Gauge(
            "reconciler_backlog",
            "Orders not settled yet",
            registry=r,
        )
        self.duplicate_purchases = Counter(
            "esim_gateway_duplicate_purchases",
            "Provider orders found beyond the first under one order's reference",
            ["provider"],
            registry=r,
        )
        self.outbound_pending = Gauge(
            "outbound_webhooks_pending",
            "Outbound webhook deliveries waiting to be sent or retried",
            registry=r,
        )
        self.live_broker_connected = Gauge(
            "esim_gateway_live_broker_connected",
            "1 while other replicas' changes reach this replica's subscriptions"
            " (PostgreSQL LISTEN/NOTIFY connected; always 1 in a single process)",
            registry=r,
        )
        self.webhooks = Counter(
            "webhook_deliveries",
            "Webhook deliveries by provider and answer",
            ["provider", "status"],
            registry=r,
        )
        self._operation_series: dict[tuple[str, str], Any] = {}

    def count_operation(self, name: str, outcome: str) -> None:
        # a label lookup takes the metric's lock and builds a key on every call; the
        # children are kept here (as prometheus_client keeps them: one per name/outcome)
        series = self._operation_series.get((name, outcome))
        if series is None:
            series = self._operation_series[(name, outcome)] = self.operations.labels(name, outcome)
        series.inc()


_ID_SEGMENT = re.compile(r"/(?:[0-9]{3,}|[0-9a-fA-F-]{16,}|eg-[0-9a-f]+)(?=/|$)")


def endpoint_label(path: str) -> str:
    """/api/v1/orders/658441501843542 -> /api/v1/orders/:id (bounded label values)."""
    if path.startswith("/install/"):  # a capability token: never a label value
        return "/install/:token"
    return _ID_SEGMENT.sub("/:id", path)


class _Answered(Protocol):
    @property
    def status_code(self) -> int: ...


_Sent = TypeVar("_Sent", httpx.Request, RequestParts)
_Answer = TypeVar("_Answer", bound=_Answered)


class InstrumentedTransport(httpx.AsyncBaseTransport):
    """Wraps a provider's transport: counts, times and attributes every upstream call.

    Takes parts (`providers.parts`, the direct path) when the transport it wraps does;
    a call through `send_parts` is counted, timed, traced and logged as one through
    `handle_async_request`.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        provider: str,
        metrics: Metrics,
        tracing: Tracing | None = None,
    ) -> None:
        self._inner = inner
        self._provider = provider
        self._metrics = metrics
        self._tracing = tracing or Tracing()
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    @property
    def takes_parts(self) -> bool:
        return takes_parts(self._inner)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._observed(
            request, request.method, request.url.path, self._inner.handle_async_request
        )

    async def send_parts(self, request: RequestParts) -> ResponseParts:
        """Only when `takes_parts`: the wrapped transport's `send_parts`, observed."""
        inner = self._inner
        assert takes_parts(inner)
        return await self._observed(request, request.method, _path(request.url), inner.send_parts)

    async def _observed(
        self,
        request: _Sent,
        method: str,
        path: str,
        send: Callable[[_Sent], Awaitable[_Answer]],
    ) -> _Answer:
        stats = _stats.get()
        endpoint = endpoint_label(path)
        if stats is not None:
            stats.call_started()
        started = time.perf_counter()
        status = "error"
        try:
            if not self._tracing.enabled:
                # budget line "logging and metrics": no span, no attributes built
                response = await send(request)
                status = str(response.status_code)
                return response
            with self._tracing.span(
                f"{method} {endpoint}",
                client=True,
                attributes={
                    "esim.provider": self._provider,
                    "http.request.method": method,
                    "url.template": endpoint,
                    "server.address": _host(request),
                },
            ) as span:
                _inject(self._tracing, request)
                response = await send(request)
                status = str(response.status_code)
                if span is not None:
                    span.set_attribute("http.response.status_code", response.status_code)
                    if response.status_code >= 500:
                        from opentelemetry.trace import Status, StatusCode

                        span.set_status(Status(StatusCode.ERROR, status))
                return response
        finally:
            elapsed = time.perf_counter() - started
            if stats is not None:
                stats.call_ended()
            count, seconds = self._series(endpoint, status)
            count.inc()
            seconds.observe(elapsed)
            # checked first: structlog would build and filter the event on every call
            if _PROVIDER_LOG.isEnabledFor(logging.DEBUG):
                structlog.get_logger(_PROVIDER_LOG.name).debug(
                    "provider call",
                    provider=self._provider,
                    method=method,
                    endpoint=endpoint,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )

    def _series(self, endpoint: str, status: str) -> tuple[Any, Any]:
        # a label lookup takes prometheus_client's lock and builds a key on every call;
        # endpoints are templates and statuses few, so their children are kept here
        key = (endpoint, status)
        series = self._children.get(key)
        if series is None:
            series = (
                self._metrics.provider_calls.labels(self._provider, endpoint, status),
                self._metrics.provider_seconds.labels(self._provider, endpoint),
            )
            self._children[key] = series
        return series

    async def aclose(self) -> None:
        await self._inner.aclose()


#: an absolute URL's path: what follows the authority, up to a query or fragment
_URL_PATH = re.compile(r"[^:/?#]+://[^/?#]*([^?#]*)")


def _path(url: str) -> str:
    """`httpx.URL(url).path` without parsing the whole URL: percent-decoded, "/" if empty."""
    match = _URL_PATH.match(url)
    path = match.group(1) if match is not None else ""
    if not path:
        return "/"
    return unquote(path) if "%" in path else path


def _host(request: httpx.Request | RequestParts) -> str:
    if isinstance(request, httpx.Request):
        return request.url.host
    return httpx.URL(request.url).host  # tracing only: a span costs more than this parse


def _inject(tracing: Tracing, request: httpx.Request | RequestParts) -> None:
    """The trace context into the request's headers, as `httpx.Headers.__setitem__` puts
    it: in place of the first header of that name (others dropped), else at the end."""
    if isinstance(request, httpx.Request):
        tracing.inject(request.headers)
        return
    carrier: dict[str, str] = {}
    tracing.inject(carrier)
    headers = request.headers
    for name, value in carrier.items():
        key = name.lower()
        found = [i for i, (present, _) in enumerate(headers) if present == key]
        for i in reversed(found[1:]):
            del headers[i]
        if found:
            headers[found[0]] = (key, value)
        else:
            headers.append((key, value))


#: a request id a client may choose (else the gateway makes one)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestAccounting:
    """Request id, per-request accounting, one access log line, request metrics.

    `RequestMiddleware` puts it around any ASGI app, watching its `send`; `serve` puts it
    around an app that returns its whole answer (GraphQL over HTTP), which is sent here:
    no wrapped `send` per request.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.log = structlog.get_logger("esim_gateway.access")
        # the GraphQL route's series, looked up once: a label lookup takes a lock and
        # builds a key on every call (created on first use, so /metrics lists no
        # /graphql series before a request came)
        self._graphql_seconds: Any = None

    def begin(self, scope: Scope) -> tuple[str, RequestStats, contextvars.Token[Any]]:
        """The request's id (the client's, if well-formed), its stats, bound for logs."""
        incoming = b""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                incoming = value
                break
        text = incoming.decode("latin-1")
        # a fresh id is 32 random hex digits: os.urandom without building a UUID (~2 us)
        request_id = text if _REQUEST_ID.fullmatch(text) else os.urandom(16).hex()
        stats = RequestStats()
        token = _stats.set(stats)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return request_id, stats, token

    def end(
        self, scope: Scope, stats: RequestStats, token: contextvars.Token[Any], status: int
    ) -> None:
        """Metrics and the access line; the request's log context and stats unbound."""
        now = time.perf_counter()
        total = now - stats.started
        path = str(scope.get("path", ""))
        if path == "/graphql":
            series = self._graphql_seconds
            if series is None:
                series = self._graphql_seconds = self.metrics.request_seconds.labels(path)
            series.observe(total)
            self.metrics.overhead_seconds.observe(stats.overhead(now))
        else:
            self.metrics.request_seconds.labels(endpoint_label(path)).observe(total)
        if path != "/metrics" and _ACCESS_LOG.isEnabledFor(logging.INFO):
            fields = {
                "method": scope.get("method"),
                "path": path,
                "client": client_address(scope),
                "status": status,
                "ms": round(total * 1000, 2),
                "provider_calls": stats.calls,
                "provider_ms": round(stats.waiting * 1000, 2),
            }
            writer = _access_writer.writer
            if writer is not None and writer.applies():
                writer.write({**fields, "event": "request"})  # as structlog orders it
            else:
                self.log.info("request", **fields)
        structlog.contextvars.clear_contextvars()
        _stats.reset(token)

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        answer: Callable[[Scope, Receive], Awaitable[tuple[int, list[tuple[bytes, bytes]], bytes]]],
    ) -> None:
        """Answer an HTTP request with `answer`'s (status, headers, body), accounted for.
        An exception is a plain 500 (as Starlette's ServerErrorMiddleware answers), then
        raised on for the server to log."""
        request_id, stats, token = self.begin(scope)
        status = 500
        try:
            try:
                status, headers, body = await answer(scope, receive)
            except Exception:
                error = _SERVER_ERROR
                await _send(send, 500, list(error.raw_headers), bytes(error.body), request_id)
                raise
            await _send(send, status, headers, body, request_id)
        finally:
            self.end(scope, stats, token, status)


async def _send(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, request_id: str
) -> None:
    headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_SERVER_ERROR = PlainTextResponse("Internal Server Error", status_code=500)


class RequestMiddleware:
    """`RequestAccounting` around any ASGI app: its status read from, and the request id
    added to, the response it sends."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, accounting: RequestAccounting | None = None
    ) -> None:
        self.app = app
        self.accounting = accounting or RequestAccounting(metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, stats, token = self.accounting.begin(scope)
        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.accounting.end(scope, stats, token, status_code)
