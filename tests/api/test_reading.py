"""Reading orders and eSIMs: listing, lookup, node ids, usage, and batching upstream calls."""

from __future__ import annotations

from typing import Any

from tests.api.test_ordering import ORDER_FIELDS, a_package, buy
from tests.conftest import Gateway, GatewayFactory

ORDERS = """
query Orders($filter: OrderFilter, $first: Int, $after: String) {
  orders(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id provider status reference
      esims { iccid lpa } items { packageId quantity esims { iccid } } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_orders_are_listed_newest_first_and_filtered(gateway: Gateway) -> None:
    first = await buy(gateway, "ROAMIFY")
    second = await buy(gateway, "SIMPLIFYTRIP")
    listed = (await gateway.execute(ORDERS))["orders"]
    assert [e["node"]["id"] for e in listed["edges"]] == [second["id"], first["id"]]
    only = (await gateway.execute(ORDERS, filter={"provider": "ROAMIFY"}))["orders"]
    assert [e["node"]["id"] for e in only["edges"]] == [first["id"]]
    by_status = (await gateway.execute(ORDERS, filter={"status": "FAILED"}))["orders"]
    assert by_status["edges"] == []
    paged = (await gateway.execute(ORDERS, first=1))["orders"]
    assert paged["pageInfo"]["hasNextPage"]
    rest = await gateway.execute(ORDERS, first=1, after=paged["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in rest["orders"]["edges"]] == [first["id"]]


async def test_first_is_capped_at_100(gateway: Gateway) -> None:
    response = await gateway.post("{ orders(first: 101) { edges { cursor } } }")
    body = response.json()
    assert body["data"] is None and "between 1 and 100" in body["errors"][0]["message"]


async def test_an_order_is_found_by_its_reference_and_as_a_node(gateway: Gateway) -> None:
    order = await buy(gateway, "SIMPLIFYTRIP")
    query = f"""query($p: Provider!, $r: String!) {{
      orderByReference(provider: $p, reference: $r) {{ {ORDER_FIELDS} }} }}"""
    found = await gateway.execute(query, p="SIMPLIFYTRIP", r=order["reference"])
    assert found["orderByReference"]["id"] == order["id"]
    node = await gateway.execute(
        "query($id: ID!) { node(id: $id) { __typename id ... on Order { status } } }",
        id=order["id"],
    )
    assert node["node"] == {"__typename": "Order", "id": order["id"], "status": "COMPLETED"}
    missing = await gateway.execute(query, p="ROAMIFY", r=order["reference"])
    assert missing["orderByReference"]["__typename"] == "NotFoundError"


async def test_an_esim_is_read_by_iccid_with_its_usage(gateway: Gateway) -> None:
    order = await buy(gateway, "ROAMIFY")
    iccid = order["esims"][0]["iccid"]
    query = """query($iccid: String!) { esim(iccid: $iccid) { __typename
      ... on Esim { iccid provider status lpa qrCodeSvg
        usage { __typename ... on EsimUsage { dataAllowedMb dataUsedMb dataRemainingMb }
                ... on Error { message } } }
      ... on Error { message } } }"""
    esim = (await gateway.execute(query, iccid=iccid))["esim"]
    assert esim["__typename"] == "Esim" and esim["iccid"] == iccid
    assert esim["usage"]["__typename"] == "EsimUsage"
    unknown = (await gateway.execute(query, iccid="8999999999999999999"))["esim"]
    assert unknown["__typename"] == "NotFoundError"
    invalid = (await gateway.execute(query, iccid="abc"))["esim"]
    assert invalid["__typename"] == "ValidationError"


async def _list_with_esims(gw: Gateway, first: int) -> dict[str, Any]:
    return await gw.execute(ORDERS, first=first)


async def test_listing_orders_with_their_esims_costs_one_call_per_distinct_resource(
    gateway: Gateway,
) -> None:
    package = await a_package(gateway, "ROAMIFY")
    st_package = await a_package(gateway, "SIMPLIFYTRIP")
    for i in range(6):
        await buy(gateway, "ROAMIFY", key=f"r{i}", package_id=package["packageId"])
        await buy(gateway, "SIMPLIFYTRIP", key=f"s{i}", package_id=st_package["packageId"])
    gateway.roamify.control.calls.clear()
    gateway.simplifytrip.control.calls.clear()
    aliased = ORDERS.replace(
        "orders(filter: $filter, first: $first, after: $after) {",
        "again: orders(first: $first) { edges { node { esims { iccid } } } }\n"
        "  orders(filter: $filter, first: $first, after: $after) {",
    )
    result = await gateway.execute(aliased, first=12)
    assert len(result["orders"]["edges"]) == 12
    assert all(len(e["node"]["esims"]) == 1 for e in result["orders"]["edges"])
    roamify_calls = gateway.roamify.control.calls.calls
    simplifytrip_calls = gateway.simplifytrip.control.calls.calls
    # one order read and one eSIM list per Roamify order; one read per SimplifyTrip order
    assert len(simplifytrip_calls) == 6
    assert len({(c.path, tuple(sorted(c.query.items()))) for c in roamify_calls}) == len(
        roamify_calls
    )
    assert len(roamify_calls) == 12


async def test_the_count_of_upstream_calls_does_not_grow_with_duplicates(
    gateway: Gateway,
) -> None:
    order = await buy(gateway, "SIMPLIFYTRIP")
    gateway.simplifytrip.control.calls.clear()
    fields = " ".join(
        f'o{i}: order(id: "{order["id"]}")'
        " { ... on Order { esims { iccid } items { quantity } } }"
        for i in range(10)
    )
    await gateway.execute(f"{{ {fields} }}")
    assert len(gateway.simplifytrip.control.calls.calls) == 1


async def test_one_provider_down_leaves_the_other_working(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory() as gw:
        gw.roamify.control.faults.arm(
            "GET",
            "/api/esim/packages",
            status=503,
            body={"message": "down", "status": "failed"},
            times=None,
        )
        result = (
            await gw.execute(
                "{ packages(first: 5) { totalCount edges { node { provider } }"
                " providerErrors { provider statusCode errorCode retryable } } }"
            )
        )["packages"]
        assert {e["node"]["provider"] for e in result["edges"]} == {"SIMPLIFYTRIP"}
        assert result["providerErrors"] == [
            {"provider": "ROAMIFY", "statusCode": 503, "errorCode": "HTTP_503", "retryable": True}
        ]


async def test_an_order_the_provider_cannot_show_still_resolves_from_the_ledger(
    gateway: Gateway,
) -> None:
    order = await buy(gateway, "SIMPLIFYTRIP", quantity=2)
    state = gateway.simplifytrip.state
    state.orders.pop(state.by_track.pop(order["reference"]))  # gone upstream
    result = await gateway.post(
        """{ orders { edges { node { status items { packageId quantity esims { iccid } }
        esims { iccid } providerError { provider statusCode errorCode } } } } }"""
    )
    body = result.json()
    assert "errors" not in body, body
    node = body["data"]["orders"]["edges"][0]["node"]
    assert node["items"] == [
        {"packageId": order["items"][0]["packageId"], "quantity": 2, "esims": []}
    ]
    assert node["esims"] == []
    assert node["providerError"] == {
        "provider": "SIMPLIFYTRIP",
        "statusCode": 404,
        "errorCode": "NOT_FOUND",
    }
