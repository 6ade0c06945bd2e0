"""ProviderClient: what reaches its transport on the direct paths (straight to the
transport, or as parts: headers, URL, timeout), what the caller gets back, and that
anything asking for httpx's pipeline still gets it."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from esim_gateway.app import _client, _transport
from esim_gateway.config import HttpTransport, Settings
from esim_gateway.errors import NotFound, ProviderError, ProviderUnavailable
from esim_gateway.ops.metrics import Metrics, RequestStats, _stats
from esim_gateway.ops.tracing import Tracing
from esim_gateway.providers._http import ProviderClient, _absolute_url, send_json
from esim_gateway.providers.instrumented import InstrumentedTransport
from esim_gateway.providers.parts import RequestParts, ResponseParts
from esim_gateway.providers.reqwest import ReqwestTransport
from tests.conftest import EntryPoints, parts_of, written_lines


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
    transport = _transport(settings)
    assert isinstance(transport, ReqwestTransport)
    async with _client("http://provider.test", transport) as http:
        assert isinstance(http, ProviderClient)
        assert http.follow_redirects is False


# -- the direct path: a call as parts ----------------------------------------------------

Entry = Literal["httpx", "parts"]
ENTRIES = pytest.mark.parametrize("entry", ["httpx", "parts"])


class PartsRecorder(httpx.AsyncBaseTransport):
    """Takes parts; answers both entry points alike and keeps what each call sent, as
    parts (an httpx.Request as the parts it would be)."""

    def __init__(
        self,
        status: int = 200,
        headers: dict[str, str] | None = None,
        body: bytes = b'{"ok":true}',
        fail: httpx.TransportError | None = None,
    ) -> None:
        self.sent: list[RequestParts] = []
        self.status, self.headers, self.body, self.fail = status, headers or {}, body, fail

    @property
    def takes_parts(self) -> bool:
        return True

    async def send_parts(self, request: RequestParts) -> ResponseParts:
        self.sent.append(request)
        if self.fail is not None:
            raise self.fail
        return ResponseParts(self.status, httpx.Headers(self.headers), self.body)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(parts_of(request))
        if self.fail is not None:
            raise self.fail
        return httpx.Response(self.status, headers=self.headers, content=self.body)


def over(entry: Entry, inner: httpx.AsyncBaseTransport) -> tuple[ProviderClient, EntryPoints]:
    """A client whose transport takes parts (`entry="parts"`) or not, over `inner`."""
    counted = EntryPoints(inner, parts=entry == "parts")
    return client(counted), counted


CALLS = pytest.mark.parametrize(
    ("method", "body", "headers"),
    [
        ("GET", None, {"authorization": "Bearer t"}),
        ("POST", b'{"items":[]}', {"authorization": "Bearer t", "accept": "*/*"}),
        ("POST", None, {"x-signature": "abc", "User-Agent": "theirs"}),
    ],
    ids=["get", "post with a body", "post without a body"],
)


@CALLS
async def test_send_json_hands_a_transport_that_takes_parts_what_httpx_would_send(
    method: str, body: bytes | None, headers: dict[str, str]
) -> None:
    sent: dict[str, list[RequestParts]] = {}
    for entry in ("httpx", "parts"):
        recorder = PartsRecorder()
        http, counted = over(entry, recorder)
        async with http:
            answer = await send_json(
                http,
                "roamify",
                method,
                "/api/esim/order",
                params={"orderId": "658441501843542", "q": "a b&c"},
                body=body,
                headers=headers,
                timeout=httpx.Timeout(15.0, connect=2.0),
                parse_error=ignore,
            )
        assert answer == {"ok": True}
        assert counted.used == [entry]
        sent[entry] = recorder.sent
    assert sent["parts"] == sent["httpx"]  # same URL, header list (order too), body, timeout
    (parts,) = sent["parts"]
    assert parts.url == "http://provider.test/v1/api/esim/order?orderId=658441501843542&q=a+b%26c"
    assert ("host", "provider.test") in parts.headers


HEADER_NAMES = st.sampled_from(
    ["accept", "Accept", "user-agent", "host", "Content-Length", "transfer-encoding", "x-a"]
)
HEADERS = st.dictionaries(
    HEADER_NAMES,
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=6),
    max_size=4,
)


@given(
    client_headers=HEADERS,
    call_headers=HEADERS,
    method=st.sampled_from(["GET", "post", "PUT", "DELETE"]),
    body=st.none() | st.binary(max_size=3),
)
def test_the_header_list_sent_as_parts_is_httpxs_in_httpxs_order(
    client_headers: dict[str, str],
    call_headers: dict[str, str],
    method: str,
    body: bytes | None,
) -> None:
    http = ProviderClient(
        base_url="https://API.example.com:443/v1/",
        transport=PartsRecorder(),
        timeout=httpx.Timeout(5.0),
        headers=client_headers,
    )
    url = _absolute_url(http, "/orders/1", {"q": "x"})
    timeout = httpx.Timeout(15.0, connect=2.0)
    parts = http._request_parts(method, url, content=body, headers=call_headers, timeout=timeout)
    assert parts is not None
    assert parts == parts_of(
        http.build_provider_request(
            method, url, content=body, headers=call_headers, timeout=timeout
        )
    )


PLAIN_PATHS = st.text(st.sampled_from("abcXYZ019-._~/"), max_size=12).filter(
    lambda p: "/." not in f"/{p}"
)


@given(
    path=st.text(max_size=12) | PLAIN_PATHS,
    params=st.none() | st.dictionaries(st.text(min_size=1, max_size=6), st.text(max_size=6)),
)
def test_a_url_goes_as_parts_only_as_httpx_would_write_it(
    path: str, params: dict[str, str] | None
) -> None:
    http = client(PartsRecorder())
    url = _absolute_url(http, f"/{path}", params)
    parts = http._request_parts("GET", url, content=None, headers={}, timeout=None)
    if parts is not None:
        assert parts.url == str(httpx.URL(url)) == url
    # what the adapters send (a plain path, any query values) always goes as parts
    if all(c.isascii() and (c.isalnum() or c in "-._~/") for c in path) and "/." not in f"/{path}":
        assert parts is not None


async def _no_hook(message: httpx.Request | httpx.Response) -> None:
    return None


@pytest.mark.parametrize(
    "asks",
    ["auth", "a request hook", "a response hook", "redirects", "a URL httpx rewrites", "no base"],
)
async def test_what_asks_for_httpxs_pipeline_never_goes_as_parts(asks: str) -> None:
    recorder = PartsRecorder()
    counted = EntryPoints(recorder)
    url = "http://provider.test/v1/a"
    async with client(counted) as http:
        if asks == "auth":
            http.auth = ("user", "secret")
        elif asks == "a request hook":
            http.event_hooks = {"request": [_no_hook], "response": []}
        elif asks == "a response hook":
            http.event_hooks = {"request": [], "response": [_no_hook]}
        elif asks == "redirects":
            http.follow_redirects = True
        elif asks == "a URL httpx rewrites":
            url = "http://provider.test/v1/a b/./é"
        else:  # not under the client's base URL
            url = "http://elsewhere.test/v1/a"
        answer = await http.fetch("GET", url, content=None, headers={}, timeout=None)
    assert answer.status_code == 200 and counted.used == ["httpx"]
    (sent,) = recorder.sent
    assert sent.url == str(httpx.URL(url))
    if asks == "auth":
        assert dict(sent.headers)["authorization"].startswith("Basic ")


async def test_a_header_httpx_refuses_and_a_closed_client_fail_as_with_httpx() -> None:
    counted = EntryPoints(PartsRecorder())
    http = client(counted)
    url = "http://provider.test/v1/a"
    with pytest.raises(UnicodeEncodeError):  # httpx's answer to a header that is not ASCII
        await http.fetch("GET", url, content=None, headers={"x-name": "Jürgen"}, timeout=None)
    await http.fetch("GET", url, content=None, headers={}, timeout=None)
    await http.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await http.fetch("GET", url, content=None, headers={}, timeout=None)
    assert counted.used == ["parts"]


@ENTRIES
async def test_the_httpx_access_line_is_the_same_on_both_paths(
    entry: Entry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    http, counted = over(entry, PartsRecorder(status=429, headers={"retry-after": "3"}))
    async with http:
        await http.fetch(
            "GET", "http://provider.test/v1/orders/1", content=None, headers={}, timeout=None
        )
    assert counted.used == [entry]
    assert [r.getMessage() for r in caplog.records if r.name == "httpx"] == [
        'HTTP Request: GET http://provider.test/v1/orders/1 "HTTP/1.1 429 Too Many Requests"'
    ]


@ENTRIES
@pytest.mark.parametrize(
    ("transport", "expected"),
    [
        (lambda: PartsRecorder(body=b""), None),
        (lambda: PartsRecorder(body=b"[1]"), [1]),
        (
            lambda: PartsRecorder(429, {"Retry-After": "3"}, b'{"m":"slow down"}'),
            (ProviderError, 429, "slow down", True, 3.0),
        ),
        (lambda: PartsRecorder(404, body=b"gone"), (NotFound, 404, "gone", False, None)),
        (lambda: PartsRecorder(body=b"<html>"), (ProviderUnavailable, True)),
        (
            lambda: PartsRecorder(fail=httpx.ConnectError("refused")),
            (ProviderUnavailable, False),
        ),
        (lambda: PartsRecorder(fail=httpx.ReadTimeout("slow")), (ProviderUnavailable, True)),
        (lambda: PartsRecorder(fail=httpx.ReadError("reset")), (ProviderUnavailable, True)),
    ],
    ids=["empty", "json", "429", "404", "not json", "never sent", "timeout", "reset"],
)
async def test_statuses_bodies_and_failures_map_the_same_on_both_paths(
    entry: Entry, transport: Any, expected: Any
) -> None:
    def parse(status: int, decoded: Any, text: str) -> tuple[str, str]:
        return "E", decoded["m"] if isinstance(decoded, dict) else text

    http, counted = over(entry, transport())
    async with http:
        try:
            got: Any = await send_json(http, "roamify", "GET", "/x", parse_error=parse)
        except (ProviderError, ProviderUnavailable) as exc:
            got = (
                (type(exc), exc.status, exc.message, exc.retryable, exc.retry_after)
                if isinstance(exc, ProviderError)
                else (type(exc), exc.sent)
            )
    assert counted.used == [entry]
    assert got == expected


def _observed_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]
    return [
        {k: v for k, v in line.items() if k not in ("ms", "timestamp")}
        for line in lines
        if line.get("event") == "provider call"
    ]


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 200},
        {"status": 503},
        {"fail": httpx.ReadTimeout("slow")},
    ],
    ids=["200", "503", "timeout"],
)
async def test_an_instrumented_call_is_counted_timed_traced_and_logged_alike_on_both_paths(
    answer: dict[str, Any],
) -> None:
    seen: dict[str, tuple[Any, ...]] = {}
    for entry in ("httpx", "parts"):
        metrics = Metrics()
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracing = Tracing(tracer_provider.get_tracer("test"))
        recorder = PartsRecorder(**answer)
        counted = EntryPoints(recorder, parts=entry == "parts")
        stats = RequestStats()
        token = _stats.set(stats)
        failed = False
        try:
            with written_lines("DEBUG") as stream:
                instrumented = InstrumentedTransport(counted, "roamify", metrics, tracing)
                async with client(instrumented) as http:
                    await send_json(
                        http,
                        "roamify",
                        "GET",
                        "/api/v1/orders/658441501843542",
                        headers={"authorization": "Bearer t"},
                        parse_error=ignore,
                    )
        except (ProviderError, ProviderUnavailable):
            failed = True
        finally:
            _stats.reset(token)
        assert counted.used == [entry]
        assert failed is (answer.get("status") != 200)
        status = str(answer.get("status", "error"))
        samples = {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for m in metrics.registry.collect()
            if m.name.startswith("provider_call")
            for s in m.samples
            if s.name.endswith(("_total", "_count"))
        }
        assert (
            "provider_calls_total",
            (("endpoint", "/v1/api/v1/orders/:id"), ("provider", "roamify"), ("status", status)),
            1.0,
        ) in samples
        assert stats.calls == 1 and stats._in_flight == 0  # started and ended once
        (span,) = exporter.get_finished_spans()
        (sent,) = recorder.sent
        trace_id = format(span.context.trace_id, "032x")
        assert dict(sent.headers)["traceparent"].split("-")[1] == trace_id
        seen[entry] = (
            samples,
            span.name,
            span.kind,
            dict(span.attributes or {}),
            span.status.status_code,
            [(k, "<id>" if k == "traceparent" else v) for k, v in sent.headers],
            _observed_lines(stream.getvalue()),
        )
    assert seen["parts"] == seen["httpx"]
    assert seen["parts"][6] and seen["parts"][6][0]["status"] == str(answer.get("status", "error"))
