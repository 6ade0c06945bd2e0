"""Request accounting: the request id, one access log line and the request metrics."""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from esim_gateway.ops.forwarded import client_address
from esim_gateway.ops.logging import _access_writer
from esim_gateway.ops.metrics import Metrics, RequestStats, _stats, endpoint_label

__all__ = ["RequestAccounting", "RequestMiddleware"]

_ACCESS_LOG = logging.getLogger("esim_gateway.access")

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
        failure: tuple[list[tuple[bytes, bytes]], bytes] | None = None,
    ) -> None:
        """Answer an HTTP request with `answer`'s (status, headers, body), accounted for.
        An exception is a 500 with `failure`'s (headers, body), by default a plain one
        (as Starlette's ServerErrorMiddleware answers), then raised on for the server to
        log."""
        request_id, stats, token = self.begin(scope)
        status = 500
        try:
            try:
                status, headers, body = await answer(scope, receive)
            except Exception:
                headers, body = failure or (_SERVER_ERROR.raw_headers, bytes(_SERVER_ERROR.body))
                await _send(send, 500, list(headers), bytes(body), request_id)
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
