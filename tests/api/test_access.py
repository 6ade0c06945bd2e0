"""Every operation needs a principal; customers see and act on only their own orders."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from strawberry import relay

from esim_gateway.config import Settings
from tests.api.test_esim_node import ESIM_NODE
from tests.api.test_ordering import CANCEL, CREATE, ORDER, TOPUP, a_package, buy
from tests.conftest import Gateway, GatewayFactory

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
