"""ReqwestTransport against real loopback servers: what goes out, what comes back, and
which httpx exception each failure becomes, through both entry points (httpx's
`handle_async_request` and the direct path's `send_parts`). The last matters for
exactly-once purchases: only a request that provably never left may be a ConnectError
(`sent=False`)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Literal

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from esim_gateway.errors import ProviderUnavailable
from esim_gateway.providers._http import ProviderClient, send_json
from esim_gateway.providers.parts import takes_parts
from esim_gateway.providers.reqwest import ReqwestTransport, ResponseTooLarge
from tests.conftest import EntryPoints, parts_of, serve_in_thread

BIG = b"x" * (3 * 1024 * 1024)


async def echo(request: Request) -> Response:
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": [[k.decode(), v.decode()] for k, v in request.headers.raw],
            "body": (await request.body()).decode(),
            "client_port": request.client.port if request.client else None,
        },
        headers={"x-answer": "42", "retry-after": "7"},
    )


async def unavailable(request: Request) -> Response:
    return JSONResponse({"code": "DOWN", "message": "try later"}, status_code=503)


async def chunked(request: Request) -> Response:
    async def parts() -> AsyncIterator[bytes]:
        for n in range(5):
            yield f"part{n};".encode() * 4

    return StreamingResponse(parts(), media_type="text/plain")


async def big(request: Request) -> Response:
    return Response(BIG, media_type="application/octet-stream")


async def compressed(request: Request) -> Response:
    return Response(
        gzip.compress(b'{"zipped":true}'),
        media_type="application/json",
        headers={"content-encoding": "gzip"},
    )


async def redirect(request: Request) -> Response:
    return Response(status_code=302, headers={"location": "/echo"})


APP = Starlette(
    routes=[
        Route("/echo", echo, methods=["GET", "POST"]),
        Route("/unavailable", unavailable),
        Route("/chunked", chunked),
        Route("/big", big),
        Route("/gzip", compressed),
        Route("/redirect", redirect),
    ]
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_in_thread(APP, lifespan="off") as url:
        yield url


@pytest.fixture
async def transport() -> AsyncIterator[ReqwestTransport]:
    transport = ReqwestTransport(connect_timeout=1.0)
    yield transport
    await transport.aclose()


def request(
    method: str,
    url: str,
    timeout: float = 5.0,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Request:
    return httpx.Request(
        method,
        url,
        content=content,
        headers=headers,
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )


Entry = Literal["httpx", "parts"]
#: every failure below is checked through both entry points
ENTRIES = pytest.mark.parametrize("entry", ["httpx", "parts"])


async def send_via(entry: Entry, transport: ReqwestTransport, request: httpx.Request) -> int:
    """`request` through one entry point; the answer's status. A failure through httpx's
    carries the request, as httpx's own transports' do; the direct path's has none."""
    if entry == "parts":
        try:
            return (await transport.send_parts(parts_of(request))).status_code
        except httpx.TransportError as exc:
            with pytest.raises(RuntimeError):
                exc.request  # noqa: B018 - httpx raises when none was given
            raise
    try:
        return (await transport.handle_async_request(request)).status_code
    except httpx.TransportError as exc:
        assert exc.request is request
        raise


# -- what goes out and comes back --------------------------------------------------------


async def test_a_get_sends_its_query_and_headers_and_returns_status_headers_and_body(
    server: str, transport: ReqwestTransport
) -> None:
    sent = request("GET", f"{server}/echo?id=123&q=a+b", headers={"authorization": "Bearer t"})
    response = await transport.handle_async_request(sent)
    assert response.status_code == 200
    assert response.request is sent
    assert response.headers["x-answer"] == "42" and response.headers["retry-after"] == "7"
    assert response.http_version == "HTTP/1.1"
    answer = response.json()  # readable without awaiting anything: the body is read
    assert (answer["method"], answer["path"], answer["query"]) == ("GET", "/echo", "id=123&q=a+b")
    assert ["authorization", "Bearer t"] in answer["headers"]


async def test_a_post_sends_its_json_body_with_its_length(
    server: str, transport: ReqwestTransport
) -> None:
    body = orjson.dumps({"items": [{"packageId": "p-1", "quantity": 2}]})
    sent = request(
        "POST", f"{server}/echo", content=body, headers={"content-type": "application/json"}
    )
    answer = (await transport.handle_async_request(sent)).json()
    assert answer["method"] == "POST" and answer["body"].encode() == body
    headers = dict(answer["headers"])
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    assert [k for k, _ in answer["headers"]].count("content-length") == 1


