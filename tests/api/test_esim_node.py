"""`Esim implements Node`: a global id that survives re-reads (that only its owner resolves:
tests/api/test_access.py)."""

from __future__ import annotations

from strawberry import relay

from tests.api.test_ordering import buy
from tests.conftest import Gateway

ESIM_NODE = "query($id: ID!) { node(id: $id) { __typename id ... on Esim { iccid provider } } }"


async def test_an_esim_has_a_global_id_that_survives_re_reads(gateway: Gateway) -> None:
    order = await buy(gateway, "ROAMIFY")
    iccid = order["esims"][0]["iccid"]
    by_order = await gateway.execute(
        "query($id: ID!) { order(id: $id) { ... on Order { esims { id iccid } } } }",
        id=order["id"],
    )
    by_iccid = await gateway.execute(
        "query($i: String!) { esim(iccid: $i) { ... on Esim { id } } }", i=iccid
    )
    global_id = by_order["order"]["esims"][0]["id"]
    assert global_id == by_iccid["esim"]["id"]
    assert relay.GlobalID.from_id(global_id) == relay.GlobalID("Esim", iccid)
    node = (await gateway.execute(ESIM_NODE, id=global_id))["node"]
    assert node == {"__typename": "Esim", "id": global_id, "iccid": iccid, "provider": "ROAMIFY"}
