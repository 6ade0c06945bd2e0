"""`ReqwestTransport`: an httpx transport over pyreqwest (Rust reqwest + hyper + rustls).

Budget line "httpx" (issue 12): a provider GET cost ~350-400 us of client CPU through
httpx-aiohttp's transport and ~90-110 us through pyreqwest itself. This transport keeps
httpx as the adapters' API and hands each request to one pyreqwest client, reading the
whole (small, JSON) answer before returning it: no streaming, a body cap.

Two entry points, one implementation: `send_parts` takes and returns plain parts (the
direct path of `providers.parts`, used by `ProviderClient`: no httpx.Request or
httpx.Response built), and `handle_async_request`, httpx's transport API, wraps it.

Timeouts (`request.extensions["timeout"]`, httpx.Timeout.as_dict()) map as follows,
because reqwest sets connect and pool timeouts per client and only a whole-request
deadline per request:

* ``connect`` -> the transport's `connect_timeout` (reqwest's connect timeout: TCP and TLS);
  a request's own value is not applied separately;
* ``read`` and ``write`` -> one deadline per request, ``max(read, write)`` seconds from the
  moment the transport is called, covering connect, sending and reading the whole answer.
  httpx would allow that long per read; a provider answer is one or two reads;
* ``pool`` -> the transport's `pool_timeout` (waiting for one of `max_connections`), also
  bounded by the request's deadline.

Failures become httpx exceptions on both entry points (without a `.request` from
`send_parts`), and which one matters: `providers/_http.py` treats ConnectError and
ConnectTimeout as "never sent, safe to resend". pyreqwest's own classes do not draw that
line: a server that closes or resets the connection after reading the request is a
pyreqwest ``ConnectError``, and no answer before the deadline is a ``ConnectTimeoutError``.
So "never sent" is decided from the cause chain instead: only a failure of hyper-util's
connector (``client error (Connect)``: DNS, TCP or TLS, before any byte of the request is
written) maps to ConnectError/ConnectTimeout. Hence:

    PyreqwestError
    ├── PoolTimeoutError ................................. httpx.PoolTimeout
    ├── connector failed ("client error (Connect)")
    │   ├── a timeout ..................................... httpx.ConnectTimeout
    │   └── anything else ................................. httpx.ConnectError
    ├── WriteTimeoutError ................................ httpx.WriteTimeout
    ├── any other timeout (the request deadline) ......... httpx.ReadTimeout
    ├── closed before an answer, unparsable answer,
    │   truncated body (DecodeError) ..................... httpx.RemoteProtocolError
    ├── WriteError ....................................... httpx.WriteError
    ├── any other network error .......................... httpx.ReadError
    └── anything else .................................... httpx.TransportError
    an answer larger than `max_body` ..................... ResponseTooLarge (httpx.ReadError)

A total deadline that expires while still connecting is reported as ReadTimeout: the
conservative side (the outcome of a purchase is then treated as unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
from pyreqwest import exceptions as rq
from pyreqwest.client import Client, ClientBuilder

from esim_gateway.providers.parts import RequestParts, ResponseParts

__all__ = ["DEFAULT_MAX_BODY", "ReqwestTransport", "ResponseTooLarge"]

#: provider answers are small JSON documents; the largest (a full catalog) is ~1 MB
DEFAULT_MAX_BODY = 10 * 1024 * 1024

#: hyper-util's error for a failed connector (Display of `Error { kind: Connect }`)
_CONNECTOR_FAILED = "client error (Connect)"
#: hyper's IncompleteMessage: the connection closed after the request, before an answer
_CLOSED_BEFORE_ANSWER = "connection closed before message completed"


class ResponseTooLarge(httpx.ReadError):
    """The answer's body exceeded the transport's `max_body`; it was not read further."""


class ReqwestTransport(httpx.AsyncBaseTransport):
    """One pyreqwest client (one connection pool) per transport; see the module docs.

    No cookies, no redirects (a 3xx is returned as is), no proxies from the environment
    (as the aiohttp transport before it). Compressed answers are decoded by reqwest,
    which then drops the content-encoding and content-length headers, so the httpx
    response's headers describe the body it carries.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 3.0,
        pool_timeout: float = 5.0,
        max_connections: int = 100,
        max_idle_connections: int = 100,
        idle_timeout: float = 5.0,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        # idle_timeout 5 s and 100 connections: what httpx.Limits gave the aiohttp
        # transport; a server's keep-alive shorter than ours races a reused connection
        self._max_body = max_body
        self._client: Client = (
            ClientBuilder()
            .follow_redirects(False)
            .referer(False)
            .no_proxy()
            .connect_timeout(timedelta(seconds=connect_timeout))
            .pool_timeout(timedelta(seconds=pool_timeout))
            .max_connections(max_connections)
            .pool_max_idle_per_host(max_idle_connections)
            .pool_idle_timeout(timedelta(seconds=idle_timeout))
            .build()
        )

    @property
    def takes_parts(self) -> bool:
        return True

    async def send_parts(self, request: RequestParts) -> ResponseParts:
        """The direct path (`providers.parts`): one call, its answer read whole. Failures
        are the httpx exceptions of the module docs, without a `.request`."""
        builder = self._client.request(request.method, request.url).headers(request.headers)
        if request.body:
            builder = builder.body_bytes(request.body)
        deadline = _deadline(request.timeout)
        if deadline is not None:
            builder = builder.timeout(deadline)
        try:
            # reading up to max_body + 1 before returning the head: a small answer is
            # then in memory in one piece, and a huge one costs at most that much
            async with builder.streamed_read_buffer_limit(
                self._max_body + 1
            ).build_streamed() as answer:
                body = await self._read(answer)
                # the header map outlives the answer: no copy into a list
                return ResponseParts(answer.status, answer.headers, body, answer.version)
        except rq.PyreqwestError as exc:
            raise _translate(exc) from exc

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            content = request.content
        except httpx.RequestNotRead:  # a streamed body: provider bodies are small, read it
            content = await request.aread()
        timeout = request.extensions.get("timeout")
        parts = RequestParts(
            request.method,
            str(request.url),
            request.headers.multi_items(),
            content,
            timeout if isinstance(timeout, dict) else {},
        )
        try:
            answer = await self.send_parts(parts)
        except httpx.TransportError as exc:
            exc.request = request
            raise
        response = httpx.Response(
            answer.status_code,
            headers=list(answer.headers.items()),
            stream=httpx.ByteStream(answer.content),
            request=request,
            extensions={"http_version": answer.http_version.encode("ascii")},
        )
        response.read()  # callers get a response that is already read, as documented
        return response

    async def _read(self, answer: Any) -> bytes:
        declared = answer.headers.get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self._max_body:
                raise self._too_large()
            return bytes(await answer.body_reader.bytes())
        chunks: list[bytes] = []
        size = 0
        reader = answer.body_reader
        while (chunk := await reader.read_chunk()) is not None:
            size += len(chunk)
            if size > self._max_body:
                raise self._too_large()
            chunks.append(bytes(chunk))
        return b"".join(chunks)

    def _too_large(self) -> ResponseTooLarge:
        return ResponseTooLarge(f"the answer's body is larger than {self._max_body} bytes")

    async def aclose(self) -> None:
        await self._client.close()


