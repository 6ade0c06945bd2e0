"""The one place where HTTP failures become `esim_gateway.errors` exceptions.

Every adapter sends through `send_json()`. It maps:

* transport failures (connect error, timeout, reset, protocol error) -> ProviderUnavailable
  (`sent=False` only when the request provably never left: a connect failure/timeout, or
  no pooled connection free in time);
* a 404 -> NotFound; any other non-2xx -> ProviderError, with the provider's own error
  code and message extracted by the adapter's `ErrorParser`;
* a 2xx whose body is not JSON -> ProviderUnavailable (the outcome is unknown).

Nothing secret is ever put into a message: request headers are never echoed, and
provider messages go through `errors.redact()` inside `ProviderError`.

`ProviderClient` is the httpx.AsyncClient the app hands each adapter: it sends a
request straight to its transport when no httpx feature is involved, and as plain parts
(`providers.parts`, no httpx.Request or httpx.Response built) when that transport takes
them (see its docs). httpx stays the adapters' API either way.
"""

from __future__ import annotations

import http.cookiejar
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote_plus

import httpx
import orjson

if TYPE_CHECKING:  # the names of `AsyncClient.send`'s parameter types, to override it
    from httpx._client import UseClientDefault
    from httpx._types import AuthTypes

from esim_gateway.errors import NotFound, ProviderError, ProviderUnavailable
from esim_gateway.providers.parts import AnswerHeaders, RequestParts, takes_parts

__all__ = [
    "RETRYABLE_STATUSES",
    "Answer",
    "ErrorParser",
    "ProviderClient",
    "Timeouts",
    "build_timeout",
    "encode_json",
    "send_json",
]

#: statuses a caller may retry (reads always; purchases only after a lookup by reference)
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

