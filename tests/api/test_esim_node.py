"""`Esim implements Node`: a global id that survives re-reads, resolved by `node(id:)` for its
owner only."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry import relay

from tests.api.test_access import ALICE, BOB, KEYS, call
from tests.api.test_ordering import buy
from tests.conftest import Gateway, GatewayFactory

NODE = "query($id: ID!) { node(id: $id) { __typename id ... on Esim { iccid provider } } }"


@pytest.fixture
async def secured(gateway_factory: GatewayFactory) -> Any:
    async with gateway_factory(api_keys=KEYS, headers=ALICE) as gw:
        yield gw


async def test_an_esim_has_a_global_id_that_survives_re_reads(secured: Gateway) -> None:
    order = await buy(secured, "ROAMIFY")
    iccid = order["esims"][0]["iccid"]
    by_order = await secured.execute(
        "query($id: ID!) { order(id: $id) { ... on Order { esims { id iccid } } } }",
        id=order["id"],
    )
    by_iccid = await secured.execute(
        "query($i: String!) { esim(iccid: $i) { ... on Esim { id } } }", i=iccid
    )
    global_id = by_order["order"]["esims"][0]["id"]
    assert global_id == by_iccid["esim"]["id"]
    assert relay.GlobalID.from_id(global_id) == relay.GlobalID("Esim", iccid)
    node = (await secured.execute(NODE, id=global_id))["node"]
    assert node == {"__typename": "Esim", "id": global_id, "iccid": iccid, "provider": "ROAMIFY"}


async def test_another_customers_esim_is_null_like_a_missing_one(secured: Gateway) -> None:
    order = await buy(secured, "SIMPLIFYTRIP")
    global_id = str(relay.GlobalID("Esim", order["esims"][0]["iccid"]))
    assert (await call(secured, NODE, ALICE, id=global_id)).json()["data"]["node"]["id"]
    theirs = (await call(secured, NODE, BOB, id=global_id)).json()
    missing = (
        await call(secured, NODE, ALICE, id=str(relay.GlobalID("Esim", "8999999999999999999")))
    ).json()
    not_an_iccid = (await call(secured, NODE, ALICE, id=str(relay.GlobalID("Esim", "x")))).json()
    assert theirs == missing == not_an_iccid == {"data": {"node": None}}
