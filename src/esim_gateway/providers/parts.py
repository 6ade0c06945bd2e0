"""The direct path: a provider call handed to its transport as parts.

httpx is the adapters' HTTP client API: each is handed an httpx.AsyncClient (a
`ProviderClient`), and transport failures are httpx exceptions, translated once by
`send_json`. Between `ProviderClient` and a transport that can take them, though, a call
travels as the parts below instead of as httpx objects: building and reading an
httpx.Request (its URL parsed, its Headers merged) and an httpx.Response cost ~60-80 us
of the ~300 us a provider GET took (budget line "httpx", issue 12).

This is an internal protocol between `ProviderClient` and transports, not an API for
adapters. A transport takes parts when its `takes_parts` is True (`ReqwestTransport`;
`InstrumentedTransport` when the transport it wraps does); every other transport
(httpx's own, `ASGITransport`, `MockTransport`) gets httpx.Requests as before.

On the direct path a transport fails with the same httpx.TransportError subclasses as
through `handle_async_request`, but they may carry no `.request` (reading it raises).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeGuard

__all__ = [
    "AnswerHeaders",
    "PartsTransport",
    "RequestParts",
    "ResponseParts",
    "takes_parts",
]


@dataclass(slots=True)
class RequestParts:
    """One request, exactly as it is to be sent."""

    #: upper case
    method: str
    #: absolute, already in the form httpx would give it (`str(httpx.URL(url)) == url`)
    url: str
    #: lower-case names in the order sent, ``host`` included: what
    #: `httpx.Request.headers.multi_items()` would hold
    headers: list[tuple[str, str]]
    #: b"" for none
    body: bytes
    #: `httpx.Timeout.as_dict()`
    timeout: Mapping[str, float | None]


class AnswerHeaders(Protocol):
    """An answer's headers: a lookup by name in any case, and every (name, value)."""

    def get(self, key: str, /) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


@dataclass(slots=True)
class ResponseParts:
    """One whole answer, its body read."""

    status_code: int
    headers: AnswerHeaders
    content: bytes
    #: as httpx writes it, e.g. ``HTTP/1.1``
    http_version: str = "HTTP/1.1"


class PartsTransport(Protocol):
    @property
    def takes_parts(self) -> bool: ...

    async def send_parts(self, request: RequestParts) -> ResponseParts: ...


def takes_parts(transport: object) -> TypeGuard[PartsTransport]:
    """Whether `transport` can be handed a `RequestParts` (checked once per client)."""
    return getattr(transport, "takes_parts", False) is True