async def test_a_non_2xx_answer_is_returned_with_its_body(
    server: str, transport: ReqwestTransport
) -> None:
    response = await transport.handle_async_request(request("GET", f"{server}/unavailable"))
    assert response.status_code == 503
    assert response.json() == {"code": "DOWN", "message": "try later"}


async def test_a_chunked_answer_is_read_whole(server: str, transport: ReqwestTransport) -> None:
    response = await transport.handle_async_request(request("GET", f"{server}/chunked"))
    assert response.content == b"".join(f"part{n};".encode() * 4 for n in range(5))
    assert response.headers["transfer-encoding"] == "chunked"


async def test_a_large_body_arrives_intact(server: str, transport: ReqwestTransport) -> None:
    response = await transport.handle_async_request(request("GET", f"{server}/big"))
    assert response.content == BIG


@ENTRIES
@pytest.mark.parametrize("path", ["/big", "/chunked"], ids=["content-length", "chunked"])
async def test_a_body_over_the_cap_fails_as_a_read_error(
    server: str, path: str, entry: Entry
) -> None:
    transport = ReqwestTransport(max_body=40)  # /unavailable's answer fits
    try:
        with pytest.raises(ResponseTooLarge, match="larger than 40 bytes"):
            await send_via(entry, transport, request("GET", f"{server}{path}"))
        # the connection is not left half read: the next call works
        ok = await transport.handle_async_request(request("GET", f"{server}/unavailable"))
        assert ok.status_code == 503
    finally:
        await transport.aclose()
    assert issubclass(ResponseTooLarge, httpx.ReadError)


async def test_a_gzip_answer_is_decoded_and_its_headers_say_so(
    server: str, transport: ReqwestTransport
) -> None:
    sent = request("GET", f"{server}/gzip", headers={"accept-encoding": "gzip"})
    response = await transport.handle_async_request(sent)
    assert response.json() == {"zipped": True}
    assert "content-encoding" not in response.headers


async def test_a_redirect_is_returned_not_followed(
    server: str, transport: ReqwestTransport
) -> None:
    response = await transport.handle_async_request(request("GET", f"{server}/redirect"))
    assert response.status_code == 302 and response.headers["location"] == "/echo"


async def test_connections_are_kept_alive_and_reused(
    server: str, transport: ReqwestTransport
) -> None:
    ports = set()
    for _ in range(20):
        response = await transport.handle_async_request(request("GET", f"{server}/echo"))
        ports.add(response.json()["client_port"])
    assert len(ports) == 1


async def test_send_parts_sends_and_answers_what_handle_async_request_does(
    server: str, transport: ReqwestTransport
) -> None:
    body = orjson.dumps({"items": [{"packageId": "p-1", "quantity": 2}]})
    sent = request(
        "POST",
        f"{server}/echo?id=123&q=a+b",
        content=body,
        headers={"authorization": "Bearer t", "content-type": "application/json"},
    )
    through_httpx = await transport.handle_async_request(sent)
    through_parts = await transport.send_parts(parts_of(sent))
    assert through_parts.status_code == through_httpx.status_code == 200
    assert through_parts.http_version == through_httpx.http_version == "HTTP/1.1"
    received = [orjson.loads(through_parts.content), through_httpx.json()]
    for echoed in received:
        echoed.pop("client_port")
    assert received[0] == received[1]
    assert received[0]["body"].encode() == body
    # the same headers in the same order (the date may have ticked in between)
    answered = [list(through_parts.headers.items()), through_httpx.headers.multi_items()]
    assert [[h for h in headers if h[0] != "date"] for headers in answered] == [
        [h for h in answered[1] if h[0] != "date"]
    ] * 2
    assert through_parts.headers.get("X-Answer") == "42"  # any case, as httpx.Headers
    assert through_parts.headers.get("x-missing") is None


# -- failures ---------------------------------------------------------------------------