def _deadline(timeout: Mapping[str, float | None]) -> timedelta | None:
    limits = [v for k in ("read", "write") if (v := timeout.get(k)) is not None]
    return timedelta(seconds=max(limits)) if limits else None


def _causes(exc: rq.PyreqwestError) -> list[str]:
    details = getattr(exc, "details", None) or {}
    return [str(cause.get("message", "")) for cause in details.get("causes") or []]


def _translate(exc: rq.PyreqwestError) -> httpx.TransportError:
    """The httpx exception for a pyreqwest failure (table in the module docs). Messages
    carry the root cause (an OS or protocol error), never the URL or headers."""
    causes = _causes(exc)
    root = causes[-1] if causes else exc.message
    error: type[httpx.TransportError]
    if isinstance(exc, rq.PoolTimeoutError):
        error, what = httpx.PoolTimeout, "no pooled connection was free in time"
    elif _CONNECTOR_FAILED in causes:
        timed_out = isinstance(exc, rq.RequestTimeoutError)
        error = httpx.ConnectTimeout if timed_out else httpx.ConnectError
        what = "could not connect"
    elif isinstance(exc, rq.WriteTimeoutError):
        error, what = httpx.WriteTimeout, "sending the request timed out"
    elif isinstance(exc, rq.RequestTimeoutError):
        error, what = httpx.ReadTimeout, "no complete answer before the deadline"
    elif _CLOSED_BEFORE_ANSWER in causes:
        error, what = httpx.RemoteProtocolError, "the server closed the connection unanswered"
    elif isinstance(exc, rq.DecodeError):
        error, what = httpx.RemoteProtocolError, "the answer was cut short or is not HTTP"
    elif isinstance(exc, rq.WriteError):
        error, what = httpx.WriteError, "sending the request failed"
    elif isinstance(exc, rq.NetworkError):
        error, what = httpx.ReadError, "the connection failed"
    else:
        error, what = httpx.TransportError, "the request failed"
    return error(f"{what}: {root}")
