"""Buying, following, topping up and cancelling, end to end through GraphQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Gateway, GatewayFactory, make_sandboxes

# every order moves only along the purchase state table's lines
pytestmark = pytest.mark.usefixtures("declared_moves_only")

ORDER_FIELDS = """
  __typename
  ... on Order {
    id provider providerOrderId reference idempotencyKey status providerStatus
    total { amount currency } createdAt updatedAt failureReason
    items { packageId quantity unitPrice { amount currency } esims { iccid } }
    esims { iccid provider status lpa smdpAddress activationCode qrCodeUrl qrCodeSvg
            iosInstallUrl androidInstallUrl pin puk apn }
  }
  ... on Error { message }
  ... on ValidationError { field }
  ... on ProviderError { provider errorCode statusCode retryable orderId }
"""
MUTATION_FIELDS = (
    ORDER_FIELDS
    + """
  ... on IdempotencyConflictError { idempotencyKey }
  ... on UnsupportedOperationError { provider operation }
"""
)

CREATE = f"""
mutation Create($input: CreateOrderInput!) {{ createOrder(input: $input) {{ {MUTATION_FIELDS} }} }}
"""
ORDER = f"query Order($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
TOPUP = f"mutation Topup($input: TopupInput!) {{ topup(input: $input) {{ {MUTATION_FIELDS} }} }}"
CANCEL = f"""
mutation Cancel($input: CancelOrderInput!) {{
  cancelOrder(input: $input) {{
    {ORDER_FIELDS} ... on UnsupportedOperationError {{ provider operation }}
  }}
}}
"""
PACKAGES = """
query Packages($filter: PackageFilter, $first: Int, $after: String) {
  packages(filter: $filter, first: $first, after: $after) {
    totalCount
    edges { cursor node { id provider packageId name days dataMb unlimited topup
      requiresTravelDate countryCodes price { amount currency } priceUsd { amount currency } } }
    pageInfo { hasNextPage endCursor }
    providerErrors { provider errorCode }
  }
}
"""


async def a_package(gw: Gateway, provider: str, **flt: Any) -> dict[str, Any]:
    result = await gw.execute(PACKAGES, filter={"provider": provider, **flt}, first=100)
    for edge in result["packages"]["edges"]:
        node: dict[str, Any] = edge["node"]
        if not node["requiresTravelDate"]:
            return node
    raise AssertionError(f"no orderable {provider} package")


async def buy(
    gw: Gateway,
    provider: str,
    quantity: int = 1,
    key: str | None = None,
    package_id: str | None = None,
) -> dict[str, Any]:
    if package_id is None:
        package_id = (await a_package(gw, provider))["packageId"]
    payload: dict[str, Any] = {
        "provider": provider,
        "items": [{"packageId": package_id, "quantity": quantity}],
    }
    if key is not None:
        payload["idempotencyKey"] = key
    result: dict[str, Any] = (await gw.execute(CREATE, input=payload))["createOrder"]
    return result


async def test_packages_from_both_providers_are_listed_cheapest_first_in_usd(
    gateway: Gateway,
) -> None:
    result = (await gateway.execute(PACKAGES, first=100))["packages"]
    nodes = [edge["node"] for edge in result["edges"]]
    assert {n["provider"] for n in nodes} <= {"ROAMIFY", "SIMPLIFYTRIP"}
    assert result["totalCount"] > 100 and result["pageInfo"]["hasNextPage"]
    prices = [Decimal(n["priceUsd"]["amount"]) for n in nodes]
    assert prices == sorted(prices)
    everything = (await gateway.execute(PACKAGES, first=100, filter={"provider": "SIMPLIFYTRIP"}))[
        "packages"
    ]
    assert {e["node"]["price"]["currency"] for e in everything["edges"]} == {"VND"}
    assert result["providerErrors"] == []


async def test_paging_through_packages_visits_each_once(gateway: Gateway) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = (await gateway.execute(PACKAGES, first=50, after=after, filter={"country": "JP"}))[
            "packages"
        ]
        seen.extend(edge["node"]["id"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == page["totalCount"] > 0


async def test_buying_a_roamify_esim_returns_its_profile_qr_code_and_install_links(
    gateway: Gateway,
) -> None:
    order = await buy(gateway, "ROAMIFY", quantity=2)
    assert order["__typename"] == "Order", order
    assert order["status"] == "COMPLETED" and order["providerStatus"] == "COMPLETED"
    assert order["total"]["currency"] == "USD" and Decimal(order["total"]["amount"]) > 0
    assert len(order["esims"]) == 2
    for esim in order["esims"]:
        assert esim["lpa"].startswith("LPA:1$")
        assert esim["activationCode"] and esim["lpa"].endswith(esim["activationCode"])
        assert esim["qrCodeSvg"].startswith("<svg")
        assert esim["iosInstallUrl"].startswith("https://esimsetup.apple.com/")
        assert esim["androidInstallUrl"].startswith("https://esimsetup.android.com/")
    assert sum(len(item["esims"]) for item in order["items"]) == 2
    assert gateway.roamify.control.calls.count("POST", "/api/esim/order") == 1
    assert gateway.roamify.control.calls.count("POST", "/api/esim/apply") == 1


async def test_buying_a_simplifytrip_esim_follows_it_to_completed(gateway: Gateway) -> None:
    order = await buy(gateway, "SIMPLIFYTRIP")
    assert order["__typename"] == "Order", order
    assert order["status"] == "COMPLETED" and order["providerStatus"] == "SUCCESS"
    assert order["total"]["currency"] == "VND"
    [esim] = order["esims"]
    assert esim["provider"] == "SIMPLIFYTRIP" and esim["lpa"].startswith("LPA:1$")
    assert esim["qrCodeUrl"] and esim["pin"] and esim["puk"]
    assert esim["iosInstallUrl"].endswith(esim["lpa"])
    assert gateway.simplifytrip.control.calls.count("POST", "/api/v1/orders") == 1


async def test_an_order_not_ready_by_the_deadline_comes_back_processing_then_completes(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(order_deadline=0.3, fulfil_delay=30) as gw:
        order = await buy(gw, "SIMPLIFYTRIP")
        assert order["__typename"] == "Order" and order["status"] == "PROCESSING"
        assert order["esims"] == []
        await gw.simplifytrip.settle()
        for _ in range(100):
            later = (await gw.execute(ORDER, id=order["id"]))["order"]
            if later["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.05)
        assert later["status"] == "COMPLETED" and len(later["esims"]) == 1
        assert gw.simplifytrip.control.calls.count("POST", "/api/v1/orders") == 1


async def test_the_same_key_and_payload_return_the_same_order_and_buy_once(
    gateway: Gateway,
) -> None:
    package = await a_package(gateway, "ROAMIFY")
    first = await buy(gateway, "ROAMIFY", key="retry-me", package_id=package["packageId"])
    again = await buy(gateway, "ROAMIFY", key="retry-me", package_id=package["packageId"])
    assert first["id"] == again["id"] and again["idempotencyKey"] == "retry-me"
    assert [e["iccid"] for e in first["esims"]] == [e["iccid"] for e in again["esims"]]
    assert gateway.roamify.control.calls.count("POST", "/api/esim/order") == 1


async def test_concurrent_duplicates_buy_once(gateway: Gateway) -> None:
    package = await a_package(gateway, "SIMPLIFYTRIP")
    results = await asyncio.gather(
        *(
            buy(gateway, "SIMPLIFYTRIP", key="burst", package_id=package["packageId"])
            for _ in range(8)
        )
    )
    assert len({r["id"] for r in results}) == 1
    assert gateway.simplifytrip.control.calls.count("POST", "/api/v1/orders") == 1


async def test_a_key_reused_with_another_payload_is_an_idempotency_conflict(
    gateway: Gateway,
) -> None:
    package = await a_package(gateway, "ROAMIFY")
    await buy(gateway, "ROAMIFY", key="k-1", package_id=package["packageId"])
    other = await buy(gateway, "ROAMIFY", key="k-1", quantity=2, package_id=package["packageId"])
    assert other["__typename"] == "IdempotencyConflictError"
    assert other["idempotencyKey"] == "k-1"
    assert gateway.roamify.control.calls.count("POST", "/api/esim/order") == 1


async def test_a_generated_key_is_returned_when_none_is_sent(gateway: Gateway) -> None:
    order = await buy(gateway, "ROAMIFY")
    assert len(order["idempotencyKey"]) == 36


@pytest.mark.parametrize(
    ("items", "key", "field"),
    [
        ([], None, "items"),
        ([{"packageId": "PKG", "quantity": 0}], None, "items[0].quantity"),
        ([{"packageId": "PKG", "quantity": 10000}], None, "items[0].quantity"),
        ([{"packageId": "no-such-package", "quantity": 1}], None, "items[0].packageId"),
        ([{"packageId": "x" * 5000, "quantity": 1}], None, "items[0].packageId"),
        ([{"packageId": "", "quantity": 1}], None, "items[0].packageId"),
        (
            [{"packageId": "PKG", "quantity": 1}, {"packageId": "PKG", "quantity": 1}],
            None,
            "items[1].packageId",
        ),
        ([{"packageId": "PKG", "quantity": 1}], "k" * 5000, "idempotencyKey"),
        ([{"packageId": "PKG", "quantity": 1}], "", "idempotencyKey"),
    ],
)
async def test_bad_input_is_a_validation_error_that_leaves_nothing_behind(
    gateway: Gateway, items: list[dict[str, Any]], key: str | None, field: str
) -> None:
    package = await a_package(gateway, "ROAMIFY")
    for item in items:
        if item["packageId"] == "PKG":
            item["packageId"] = package["packageId"]
    calls_before = await gateway.upstream_calls()
    payload: dict[str, Any] = {"provider": "ROAMIFY", "items": items}
    if key is not None:
        payload["idempotencyKey"] = key
    result = (await gateway.execute(CREATE, input=payload))["createOrder"]
    assert result["__typename"] == "ValidationError" and result["field"] == field
    assert (await gateway.ledger.orders.page(owner=None, first=10)).records == ()
    assert await gateway.upstream_calls() == calls_before


async def test_an_unknown_provider_is_rejected_by_graphql_validation(gateway: Gateway) -> None:
    response = await gateway.post(
        CREATE, {"input": {"provider": "AIRALO", "items": [{"packageId": "x", "quantity": 1}]}}
    )
    body = response.json()
    assert body.get("data") is None and "AIRALO" in body["errors"][0]["message"]
    assert (await gateway.ledger.orders.page(owner=None, first=10)).records == ()


async def test_a_malformed_order_id_is_a_validation_error_and_an_unknown_one_not_found(
    gateway: Gateway,
) -> None:
    bad = (await gateway.execute(ORDER, id="not-an-id"))["order"]
    assert bad["__typename"] == "ValidationError" and bad["field"] == "id"
    from esim_gateway.schema.ids import order_global_id

    missing = (
        await gateway.execute(ORDER, id=order_global_id("00000000-0000-4000-8000-000000000000"))
    )["order"]
    assert missing["__typename"] == "NotFoundError"


async def test_a_provider_refusal_is_a_provider_error_with_its_code_and_status(
    gateway_factory: GatewayFactory,
) -> None:
    from esim_gateway.app import Sandboxes
    from esim_gateway.sandbox.roamify import create_roamify_sandbox

    poor = Sandboxes(
        roamify=create_roamify_sandbox(packages_per_country=3, initial_balance=Decimal("0.50")),
        simplifytrip=make_sandboxes().simplifytrip,
    )
    async with gateway_factory(sandboxes=poor) as gw:
        result = await buy(gw, "ROAMIFY", key="no-money")
        assert result["__typename"] == "ProviderError", result
        assert result["provider"] == "ROAMIFY" and result["statusCode"] == 422
        assert result["errorCode"] == "INSUFFICIENT_BALANCE" and not result["retryable"]
        assert result["orderId"]
        replay = await buy(gw, "ROAMIFY", key="no-money")
        assert replay == result
        assert gw.roamify.control.calls.count("POST", "/api/esim/order") == 1
        order = (await gw.execute(ORDER, id=result["orderId"]))["order"]
        assert order["status"] == "FAILED" and order["failureReason"]


async def test_an_upstream_5xx_is_sent_again_at_once_only_where_references_are_unique(
    gateway: Gateway,
) -> None:
    # SimplifyTrip refuses a second order with the same trackId, so after a lookup finds
    # nothing the purchase may go again at once (Roamify waits for its quiet period:
    # tests/reliability/test_unknown_outcomes.py)
    gateway.simplifytrip.control.faults.arm(
        "POST",
        "/api/v1/orders",
        status=500,
        body={"statusCode": 500, "errorCode": "INTERNAL_SERVER_ERROR", "message": "oops"},
    )
    order = await buy(gateway, "SIMPLIFYTRIP", key="flaky")
    assert order["__typename"] == "Order" and order["status"] == "COMPLETED"
    calls = [
        (c.method, c.path)
        for c in gateway.simplifytrip.control.calls.calls
        if c.path.startswith("/api/v1/orders")
    ]
    assert calls[0] == ("POST", "/api/v1/orders") and calls[1][0] == "GET"
    assert gateway.simplifytrip.control.calls.count("POST", "/api/v1/orders") == 2


async def test_a_response_lost_after_the_provider_committed_never_buys_twice(
    gateway: Gateway,
) -> None:
    gateway.simplifytrip.control.faults.arm("POST", "/api/v1/orders", drop_after_commit=True)
    order = await buy(gateway, "SIMPLIFYTRIP", key="dropped")
    assert order["__typename"] == "Order" and order["status"] == "COMPLETED"
    assert gateway.simplifytrip.control.calls.count("POST", "/api/v1/orders") == 1


async def test_topping_up_a_roamify_esim_with_a_compatible_package(gateway: Gateway) -> None:
    package = await a_package(gateway, "ROAMIFY", topup=True)
    order = await buy(gateway, "ROAMIFY", package_id=package["packageId"])
    iccid = order["esims"][0]["iccid"]
    offers = await gateway.services.providers.get(
        __import__("esim_gateway.domain", fromlist=["ProviderName"]).ProviderName.ROAMIFY
    ).topup_packages(iccid)
    assert offers
    result = (
        await gateway.execute(
            TOPUP,
            input={
                "iccid": iccid,
                "packageId": offers[0].package_id,
                "idempotencyKey": "top-1",
            },
        )
    )["topup"]
    assert result["__typename"] == "Order" and result["status"] == "COMPLETED", result
    assert gateway.roamify.control.calls.count("POST", "/api/esim/order/topup") == 1
    wrong = (
        await gateway.execute(
            TOPUP,
            input={
                "iccid": iccid,
                "packageId": "not-a-topup",
                "idempotencyKey": "top-2",
            },
        )
    )["topup"]
    assert wrong["__typename"] == "ValidationError" and wrong["field"] == "packageId"
    assert gateway.roamify.control.calls.count("POST", "/api/esim/order/topup") == 1


async def test_recharging_a_simplifytrip_sim_card(gateway: Gateway) -> None:
    from esim_gateway.domain import ProviderName

    iccid = "89860012017201244064"
    offers = await gateway.services.providers.get(ProviderName.SIMPLIFYTRIP).topup_packages(iccid)
    result = (
        await gateway.execute(
            TOPUP,
            input={
                "iccid": iccid,
                "packageId": offers[0].package_id,
                "idempotencyKey": "recharge-1",
            },
        )
    )["topup"]
    assert result["__typename"] == "Order" and result["status"] == "COMPLETED", result
    assert result["providerStatus"] == "SUCCESS"


async def test_cancelling_is_unsupported_on_roamify_and_refused_for_esims_on_simplifytrip(
    gateway: Gateway,
) -> None:
    roamify = await buy(gateway, "ROAMIFY")
    result = (await gateway.execute(CANCEL, input={"orderId": roamify["id"]}))["cancelOrder"]
    assert result["__typename"] == "UnsupportedOperationError"
    assert (result["provider"], result["operation"]) == ("ROAMIFY", "cancel")
    simplifytrip = await buy(gateway, "SIMPLIFYTRIP")
    refused = (await gateway.execute(CANCEL, input={"orderId": simplifytrip["id"]}))["cancelOrder"]
    assert refused["__typename"] == "CancellationNotAllowedError"


CREATE_NOW = """
mutation Create($input: CreateOrderInput!) {
  createOrder(input: $input, wait: false) { __typename ... on Order { id status } }
}
"""


async def test_wait_false_answers_at_once_and_a_webhook_completes_the_followed_order(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(fulfil_delay=0.5) as gw:
        package = await a_package(gw, "SIMPLIFYTRIP")
        # the driver would not poll again for 30 s: only the provider's webhook can make
        # it read the order before then
        gw.services.driver.poll_initial = 30.0
        created = (
            await gw.execute(
                CREATE_NOW,
                input={
                    "provider": "SIMPLIFYTRIP",
                    "items": [{"packageId": package["packageId"], "quantity": 1}],
                    "idempotencyKey": "no-wait",
                },
            )
        )["createOrder"]
        assert created["__typename"] == "Order" and created["status"] == "PENDING"
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while True:
            order = (await gw.execute(ORDER, id=created["id"]))["order"]
            if order["status"] == "COMPLETED":
                break
            assert loop.time() < end, order["status"]
            await asyncio.sleep(0.05)
        assert order["esims"] and order["esims"][0]["lpa"].startswith("LPA:1$")
        deliveries = gw.simplifytrip.webhooks.deliveries
        assert any(d["body"]["type"] == "PURCHASE_ORDER_SUCCESS" for d in deliveries)
        assert gw.simplifytrip.control.calls.count("POST", "/api/v1/orders") == 1
