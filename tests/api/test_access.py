"""Every operation needs a principal; customers see and act on only their own orders; a
client address past its budget of failed authentications is refused for a while."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from strawberry import relay

from esim_gateway.config import Settings
from esim_gateway.ops.ratelimit import FailedAuthentications, RateLimiter
from tests.api.test_esim_node import ESIM_NODE
from tests.api.test_ordering import CANCEL, CREATE, ORDER, TOPUP, a_package, buy
from tests.conftest import Gateway, GatewayFactory, make_sandboxes

KEYS = Settings.from_mapping(
    {"ESIM_GATEWAY_API_KEYS": "alice:customer:alice-key,bob:customer:bob-key,ops:operator:ops-key"}
).api_keys
ALICE = {"authorization": "Bearer alice-key"}
BOB = {"authorization": "Bearer bob-key"}
OPS = {"authorization": "Bearer ops-key"}


async def call(
    gw: Gateway, document: str, headers: dict[str, str], **variables: Any
) -> httpx.Response:
    return await gw.post(document, variables, headers)


@pytest.fixture
async def secured(gateway_factory: GatewayFactory) -> Any:
    async with gateway_factory(api_keys=KEYS, headers=ALICE) as gw:
        yield gw


async def test_no_token_or_a_wrong_token_gets_401_and_changes_nothing(secured: Gateway) -> None:
    package = await a_package(secured, "ROAMIFY")
    payload = {
        "input": {
            "provider": "ROAMIFY",
            "items": [{"packageId": package["packageId"], "quantity": 1}],
        }
    }
    before = await secured.upstream_calls()
    bare = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=secured.app), base_url="http://gateway.test"
    )
    for headers in (
        {},
        {"authorization": "Bearer nope"},
        {"authorization": "alice-key"},
        {"authorization": "Basic YWxpY2U6a2V5"},
    ):
        response = await bare.post(
            "/graphql", json={"query": CREATE, "variables": payload}, headers=headers
        )
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "alice-key" not in response.text
    await bare.aclose()
    assert await secured.upstream_calls() == before
    assert (await secured.ledger.orders.page(owner=None, first=5)).records == ()


async def test_another_customers_order_answers_exactly_like_a_missing_one(
    secured: Gateway,
) -> None:
    package = await a_package(secured, "SIMPLIFYTRIP")
    created = (
        await secured.execute(
            CREATE,
            input={
                "provider": "SIMPLIFYTRIP",
                "items": [{"packageId": package["packageId"], "quantity": 1}],
            },
        )
    )["createOrder"]
    order_id = created["id"]
    iccid = created["esims"][0]["iccid"]
    mine = (await call(secured, ORDER, ALICE, id=order_id)).json()["data"]["order"]
    assert mine["__typename"] == "Order" and mine["esims"][0]["lpa"]

    from esim_gateway.schema.ids import order_global_id

    missing_id = order_global_id("00000000-0000-4000-8000-000000000000")
    theirs = (await call(secured, ORDER, BOB, id=order_id)).json()["data"]["order"]
    missing = (await call(secured, ORDER, BOB, id=missing_id)).json()["data"]["order"]
    assert theirs == missing == {"__typename": "NotFoundError", "message": "No order with this id."}

    node = (
        await call(secured, "query($id: ID!) { node(id: $id) { id } }", BOB, id=order_id)
    ).json()
    assert node["data"]["node"] is None
    listed = (await call(secured, "{ orders { edges { node { id } } } }", BOB)).json()
    assert listed["data"]["orders"]["edges"] == []
    esim = (
        await call(secured, "query($i: String!) { esim(iccid: $i) { __typename } }", BOB, i=iccid)
    ).json()
    assert esim["data"]["esim"]["__typename"] == "NotFoundError"
    by_ref = (
        await call(
            secured,
            "query($r: String!) { orderByReference(provider: SIMPLIFYTRIP, reference: $r)"
            " { __typename } }",
            BOB,
            r=created["reference"],
        )
    ).json()
    assert by_ref["data"]["orderByReference"]["__typename"] == "NotFoundError"
    calls = secured.simplifytrip.control.calls.count()
    cancel = (await call(secured, CANCEL, BOB, input={"orderId": order_id})).json()
    assert cancel["data"]["cancelOrder"]["__typename"] == "NotFoundError"
    topup = (await call(secured, TOPUP, BOB, input={"iccid": iccid, "packageId": "x"})).json()
    assert topup["data"]["topup"]["__typename"] == "NotFoundError"
    assert secured.simplifytrip.control.calls.count() == calls


async def test_an_operator_sees_every_order_with_credentials(secured: Gateway) -> None:
    package = await a_package(secured, "ROAMIFY")
    created = (
        await secured.execute(
            CREATE,
            input={
                "provider": "ROAMIFY",
                "items": [{"packageId": package["packageId"], "quantity": 1}],
            },
        )
    )["createOrder"]
    seen = (await call(secured, ORDER, OPS, id=created["id"])).json()["data"]["order"]
    assert seen["__typename"] == "Order" and seen["esims"][0]["lpa"]
    listed = (await call(secured, "{ orders { edges { node { id } } } }", OPS)).json()
    assert [e["node"]["id"] for e in listed["data"]["orders"]["edges"]] == [created["id"]]


async def test_another_customers_esim_is_null_like_a_missing_one(secured: Gateway) -> None:
    order = await buy(secured, "SIMPLIFYTRIP")
    global_id = str(relay.GlobalID("Esim", order["esims"][0]["iccid"]))
    assert (await call(secured, ESIM_NODE, ALICE, id=global_id)).json()["data"]["node"]["id"]
    theirs = (await call(secured, ESIM_NODE, BOB, id=global_id)).json()
    missing = (
        await call(secured, ESIM_NODE, ALICE, id=str(relay.GlobalID("Esim", "8999999999999999999")))
    ).json()
    not_an_iccid = (
        await call(secured, ESIM_NODE, ALICE, id=str(relay.GlobalID("Esim", "x")))
    ).json()
    assert theirs == missing == not_an_iccid == {"data": {"node": None}}


def at(gw: Gateway, address: str) -> httpx.AsyncClient:
    """A client of `gw` reaching it from `address`."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gw.app, client=(address, 41000)),
        base_url="http://gateway.test",
    )


