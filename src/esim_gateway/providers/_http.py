"""The one place where HTTP failures become `esim_gateway.errors` exceptions.

Every adapter sends through `send_json()`. It maps:

* transport failures (connect error, timeout, reset, protocol error) -> ProviderUnavailable
  (`sent=False` only when the request provably never left: a connect failure/timeout);
* a 404 -> NotFound; any other non-2xx -> ProviderError, with the provider's own error
  code and message extracted by the adapter's `ErrorParser`;
* a 2xx whose body is not JSON -> ProviderUnavailable (the outcome is unknown).

Nothing secret is ever put into a message: request headers are never echoed, and
provider messages go through `errors.redact()` inside `ProviderError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote_plus

import httpx
import orjson

from esim_gateway.errors import NotFound, ProviderError, ProviderUnavailable

__all__ = [
    "RETRYABLE_STATUSES",
    "ErrorParser",
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


def _retry_after(response: httpx.Response) -> float | None:
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
    try:
        response = await client.request(
            method,
            _absolute_url(client, path, params),
            content=body,
            headers=request_headers,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
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
    if response.is_success:
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