#: (status, decoded JSON body or None, raw text) -> (error_code, message)
ErrorParser = Callable[[int, Any, str], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-endpoint-class timeouts in seconds."""

    read: float = 5.0
    write: float = 15.0
    #: Roamify instant order and apply may take a minute or more (docs: 60-90 s)
    fulfil: float = 90.0
    connect: float = 3.0


def build_timeout(seconds: float, connect: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(connect, seconds))


#: httpx's own logger: its one INFO line per request is kept on the direct path
_HTTPX_LOG = logging.getLogger("httpx")

#: what may follow the base URL for httpx to leave a URL as it is (`str(httpx.URL(url))
#: == url`): unreserved and sub-delimiter characters, ``/?:``, valid percent escapes; no
#: dot segment (httpx removes them). A URL with anything else is httpx's to normalise.
_NOT_AS_IS = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:/?%]|%(?![0-9A-Fa-f]{2})|/\.\.?(?:[/?]|$)")


class Answer(Protocol):
    """What `send_json` reads of an answer: an httpx.Response, or the direct path's
    `ResponseParts`."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> AnswerHeaders: ...

    @property
    def content(self) -> bytes: ...


class _NoCookies(http.cookiejar.CookieJar):
    """The providers authenticate by header: a cookie they set is never sent back.
    Budget line "httpx": reading every response's cookies into the jar cost ~19 us
    per provider call here."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class ProviderClient(httpx.AsyncClient):
    """An httpx.AsyncClient for one provider: no cookies, no redirects followed.

    Budget line "httpx": `AsyncClient.send` costs ~170 us per call on top of the
    transport (auth and redirect generators, event hooks, cookie extraction, a bound
    stream and its timer). The providers authenticate by header, never redirect us and
    set no cookie we send back, so `send()` hands a request straight to the transport
    this client was built with unless something asks for more: a streamed response,
    auth (the client's, the call's, or credentials in the URL), redirects followed,
    event hooks, or a closed client; those go through httpx unchanged. The response is
    read, carries `.request` and `.elapsed`, and httpx's INFO line is logged as before.

    `fetch()` (what `send_json` calls) goes one step further when the transport takes
    parts (`providers.parts`): the call is handed over as method, URL string, header list,
    body and timeout, and its answer comes back as status, headers and body, so no
    httpx.Request, URL, Headers or Response is built (~60-80 us a call). The headers are
    the ones `build_provider_request` would give, in the same order.
    """

    def __init__(
        self,
        *,
        base_url: str,
        transport: httpx.AsyncBaseTransport,
        timeout: httpx.Timeout,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers=headers,
            follow_redirects=False,
            cookies=_NoCookies(),
        )
        # our own reference: with a transport given (and no mounts), httpx sends every
        # request through it too, and no proxy from the environment is mounted
        self._direct = transport
        self._parts = transport if takes_parts(transport) else None
        # the base URL as `_absolute_url` writes it, and its netloc (the Host header),
        # for the base URL they were taken from (`base_url` may be set again)
        self._prefix_of: httpx.URL | None = None
        self._prefix = ""
        self._netloc = ""

    def build_provider_request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        headers: Mapping[str, str],
        timeout: httpx.Timeout | None,
    ) -> httpx.Request:
        """What `build_request` makes of an absolute URL, content and headers, without
        its URL merging, params and cookie handling (~60 us): the client's headers
        updated with the call's, and the call's or the client's timeout."""
        request = httpx.Request(
            method,
            url,
            headers=self.headers,
            content=content,
            extensions={"timeout": (timeout or self.timeout).as_dict()},
        )
        if headers:
            request.headers.update(headers)
        return request

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        headers: Mapping[str, str],
        timeout: httpx.Timeout | None,
    ) -> Answer:
        """One request (arguments as `build_provider_request`'s), its answer read: as
        parts when the transport takes them and nothing asks for httpx's pipeline,
        else an httpx.Response from `send()`. Failures are httpx exceptions either way."""
        parts = self._parts
        request = (
            None
            if parts is None
            else self._request_parts(method, url, content=content, headers=headers, timeout=timeout)
        )
        if parts is None or request is None:
            return await self.send(
                self.build_provider_request(
                    method, url, content=content, headers=headers, timeout=timeout
                )
            )
        answer = await parts.send_parts(request)
        if _HTTPX_LOG.isEnabledFor(logging.INFO):
            _HTTPX_LOG.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                answer.http_version,
                answer.status_code,
                httpx.codes.get_reason_phrase(answer.status_code),
            )
        return answer

    def _request_parts(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        headers: Mapping[str, str],
        timeout: httpx.Timeout | None,
    ) -> RequestParts | None:
        """What `build_provider_request` would send, as parts; None when httpx must send
        it: auth, redirects or hooks asked for, a closed client, a URL that is not the
        base URL's plus a path httpx leaves as it is, or a header that is not ASCII
        (httpx refuses those)."""
        if self._needs_pipeline() or not self._as_is(url):
            return None
        method = method.upper()
        wire = self._wire_headers(method, content, headers)
        if wire is None:
            return None
        timeouts = (timeout or self.timeout).as_dict()
        return RequestParts(method, url, wire, content or b"", timeouts)

    def _needs_pipeline(self) -> bool:
        """Whether this client asks for httpx's pipeline on every request: auth,
        redirects followed or event hooks, or it is closed (httpx then raises)."""
        return bool(
            self.auth is not None
            or self.follow_redirects
            or self.is_closed
            or self.event_hooks["request"]
            or self.event_hooks["response"]
        )

    def _as_is(self, url: str) -> bool:
        """Whether `url` is the base URL's plus a path httpx would leave as it is."""
        base = self._base_url
        if base is not self._prefix_of:
            # credentials in the base URL are auth: httpx's
            self._prefix = "" if base.userinfo else str(base).rstrip("/")
            self._netloc = base.netloc.decode("ascii")
            self._prefix_of = base
        prefix = self._prefix
        return bool(
            prefix
            and url.startswith(prefix)
            and url[len(prefix) : len(prefix) + 1] == "/"
            and _NOT_AS_IS.search(url, len(prefix)) is None
        )

    def _wire_headers(
        self, method: str, content: bytes | None, headers: Mapping[str, str]
    ) -> list[tuple[str, str]] | None:
        """The headers httpx would send, in its order; None for a call header that is not
        ASCII. httpx.Request(headers=client's, content=...) and then `.headers.update(call's)`:
        the client's headers, content-length after them, host (and a POST's
        content-length 0) before them; a call's header replaces the client's, at the end."""
        wire = self.headers.multi_items()
        present = {name for name, _ in wire}
        if content and "content-length" not in present:
            wire.append(("content-length", str(len(content))))
            present.add("content-length")
        auto = [] if "host" in present else [("host", self._netloc)]
        if method in _BODY_METHODS and present.isdisjoint(_LENGTH_HEADERS):
            auto.append(("content-length", "0"))
        if auto:
            wire = auto + wire
            present.update(name for name, _ in auto)
        return _with_call_headers(wire, present, headers) if headers else wire

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault | None = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        if (
            stream
            or auth is not httpx.USE_CLIENT_DEFAULT
            or follow_redirects is True
            or self.auth is not None
            or self.follow_redirects
            or self.is_closed
            or request.url.userinfo
            or self.event_hooks["request"]
            or self.event_hooks["response"]
        ):
            return await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        if "timeout" not in request.extensions:
            request.extensions = {**request.extensions, "timeout": self.timeout.as_dict()}
        started = time.perf_counter()
        response = await self._direct.handle_async_request(request)
        try:
            response.request = request
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        response.elapsed = timedelta(seconds=time.perf_counter() - started)
        if _HTTPX_LOG.isEnabledFor(logging.INFO):
            _HTTPX_LOG.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        return response