async def attempt(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"authorization": f"Bearer {key}"}
    )


async def test_a_client_past_its_budget_of_failed_authentications_is_refused_even_with_a_right_key(
    gateway_factory: GatewayFactory,
) -> None:
    async with (
        gateway_factory(api_keys=KEYS, auth_failures_per_minute=3) as gw,
        at(gw, "203.0.113.10") as guesser,
        at(gw, "203.0.113.11") as alice,
    ):
        # requests that authenticate spend nothing of the budget
        assert [(await attempt(guesser, "alice-key")).status_code for _ in range(5)] == [200] * 5
        wrong = [await attempt(guesser, f"guess-{i}") for i in range(4)]
        assert [r.status_code for r in wrong] == [401, 401, 401, 429]
        refused = wrong[-1]
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert 1 <= int(refused.headers["retry-after"]) <= 20  # a token every 20 s
        # a right guess now gets the same answer as a wrong one
        right = await attempt(guesser, "alice-key")
        assert right.status_code == 429
        assert right.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # another address is not affected
        assert (await attempt(alice, "alice-key")).status_code == 200


def test_a_refused_client_may_try_again_once_its_budget_has_refilled() -> None:
    now = [0.0]
    failures = FailedAuthentications(
        RateLimiter(rate=0.5, burst=2, clock=lambda: now[0]), clock=lambda: now[0]
    )

    async def fail() -> float:
        return await failures.failed("198.51.100.1")

    waits = [asyncio.run(fail()) for _ in range(3)]
    assert waits == [0.0, 0.0, 2.0]
    assert failures.refused("198.51.100.1") == 2.0 and failures.refused("198.51.100.2") == 0.0
    now[0] = 1.5
    assert failures.refused("198.51.100.1") == 0.5
    now[0] = 2.0
    assert failures.refused("198.51.100.1") == 0.0
    assert asyncio.run(fail()) == 0.0  # the one token that came back
    assert asyncio.run(fail()) == 2.0