@contextlib.contextmanager
def raw_server(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server that reads one request head per connection, then misbehaves."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                data += chunk
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def close(conn: socket.socket) -> None:
    conn.close()


def reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def stall(conn: socket.socket) -> None:
    time.sleep(3)
    conn.close()


def garbage(conn: socket.socket) -> None:
    conn.sendall(b"NOT HTTP\r\n\r\n")
    conn.close()


def cut_short(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{}")
    conn.close()


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def provider_call(
    url: str, transport: httpx.AsyncBaseTransport, timeout: float, entry: Entry = "parts"
) -> None:
    """A purchase through `send_json`, over the direct path if the transport takes parts
    and `entry` is "parts", else over httpx's objects; the transport is closed after it."""
    counted = EntryPoints(transport, parts=entry == "parts")
    try:
        async with ProviderClient(
            base_url=url, transport=counted, timeout=httpx.Timeout(timeout)
        ) as client:
            await send_json(
                client, "roamify", "POST", "/api/esim/order", parse_error=lambda *_: ("", "")
            )
    finally:
        assert counted.used == [entry if takes_parts(transport) else "httpx"]


@ENTRIES
async def test_a_closed_port_is_a_connect_error_and_never_sent(
    transport: ReqwestTransport, entry: Entry
) -> None:
    url = closed_port()
    with pytest.raises(httpx.ConnectError, match="refused"):
        await send_via(entry, transport, request("GET", url))
    with pytest.raises(ProviderUnavailable) as failed:
        await provider_call(url, ReqwestTransport(), 1.0, entry)
    assert failed.value.sent is False


@ENTRIES
async def test_a_listener_that_never_accepts_is_a_connect_timeout(entry: Entry) -> None:
    # a full accept queue: the kernel drops the SYN and the connect times out
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(listener.getsockname())
            fillers.append(filler)
        transport = ReqwestTransport(connect_timeout=0.3)
        try:
            url = "http://{}:{}".format(*listener.getsockname())
            with pytest.raises(httpx.ConnectTimeout):
                await send_via(entry, transport, request("GET", url))
            with pytest.raises(ProviderUnavailable) as failed:
                await provider_call(url, ReqwestTransport(connect_timeout=0.3), 2.0, entry)
            assert failed.value.sent is False
        finally:
            await transport.aclose()
            for filler in fillers:
                filler.close()


@ENTRIES
@pytest.mark.parametrize(
    ("misbehave", "expected"),
    [
        (close, httpx.RemoteProtocolError),
        (reset, httpx.ReadError),
        (stall, httpx.ReadTimeout),
        (garbage, httpx.RemoteProtocolError),
        (cut_short, httpx.RemoteProtocolError),
    ],
    ids=["closed unanswered", "reset", "stalled", "not HTTP", "body cut short"],
)
async def test_a_failure_after_the_request_left_is_never_a_connect_error(
    misbehave: Callable[[socket.socket], None], expected: type[httpx.TransportError], entry: Entry
) -> None:
    # pyreqwest itself calls the first three ConnectError / ConnectTimeoutError: taken at
    # its word, a purchase the provider received would count as never sent and be resent
    with raw_server(misbehave) as url:
        transport = ReqwestTransport()
        try:
            with pytest.raises(expected) as failed:
                await send_via(entry, transport, request("POST", url, 0.5, content=b"{}"))
            assert not isinstance(failed.value, httpx.ConnectError | httpx.ConnectTimeout)
            assert "127.0.0.1" not in str(failed.value)  # no URL in the message
        finally:
            await transport.aclose()
        with pytest.raises(ProviderUnavailable) as unavailable:
            await provider_call(url, ReqwestTransport(), 0.5, entry)
        assert unavailable.value.sent is True
        assert isinstance(unavailable.value.__cause__, expected)


@ENTRIES
async def test_a_stall_is_a_read_timeout_after_the_calls_own_timeout(
    transport: ReqwestTransport, entry: Entry
) -> None:
    with raw_server(stall) as url:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await send_via(entry, transport, request("GET", url, 0.3))
        assert 0.25 < time.monotonic() - started < 2.5
        with pytest.raises(ProviderUnavailable, match=r"did not answer .* in time"):
            await provider_call(url, ReqwestTransport(), 0.3, entry)


@ENTRIES
async def test_waiting_too_long_for_a_pooled_connection_is_a_pool_timeout_never_sent(
    entry: Entry,
) -> None:
    transport = ReqwestTransport(max_connections=1, pool_timeout=0.2)
    counted = EntryPoints(transport, parts=entry == "parts")
    with raw_server(stall) as url:
        try:
            async with ProviderClient(
                base_url=url, transport=counted, timeout=httpx.Timeout(2.0)
            ) as client:
                first = asyncio.ensure_future(client.get("/slow"))
                await asyncio.sleep(0.1)
                with pytest.raises(httpx.PoolTimeout):
                    await send_via(entry, transport, request("GET", url, 2.0))
                with pytest.raises(ProviderUnavailable) as waited:
                    await send_json(client, "roamify", "GET", "/x", parse_error=lambda *_: ("", ""))
                assert waited.value.sent is False
                assert counted.used == ["httpx", entry]  # client.get: always httpx's
                first.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await first
        finally:
            await transport.aclose()
