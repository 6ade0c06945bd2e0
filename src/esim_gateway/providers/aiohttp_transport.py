"""httpx-aiohttp's transport (`ESIM_GATEWAY_HTTP_TRANSPORT=aiohttp`), with its
"never sent" errors made trustworthy.

httpx-aiohttp maps every `aiohttp.ClientConnectionError` to httpx.ConnectTimeout,
including `ServerDisconnectedError` (the provider closed the connection after reading
the request) and `ClientOSError` (a reset while waiting for or reading the answer).
`providers/_http.py` takes ConnectError/ConnectTimeout to mean "never sent, safe to
resend", so a purchase the provider received could be sent twice. Here a ConnectError or
ConnectTimeout stands only when aiohttp's connector failed (`ClientConnectorError`) or
timed out getting a connection (`ConnectionTimeoutError`: pool wait and connect); any
other becomes httpx.ReadError, whether raised by the request or by reading its body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["SentAwareAiohttpTransport"]

_NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def _checked(
    exc: httpx.ConnectError | httpx.ConnectTimeout, request: httpx.Request | None = None
) -> httpx.TransportError:
    if isinstance(exc.__cause__, _NEVER_SENT):
        return exc
    return httpx.ReadError(f"the connection failed after the request: {exc}", request=request)


class _CheckedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            checked = _checked(exc)
            if checked is exc:
                raise
            raise checked from exc.__cause__

    async def aclose(self) -> None:
        await self._inner.aclose()


class SentAwareAiohttpTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response: httpx.Response = await super().handle_async_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            checked = _checked(exc, request)
            if checked is exc:
                raise
            raise checked from exc.__cause__
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CheckedStream(response.stream)
        return response