async def test_failed_authentications_are_counted_across_replicas_in_redis(
    gateway_factory: GatewayFactory, redis_url: str
) -> None:
    import uuid

    # an address of its own per run: the bucket lives in the shared Redis
    address = f"2001:db8::{uuid.uuid4().hex[:4]}"
    settings = {"api_keys": KEYS, "auth_failures_per_minute": 3, "rate_limit_redis_url": redis_url}
    async with (
        gateway_factory(**settings) as first,
        gateway_factory(**settings) as second,
        at(first, address) as via_first,
        at(second, address) as via_second,
    ):
        statuses = [
            (await attempt(client, "wrong")).status_code
            for client in (via_first, via_second, via_first, via_second)
        ]
        assert statuses == [401, 401, 401, 429]
        # the first replica learns of it at the client's next failure there
        assert (await attempt(via_first, "wrong")).status_code == 429
        assert (await attempt(via_first, "alice-key")).status_code == 429
        assert (await attempt(via_second, "alice-key")).status_code == 429


async def test_failed_authentications_over_websocket_count_against_the_same_budget(
    tmp_path: Path,
) -> None:
    from gql import Client
    from gql.transport.websockets import WebsocketsTransport

    from tests.api.test_live_updates import serve

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        api_keys=KEYS,
        auth_failures_per_minute=2,
    )

    async def connect(key: str) -> None:
        transport = WebsocketsTransport(
            url=f"ws://{base}/graphql",
            init_payload={"Authorization": f"Bearer {key}"},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        async with Client(transport=transport):
            pass

    async with serve(settings, sandboxes=make_sandboxes()) as base:
        await connect("alice-key")  # accepted: nothing counted
        for _ in range(3):  # two within the budget, and one too many
            with pytest.raises(Exception):  # noqa: B017, PT011 - the server closes with 4403
                await connect("wrong")
        async with httpx.AsyncClient(base_url=f"http://{base}") as http:
            over_http = await attempt(http, "alice-key")
        assert over_http.status_code == 429
        with pytest.raises(Exception):  # noqa: B017, PT011 - refused before the key is read
            await connect("alice-key")


async def test_the_open_sandbox_answers_a_wrong_key_with_401_and_a_missing_one_as_the_demo_customer(
    gateway_factory: GatewayFactory,
) -> None:
    """No keys configured: only a caller that sends no credential is the demo customer, so
    a client's handling of a 401 can be tried in the sandbox; wrong keys still count
    against the address' budget of failures."""
    async with (
        gateway_factory(auth_failures_per_minute=2) as gw,
        at(gw, "203.0.113.20") as guesser,
        at(gw, "203.0.113.21") as anonymous,
    ):
        assert gw.services.authenticator.is_open
        wrong = [await attempt(guesser, "not-a-key") for _ in range(3)]
        assert [r.status_code for r in wrong] == [401, 401, 429]
        assert wrong[0].json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert wrong[0].headers["www-authenticate"] == "Bearer"
        assert wrong[2].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        mine = await anonymous.post(
            "/graphql", json={"query": "{ orders(first: 1) { edges { node { id } } } }"}
        )
        assert mine.status_code == 200 and "errors" not in mine.json()


async def test_the_open_sandbox_rejects_a_websocket_whose_connection_init_has_a_wrong_key(
    tmp_path: Path,
) -> None:
    from gql import Client, gql
    from gql.transport.exceptions import TransportConnectionFailed
    from gql.transport.websockets import WebsocketsTransport
    from websockets.exceptions import ConnectionClosed

    from tests.api.test_live_updates import serve

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")

    def transport(init_payload: dict[str, Any]) -> WebsocketsTransport:
        return WebsocketsTransport(
            url=f"ws://{base}/graphql",
            init_payload=init_payload,
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )

    async with serve(settings, sandboxes=make_sandboxes()) as base:
        with pytest.raises(TransportConnectionFailed) as refused:
            async with Client(transport=transport({"Authorization": "Bearer not-a-key"})):
                pass
        closed = refused.value.__cause__
        assert isinstance(closed, ConnectionClosed) and closed.rcvd is not None
        assert closed.rcvd.code == 4403  # graphql-transport-ws: connection_init refused
        # no credential at all: the demo customer, as over HTTP
        async with Client(transport=transport({})) as session:
            answer = await session.execute(gql("{ __typename }"))
        assert answer == {"__typename": "Query"}
