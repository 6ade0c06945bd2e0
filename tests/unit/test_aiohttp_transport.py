"""The aiohttp option's errors: httpx-aiohttp calls a server that closes or resets the
connection after reading the request a ConnectTimeout, which `_http.py` would take as
"never sent" and resend. SentAwareAiohttpTransport keeps that name for connect failures."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable

import aiohttp
import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from esim_gateway.errors import ProviderUnavailable
from esim_gateway.providers.aiohttp_transport import SentAwareAiohttpTransport, _CheckedStream
from tests.unit.test_reqwest_transport import (
    close,
    closed_port,
    provider_call,
    raw_server,
    request,
    reset,
)


def cut_after_head(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
    conn.shutdown(socket.SHUT_RDWR)
    conn.close()


@pytest.mark.parametrize("misbehave", [close, reset], ids=["closed unanswered", "reset"])
async def test_a_connection_lost_after_the_request_is_not_a_connect_error(
    misbehave: Callable[[socket.socket], None],
) -> None:
    with raw_server(misbehave) as url:
        plain = AiohttpTransport()
        try:  # the library's own mapping, which this module exists for
            with pytest.raises(httpx.ConnectTimeout):
                await plain.handle_async_request(request("POST", url, 1.0, content=b"{}"))
        finally:
            await plain.aclose()
        with pytest.raises(ProviderUnavailable) as lost:
            await provider_call(url, SentAwareAiohttpTransport(), 1.0)
        assert lost.value.sent is True


async def test_a_connection_lost_while_reading_the_body_is_not_a_connect_error() -> None:
    class Lost(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"{"
            try:
                raise aiohttp.ServerDisconnectedError()
            except aiohttp.ServerDisconnectedError as exc:  # as httpx-aiohttp maps it
                raise httpx.ConnectTimeout(str(exc)) from exc

    response = httpx.Response(200, stream=_CheckedStream(Lost()))
    with pytest.raises(httpx.ReadError):
        await response.aread()


async def test_a_body_cut_short_is_not_a_connect_error() -> None:
    with raw_server(cut_after_head) as url:
        with pytest.raises(ProviderUnavailable) as lost:
            await provider_call(url, SentAwareAiohttpTransport(), 1.0)
        assert lost.value.sent is True


async def test_a_closed_port_is_still_a_connect_error_never_sent() -> None:
    with pytest.raises(ProviderUnavailable) as refused:
        await provider_call(closed_port(), SentAwareAiohttpTransport(), 1.0)
    assert refused.value.sent is False
