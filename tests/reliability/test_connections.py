"""P10 (QUALITY.md 5.1): one client per provider per process, and no new TCP connection
per request once warm. The simulator listens on a real loopback socket, the gateway uses
each selectable production transport (reqwest, the default, and httpx's own), and
the simulator records the client address of every request: each distinct address is one
TCP connection."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp, Receive, Scope, Send

from esim_gateway.app import create_app
from esim_gateway.config import HttpTransport, Mode, _parse_api_keys
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from tests.conftest import gateway_settings, serve_in_thread

KEY = "p10-test-key-0123456789"
ORDER = "query($id: ID!) { order(id: $id) { ... on Order { status items { packageId } } } }"
CREATE = """mutation($input: CreateOrderInput!) { createOrder(input: $input) {
  __typename ... on Order { id } } }"""
PACKAGES = """{ packages(filter: {provider: ROAMIFY}, first: 50) {
  edges { node { packageId requiresTravelDate } } } }"""


class Peers:
    """ASGI middleware: the client address of every HTTP request."""

    def __init__(self, app: ASGIApp, seen: list[tuple[str, int]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("client"):
            host, port = scope["client"]
            self.seen.append((host, port))
        await self.app(scope, receive, send)


@pytest.mark.parametrize("transport", [HttpTransport.REQWEST, HttpTransport.HTTPX])
async def test_requests_reuse_pooled_connections_and_one_client_per_provider(
    transport: HttpTransport, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = create_roamify_sandbox(packages_per_country=3)
    peers: list[tuple[str, int]] = []
    sandbox.app.add_middleware(Peers, seen=peers)
    # A provider behind a load balancer keeps idle connections for a minute or more;
    # uvicorn's 5 s would close a pooled connection a slow run left idle that long.
    with serve_in_thread(sandbox.app, keep_alive=120) as upstream:
        settings = gateway_settings(
            database_url,
            mode=Mode.LIVE,
            http_transport=transport,
            roamify_base_url=upstream,
            roamify_token="sandbox-roamify-token",
            api_keys=_parse_api_keys(f"app:customer:{KEY}", "api_keys"),
        )
        app = create_app(settings, reconcile_interval=3600, catalog_refresh=False)
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),
                base_url="http://gateway.test",
                headers={"authorization": f"Bearer {KEY}"},
            ) as client,
        ):

            async def graphql(query: str, **variables: Any) -> Any:
                response = await client.post(
                    "/graphql", json={"query": query, "variables": variables}
                )
                body = response.json()
                assert "errors" not in body, body
                return body["data"]

            edges = (await graphql(PACKAGES))["packages"]["edges"]
            package = next(
                e["node"]["packageId"] for e in edges if not e["node"]["requiresTravelDate"]
            )
            item = {"packageId": package, "quantity": 1}
            # ten orders: concurrent reads of one order would share one upstream call
            order_ids = [
                (
                    await graphql(
                        CREATE,
                        input={
                            "provider": "ROAMIFY",
                            "idempotencyKey": f"p10-{n}",
                            "items": [item],
                        },
                    )
                )["createOrder"]["id"]
                for n in range(10)
            ]
            for _ in range(5):  # warm: the pool grows to the concurrency it serves
                await asyncio.gather(*(graphql(ORDER, id=order_id) for order_id in order_ids))

            constructed: list[object] = []
            original = httpx.AsyncClient.__init__

            def counting(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
                constructed.append(self)
                original(self, *args, **kwargs)

            monkeypatch.setattr(httpx.AsyncClient, "__init__", counting)
            calls_before = len(sandbox.control.calls.calls)
            for _ in range(20):
                await asyncio.gather(*(graphql(ORDER, id=order_id) for order_id in order_ids))
            monkeypatch.undo()

    served = len(sandbox.control.calls.calls) - calls_before
    assert served >= 200  # every order(id) read the provider: the connections were used
    assert constructed == []  # no client per request
    # Ten requests at a time, one upstream call each: never more than ten connections
    # over the ~250 calls. (How many the five warm-up rounds open depends on how the
    # calls overlap: one transport may hand a connection back to its pool sooner than
    # another, and open its tenth only later; what matters is that it never opens more.)
    assert len(set(peers)) <= 10, f"{len(set(peers))} TCP connections for 10 at a time"
