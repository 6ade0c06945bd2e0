"""The client's address: the peer's, or the one a trusted proxy says it forwarded.

Everything that reads a client address (the rate limits per client IP on GraphQL and on
the install page, the failed-authentication budget, our access line and uvicorn's) reads
it with `client_address(scope)`, after `behind_proxies` has settled it once as the
request enters the app (`GatewayApp`, ahead of both the GraphQL fast path and Starlette's
stack). The rule is uvicorn's `forwarded_allow_ips` (its ProxyHeadersMiddleware, used
here as it is): `X-Forwarded-For` and `X-Forwarded-Proto` count only when the peer is one
of the configured proxies (`ESIM_GATEWAY_FORWARDED_ALLOW_IPS`), and the client is then the
right-most address in the header that is not itself a trusted proxy: the hop the proxy
added, never what the client wrote before it. uvicorn's own handling is off
(`cli.server_options`): the rule is applied once, by the app, under the app's setting,
whichever server runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Scope

__all__ = ["UNKNOWN", "behind_proxies", "client_address"]

#: the address of a request whose server gave none (a Unix socket, an in-process test)
UNKNOWN = "unknown"


def behind_proxies(app: ASGIApp, proxies: Sequence[str]) -> ASGIApp:
    """`app`, its requests' client addresses (and schemes) taken from the forwarding
    headers of the `proxies` (IP addresses or networks); `app` itself when none is trusted."""
    if not proxies:
        return app
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    # uvicorn's ASGI types are its own TypedDicts; the middleware is plain ASGI
    middleware: Any = ProxyHeadersMiddleware(app, trusted_hosts=list(proxies))  # type: ignore[arg-type]
    wrapped: ASGIApp = middleware
    return wrapped


def client_address(scope: Scope) -> str:
    """The request's client address, as `behind_proxies` settled it."""
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN
