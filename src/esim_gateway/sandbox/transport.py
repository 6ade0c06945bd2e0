"""An in-process transport to a simulator that behaves like a network one.

`httpx.ASGITransport` ignores timeouts and lets app exceptions escape. Adapters under test
(and the gateway in sandbox mode) need the same failures they would see over a socket:
a hang becomes `httpx.ReadTimeout` after the request's read timeout, and a connection the
simulator drops becomes `httpx.RemoteProtocolError`.
"""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import ASGIApp

from esim_gateway.sandbox._kit import ConnectionDropped

__all__ = ["SandboxTransport"]


class SandboxTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        read_timeout = timeouts.get("read") if isinstance(timeouts, dict) else None
        try:
            if read_timeout is None:
                response = await self._inner.handle_async_request(request)
            else:
                response = await asyncio.wait_for(
                    self._inner.handle_async_request(request), timeout=read_timeout
                )
        except TimeoutError as exc:
            raise httpx.ReadTimeout("sandbox did not answer in time", request=request) from exc
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body",
                request=request,
            ) from exc
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