#: methods httpx gives a content-length (0) without a body, and the headers that stop it
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_LENGTH_HEADERS = frozenset({"content-length", "transfer-encoding"})


def _with_call_headers(
    wire: list[tuple[str, str]], present: set[str], headers: Mapping[str, str]
) -> list[tuple[str, str]] | None:
    """`wire` updated with a call's headers, as httpx's `Headers.update` does; None when
    one is not ASCII (httpx refuses those)."""
    call = []
    for name, value in headers.items():
        if not (name.isascii() and value.isascii()):
            return None
        call.append((name.lower(), value))
    replaced = {name for name, _ in call}
    if not replaced.isdisjoint(present):
        wire = [header for header in wire if header[0] not in replaced]
    wire.extend(call)
    return wire


def _retry_after(response: Answer) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _decode(text: bytes) -> Any:
    return orjson.loads(text)


def _query_value(value: str | int | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _absolute_url(
    client: httpx.AsyncClient, path: str, params: Mapping[str, str | int | bool] | None
) -> str:
    """The whole URL, query included, as one string. Budget line "httpx": handed a path
    and a params dict, httpx parses a URL three times per call (the path, its merge with
    the base URL, the params merged in), ~60 us here; handed an absolute URL, once.
    Values are encoded as httpx encodes params (space as +, unreserved characters kept)."""
    url = str(client.base_url).rstrip("/") + path
    if not params:
        return url
    query = "&".join(
        f"{quote_plus(k, safe='')}={quote_plus(_query_value(v), safe='')}"
        for k, v in params.items()
    )
    return f"{url}?{query}"


async def send_json(
    client: httpx.AsyncClient,
    provider: str,
    method: str,
    path: str,
    *,
    parse_error: ErrorParser,
    params: Mapping[str, str | int | bool] | None = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: httpx.Timeout | None = None,
) -> Any:
    """Send one request and return its decoded JSON body, or raise a domain exception."""
    request_headers = dict(headers or {})
    if body is not None:
        request_headers.setdefault("content-type", "application/json")
    url = _absolute_url(client, path, params)
    response: Answer
    try:
        if isinstance(client, ProviderClient):
            response = await client.fetch(
                method, url, content=body, headers=request_headers, timeout=timeout
            )
        else:
            request = client.build_request(
                method,
                url,
                content=body,
                headers=request_headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            response = await client.send(request)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ProviderUnavailable(
            provider, f"could not connect to {provider}: {type(exc).__name__}", sent=False
        ) from exc
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(
            provider, f"{provider} did not answer {method} {path} in time"
        ) from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(
            provider,
            f"connection to {provider} failed during {method} {path}: {type(exc).__name__}",
        ) from exc

    content = response.content
    if 200 <= response.status_code < 300:  # httpx.Response.is_success
        if not content:
            return None
        try:
            return _decode(content)
        except orjson.JSONDecodeError as exc:
            raise ProviderUnavailable(
                provider, f"{provider} answered {method} {path} with a body that is not JSON"
            ) from exc

    try:
        decoded: Any = _decode(content) if content else None
    except orjson.JSONDecodeError:
        decoded = None
    text = content.decode("utf-8", errors="replace")[:500]
    error_code, message = parse_error(response.status_code, decoded, text)
    error_type = NotFound if response.status_code == 404 else ProviderError
    raise error_type(
        provider,
        response.status_code,
        error_code,
        message,
        retryable=response.status_code in RETRYABLE_STATUSES,
        retry_after=_retry_after(response),
    )


def encode_json(payload: Any) -> bytes:
    return orjson.dumps(payload)
