"""The gateway's ASGI app: Starlette, with GraphQL over HTTP taken before its stack.

GET and POST /graphql are nearly all of the traffic, and Starlette's layers do nothing
for them: the endpoint answers its own refusals and errors, so ServerErrorMiddleware,
ExceptionMiddleware, the Router's route matching and the Route's method check cost
~20-30 us per request for nothing (issue 12). Those requests get the same accounting
(`RequestAccounting.serve`: request id, metrics, the access line) and a 500 on an
unexpected exception (coded INTERNAL_SERVER_ERROR, as the endpoint's own errors);
everything else - WebSockets, other methods on /graphql (the Route's 405), the other
routes, an app under a root path - takes Starlette's way. Both ways see the client
address settled first, behind trusted proxies (`esim_gateway.ops.forwarded`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from esim_gateway.http.endpoint import SERVER_ERROR
from esim_gateway.ops.forwarded import behind_proxies
from esim_gateway.ops.requests import RequestAccounting

__all__ = ["GRAPHQL_PATH", "GatewayApp"]

GRAPHQL_PATH = "/graphql"

Answer = Callable[[Scope, Receive], Awaitable[tuple[int, list[tuple[bytes, bytes]], bytes]]]


class GatewayApp(Starlette):
    def __init__(
        self,
        *,
        graphql: Answer,
        accounting: RequestAccounting,
        proxies: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        """`proxies`: the addresses and networks whose X-Forwarded-For is believed."""
        super().__init__(**kwargs)
        self._graphql = graphql
        self._accounting = accounting
        self._entry: ASGIApp = behind_proxies(self._dispatch, proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == GRAPHQL_PATH
            and scope["method"] in ("GET", "POST")
            and not scope.get("root_path")
        ):
            scope["app"] = self  # as Starlette sets it (Request.app)
            await self._accounting.serve(
                scope, receive, send, self._graphql, (SERVER_ERROR.headers, SERVER_ERROR.body)
            )
            return
        await super().__call__(scope, receive, send)
