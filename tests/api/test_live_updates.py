"""Subscriptions over graphql-transport-ws on a real (loopback) server, fed by webhooks,
by polling when a webhook is lost, and across two replicas sharing PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from esim_gateway.app import create_app
from esim_gateway.config import Settings
from tests.conftest import make_sandboxes

SUBSCRIBE = """subscription($id: ID!) { orderUpdated(id: $id) {
  status providerStatus esims { iccid lpa } } }"""
CREATE = """mutation($input: CreateOrderInput!) { createOrder(input: $input) { __typename
  ... on Order { id status } } }"""
PACKAGES = """{ packages(filter: {provider: SIMPLIFYTRIP}, first: 1) { edges { node {
  packageId } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve(
    settings: Settings, reconcile_interval: float = 0.3, **kwargs: Any
) -> AsyncIterator[str]:
    """The gateway on a real loopback socket; yields its base URL."""
    port = free_port()
    app = create_app(settings, reconcile_interval=reconcile_interval, **kwargs)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, lifespan="on", ws="websockets-sansio"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def buy(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://{base}") as http:
        packages = (await http.post("/graphql", json={"query": PACKAGES})).json()
        package_id = packages["data"]["packages"]["edges"][0]["node"]["packageId"]
        body = (
            await http.post(
                "/graphql",
                json={
                    "query": CREATE,
                    "variables": {
                        "input": {
                            "provider": "SIMPLIFYTRIP",
                            "items": [{"packageId": package_id, "quantity": 1}],
                        }
                    },
                },
            )
        ).json()
    order: dict[str, Any] = body["data"]["createOrder"]
    return order


async def updates(
    base: str, order_id: str, until: str = "COMPLETED", document: str = SUBSCRIBE
) -> list[dict[str, Any]]:
    transport = WebsocketsTransport(
        url=f"ws://{base}/graphql", subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
    )
    seen: list[dict[str, Any]] = []
    async with Client(transport=transport) as session:
        async for result in session.subscribe(
            GraphQLRequest(document, variable_values={"id": order_id})
        ):
            seen.append(result["orderUpdated"])
            if result["orderUpdated"]["status"] == until:
                break
    return seen


async def test_a_subscriber_sees_processing_then_completed_with_the_lpa(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, order_deadline=0.2)
    sandboxes = make_sandboxes(fulfil_delay=0.6)
    async with serve(settings, sandboxes=sandboxes) as base:
        order = await buy(base)
        assert order["status"] == "PROCESSING"
        seen = await asyncio.wait_for(updates(base, order["id"]), timeout=15)
    # the first update shows the ledger's PROCESSING; its eSIMs are read from the provider
    # at that moment, which on a slow machine may already have fulfilled the order
    assert seen[0]["status"] == "PROCESSING"
    assert seen[-1]["status"] == "COMPLETED" and seen[-1]["providerStatus"] == "SUCCESS"
    assert seen[-1]["esims"][0]["lpa"].startswith("LPA:1$")
    deliveries = sandboxes.simplifytrip.webhooks.deliveries
    assert any(
        d["body"]["type"] == "PURCHASE_ORDER_SUCCESS" and d["status"] == 200 for d in deliveries
    )


async def test_a_lost_webhook_is_recovered_by_polling(database_url: str) -> None:
    settings = Settings(database_url=database_url, order_deadline=0.2)
    sandboxes = make_sandboxes(fulfil_delay=0.6)
    async with serve(settings, sandboxes=sandboxes, sandbox_webhooks=False) as base:
        sandboxes.simplifytrip.webhooks.url = None  # the provider's webhook never arrives
        order = await buy(base)
        seen = await asyncio.wait_for(updates(base, order["id"]), timeout=15)
    assert seen[-1]["status"] == "COMPLETED" and seen[-1]["esims"]
    assert sandboxes.simplifytrip.webhooks.deliveries == []


async def test_a_subscription_to_someone_elses_order_is_refused(database_url: str) -> None:
    keys = Settings.from_mapping(
        {"ESIM_GATEWAY_API_KEYS": "alice:customer:alice-key,bob:customer:bob-key"}
    ).api_keys
    settings = Settings(database_url=database_url, order_deadline=0.2, api_keys=keys)
    async with serve(settings, sandboxes=make_sandboxes(fulfil_delay=0.2)) as base:
        async with httpx.AsyncClient(
            base_url=f"http://{base}", headers={"authorization": "Bearer alice-key"}
        ) as http:
            packages = (await http.post("/graphql", json={"query": PACKAGES})).json()
            package_id = packages["data"]["packages"]["edges"][0]["node"]["packageId"]
            created = (
                await http.post(
                    "/graphql",
                    json={
                        "query": CREATE,
                        "variables": {
                            "input": {
                                "provider": "SIMPLIFYTRIP",
                                "items": [{"packageId": package_id, "quantity": 1}],
                            }
                        },
                    },
                )
            ).json()
        order_id = created["data"]["createOrder"]["id"]
        transport = WebsocketsTransport(
            url=f"ws://{base}/graphql",
            init_payload={"Authorization": "Bearer bob-key"},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )

        async def first_update(transport: WebsocketsTransport) -> None:
            async with Client(transport=transport) as session:
                async for _ in session.subscribe(
                    GraphQLRequest(SUBSCRIBE, variable_values={"id": order_id})
                ):
                    break

        with pytest.raises(Exception, match="No order with this id"):
            await first_update(transport)
        nobody = WebsocketsTransport(
            url=f"ws://{base}/graphql", subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
        )
        with pytest.raises(Exception):  # noqa: B017, PT011 - the server closes with 4403
            await first_update(nobody)


@pytest.mark.postgres
async def test_an_event_on_one_replica_reaches_a_subscriber_on_the_other(
    clean_postgres: str,
) -> None:
    settings = Settings(database_url=clean_postgres, order_deadline=0.2)
    sandboxes = make_sandboxes(fulfil_delay=0.6)
    async with (
        serve(settings, sandboxes=sandboxes) as first,
        serve(settings, sandboxes=sandboxes, sandbox_webhooks=False) as second,
    ):
        order = await buy(first)
        seen = await asyncio.wait_for(updates(second, order["id"]), timeout=15)
    assert seen[-1]["status"] == "COMPLETED"


async def test_an_esim_subscriber_hears_its_status_change_from_the_provider(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, order_deadline=5)
    sandboxes = make_sandboxes()
    async with serve(settings, sandboxes=sandboxes) as base:
        async with httpx.AsyncClient(base_url=f"http://{base}", timeout=10) as http:
            packages = (
                await http.post(
                    "/graphql",
                    json={
                        "query": """{ packages(
              filter: {provider: ROAMIFY}, first: 5) { edges { node { packageId
              requiresTravelDate } } } }"""
                    },
                )
            ).json()
            package_id = next(
                e["node"]["packageId"]
                for e in packages["data"]["packages"]["edges"]
                if not e["node"]["requiresTravelDate"]
            )
            created = (
                await http.post(
                    "/graphql",
                    json={
                        "query": """mutation($i:
              CreateOrderInput!) { createOrder(input: $i) { ... on Order { esims { iccid } }
              } }""",
                        "variables": {
                            "i": {
                                "provider": "ROAMIFY",
                                "items": [{"packageId": package_id, "quantity": 1}],
                            }
                        },
                    },
                )
            ).json()
        iccid = created["data"]["createOrder"]["esims"][0]["iccid"]
        transport = WebsocketsTransport(
            url=f"ws://{base}/graphql", subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
        )
        seen: list[str] = []
        subscribed = asyncio.Event()

        async def listen() -> None:
            async with Client(transport=transport) as session:
                async for result in session.subscribe(
                    GraphQLRequest(
                        "subscription($i: String!) { esimUpdated(iccid: $i) { iccid status } }",
                        variable_values={"i": iccid},
                    )
                ):
                    seen.append(result["esimUpdated"]["status"])
                    subscribed.set()
                    if result["esimUpdated"]["status"] == "INSTALLED":
                        return

        listener = asyncio.create_task(listen())
        await asyncio.wait_for(subscribed.wait(), timeout=10)
        sandboxes.roamify.state.install(iccid)  # fires the signed esim/status webhook
        await asyncio.wait_for(listener, timeout=10)
    assert seen[0] == "READY" and seen[-1] == "INSTALLED"
