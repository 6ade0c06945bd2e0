"""Every upstream call counted, timed, traced and attributed to its provider."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote

import httpx
import structlog

from esim_gateway.ops.metrics import Metrics, _stats, endpoint_label
from esim_gateway.ops.tracing import Tracing
from esim_gateway.providers.parts import RequestParts, ResponseParts, takes_parts

__all__ = ["InstrumentedTransport"]

_PROVIDER_LOG = logging.getLogger("esim_gateway.provider")


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
