"""ProviderClient: what reaches its transport on the direct path (headers, URL, timeout),
what the caller gets back, and that anything asking for httpx's pipeline still gets it."""

from __future__ import annotations

import logging

import httpx
import pytest

from esim_gateway.app import _client, _transport
from esim_gateway.config import HttpTransport, Settings
from esim_gateway.providers._http import ProviderClient, send_json
from esim_gateway.providers.reqwest import ReqwestTransport


class Recorder(httpx.AsyncBaseTransport):
    """Answers every request from `answer` and keeps what it was handed."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.headers = headers or {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        # a streamed, unread body: the client must read it
        return httpx.Response(
            self.status, headers=self.headers, stream=httpx.ByteStream(b'{"ok":true}')
        )


def client(transport: httpx.AsyncBaseTransport) -> ProviderClient:
    return ProviderClient(
        base_url="http://provider.test/v1",
        transport=transport,
        timeout=httpx.Timeout(5.0, connect=3.0),
        headers={"user-agent": "esim-gateway/0.1", "accept": "application/json"},
    )


def ignore(status: int, body: object, text: str) -> tuple[str, str]:
    return "", text


async def test_send_json_merges_headers_onto_the_base_url_with_the_calls_timeout() -> None:
    recorder = Recorder()
    async with client(recorder) as http:
        answer = await send_json(
            http,
            "roamify",
            "POST",
            "/orders",
            params={"expand": True},
            body=b"{}",
            headers={"authorization": "Bearer t", "accept": "*/*"},
            timeout=httpx.Timeout(15.0, connect=2.0),
            parse_error=ignore,
        )
    assert answer == {"ok": True}
    (sent,) = recorder.requests
    assert str(sent.url) == "http://provider.test/v1/orders?expand=true"
    assert sent.headers["user-agent"] == "esim-gateway/0.1"  # the client's default
    assert sent.headers["authorization"] == "Bearer t"  # the call's
    assert sent.headers.get_list("accept") == ["*/*"]  # the call's wins, once
    assert sent.headers["content-type"] == "application/json"
    assert sent.content == b"{}"
    assert sent.extensions["timeout"] == {"connect": 2.0, "read": 15.0, "write": 15.0, "pool": 15.0}


async def test_without_a_timeout_the_clients_own_reaches_the_transport() -> None:
    recorder = Recorder()
    async with client(recorder) as http:
        await send_json(http, "roamify", "GET", "/balance", parse_error=ignore)
        await http.get("/balance")  # httpx's own request building, same path
    assert [r.extensions["timeout"] for r in recorder.requests] == [
        {"connect": 3.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    ] * 2


async def test_the_direct_path_returns_a_read_response_that_knows_its_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder(status=429, headers={"retry-after": "3"})
    caplog.set_level(logging.INFO, logger="httpx")
    async with client(recorder) as http:
        sent = http.build_request("GET", "/orders/1")
        response = await http.send(sent)
    assert recorder.requests == [sent]  # handed over as is
    assert response.request is sent and response.content == b'{"ok":true}'
    assert response.headers["retry-after"] == "3" and response.status_code == 429
    assert response.elapsed.total_seconds() >= 0
    # httpx's access line is still there for those who switch it on
    assert [r.getMessage() for r in caplog.records if r.name == "httpx"] == [
        'HTTP Request: GET http://provider.test/v1/orders/1 "HTTP/1.1 429 Too Many Requests"'
    ]


async def test_auth_hooks_and_redirects_still_go_through_httpx() -> None:
    recorder = Recorder()
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(str(request.url))

    async with client(recorder) as http:
        await http.get("/a", auth=("user", "secret"))
        http.event_hooks = {"request": [hook], "response": []}
        await http.get("/b")
        http.event_hooks = {"request": [], "response": []}
        credentials = httpx.Request("GET", "http://user:pw@provider.test/c")
        await http.send(credentials)
    assert recorder.requests[0].headers["authorization"].startswith("Basic ")
    assert seen == ["http://provider.test/v1/b"]
    assert recorder.requests[2].headers["authorization"].startswith("Basic ")

    redirecting = Recorder(status=302, headers={"location": "http://provider.test/v1/z"})
    async with client(redirecting) as http:
        with pytest.raises(httpx.TooManyRedirects):
            await http.get("/r", follow_redirects=True)
        # the default: a redirect is returned, not followed
        assert (await http.get("/r")).status_code == 302


async def test_a_closed_client_refuses_to_send() -> None:
    http = client(Recorder())
    await http.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await http.get("/a")


async def test_the_default_transport_is_reqwest_behind_a_provider_client() -> None:
    settings = Settings.from_mapping({})
    assert settings.http_transport is HttpTransport.REQWEST
    assert Settings.from_mapping({"ESIM_GATEWAY_HTTP_TRANSPORT": "aiohttp"}).http_transport is (
        HttpTransport.AIOHTTP
    )
    transport = _transport(settings)
    assert isinstance(transport, ReqwestTransport)
    async with _client("http://provider.test", transport) as http:
        assert isinstance(http, ProviderClient)
        assert http.follow_redirects is False
