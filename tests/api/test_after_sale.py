"""Refunds with their fee rules, provider balances, top-up offers on an eSIM, and cancelling
placed orders by each provider's rule."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from esim_gateway.app import Sandboxes
from esim_gateway.config import Settings
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from tests.api.test_graphql_endpoint import access_lines
from tests.api.test_ordering import a_package, buy
from tests.conftest import Gateway, GatewayFactory, make_sandboxes, written_lines

# every order moves only along the purchase state table's lines
pytestmark = pytest.mark.usefixtures("declared_moves_only")

QUOTE = """query($o: ID!, $i: [String!]!) { refundQuote(orderId: $o, iccids: $i) { __typename
  ... on RefundQuote { fee { amount currency } amount { amount currency } rules }
  ... on Error { message } ... on ValidationError { field }
  ... on UnsupportedOperationError { provider operation } } }"""
REFUND_FIELDS = """__typename ... on Refund { id reference status iccids
  fee { amount currency } amount { amount currency } }
  ... on Error { message } ... on UnsupportedOperationError { provider operation }"""
REQUEST = f"""mutation($input: RequestRefundInput!) {{
  requestRefund(input: $input) {{ {REFUND_FIELDS} }} }}"""
CANCEL = f"""mutation($input: CancelRefundInput!) {{
  cancelRefund(input: $input) {{ {REFUND_FIELDS} }} }}"""
KEYS = Settings.from_mapping(
    {"ESIM_GATEWAY_API_KEYS": "alice:customer:alice-key,bob:customer:bob-key,ops:operator:ops-key"}
).api_keys


async def test_a_refund_shows_its_fee_first_and_is_made_once_per_key(gateway: Gateway) -> None:
    order = await buy(gateway, "SIMPLIFYTRIP", quantity=2)
    iccid = order["esims"][0]["iccid"]
    unit = Decimal(order["items"][0]["unitPrice"]["amount"])
    quote = (await gateway.execute(QUOTE, o=order["id"], i=[iccid]))["refundQuote"]
    assert quote["__typename"] == "RefundQuote"
    assert Decimal(quote["fee"]["amount"]) == 15000 and quote["fee"]["currency"] == "VND"
    assert Decimal(quote["amount"]["amount"]) == max(unit - 15000, Decimal(0))
    asked = {
        "orderId": order["id"],
        "iccids": [iccid],
        "reason": "trip cancelled",
        "idempotencyKey": "refund-1",
    }
    first = (await gateway.execute(REQUEST, input=asked))["requestRefund"]
    assert first["__typename"] == "Refund" and first["status"] == "REQUESTED"
    assert Decimal(first["amount"]["amount"]) == Decimal(quote["amount"]["amount"])
    again = (await gateway.execute(REQUEST, input=asked))["requestRefund"]
    assert again["id"] == first["id"]
    assert gateway.simplifytrip.control.calls.count("POST", "/api/v1/return-requests") == 1
    on_order = """query($id: ID!) { order(id: $id) { ... on Order { refundStatus
      refunds { id status amount { amount } } } } }"""
    listed = (await gateway.execute(on_order, id=order["id"]))["order"]
    assert [r["id"] for r in listed["refunds"]] == [first["id"]]
    assert listed["refunds"][0]["status"] == "REQUESTED" and listed["refundStatus"] == "NONE"
    cancelled = (await gateway.execute(CANCEL, input={"refundId": first["id"]}))["cancelRefund"]
    assert cancelled["status"] == "CANCELED"


async def test_a_completed_refund_shows_on_the_order(gateway: Gateway) -> None:
    order = await buy(gateway, "SIMPLIFYTRIP", quantity=2)
    refund = (
        await gateway.execute(
            REQUEST, input={"orderId": order["id"], "iccids": [order["esims"][0]["iccid"]]}
        )
    )["requestRefund"]
    gateway.simplifytrip.state.advance_return(refund["id"], to="COMPLETED")
    on_order = """query($id: ID!) { order(id: $id) { ... on Order { refundStatus
      refunds { status amount { amount } } } } }"""
    listed = (await gateway.execute(on_order, id=order["id"]))["order"]
    assert listed["refundStatus"] == "PARTIAL"
    assert listed["refunds"][0]["status"] == "COMPLETED"


async def test_refund_input_is_checked_before_anything_is_sent(gateway: Gateway) -> None:
    order = await buy(gateway, "SIMPLIFYTRIP")
    calls = gateway.simplifytrip.control.calls.count("POST", "/api/v1/return-requests")
    for iccids in ([], ["8999999999999999999"]):
        result = (await gateway.execute(REQUEST, input={"orderId": order["id"], "iccids": iccids}))[
            "requestRefund"
        ]
        assert result["__typename"] == "ValidationError", result
    assert gateway.simplifytrip.control.calls.count("POST", "/api/v1/return-requests") == calls
    roamify = await buy(gateway, "ROAMIFY")
    unsupported = (
        await gateway.execute(
            REQUEST, input={"orderId": roamify["id"], "iccids": [roamify["esims"][0]["iccid"]]}
        )
    )["requestRefund"]
    assert unsupported["__typename"] == "UnsupportedOperationError"
    assert (unsupported["provider"], unsupported["operation"]) == ("ROAMIFY", "refund")


async def test_only_the_owner_can_cancel_a_refund(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(api_keys=KEYS, headers={"authorization": "Bearer alice-key"}) as gw:
        order = await buy(gw, "SIMPLIFYTRIP")
        refund = (
            await gw.execute(
                REQUEST, input={"orderId": order["id"], "iccids": [order["esims"][0]["iccid"]]}
            )
        )["requestRefund"]
        response = await gw.post(
            CANCEL, {"input": {"refundId": refund["id"]}}, {"authorization": "Bearer bob-key"}
        )
        assert response.json()["data"]["cancelRefund"]["__typename"] == "NotFoundError"
        assert gw.simplifytrip.control.calls.count("POST", "/api/v1/return-requests/cancel") == 0


BALANCES = """{ providerBalances { __typename
  ... on ProviderBalanceList { balances { provider accountId balance { amount currency } low } }
  ... on Error { message } } }"""


async def test_operators_see_provider_balances_with_the_low_balance_flag(
    gateway_factory: GatewayFactory,
) -> None:
    sandboxes = Sandboxes(
        roamify=create_roamify_sandbox(packages_per_country=3, initial_balance=Decimal("101")),
        simplifytrip=make_sandboxes().simplifytrip,
    )
    async with gateway_factory(
        api_keys=KEYS, sandboxes=sandboxes, headers={"authorization": "Bearer alice-key"}
    ) as gw:
        customer = (await gw.execute(BALANCES))["providerBalances"]
        assert customer["__typename"] == "ForbiddenError"
        before = await gw.post(BALANCES, headers={"authorization": "Bearer ops-key"})
        listed = before.json()["data"]["providerBalances"]["balances"]
        assert {b["provider"] for b in listed} == {"ROAMIFY", "SIMPLIFYTRIP"}
        assert not any(b["low"] for b in listed)
        await buy(gw, "ROAMIFY")  # the balance drops under the 100 USD threshold
        await gw.roamify.settle()
        await asyncio.sleep(0.05)
        after = await gw.post(BALANCES, headers={"authorization": "Bearer ops-key"})
        roamify: list[dict[str, Any]] = [
            b
            for b in after.json()["data"]["providerBalances"]["balances"]
            if b["provider"] == "ROAMIFY"
        ]
        assert roamify[0]["low"] and Decimal(roamify[0]["balance"]["amount"]) < 100


async def test_an_esim_lists_its_compatible_topup_packages(gateway: Gateway) -> None:
    package = await a_package(gateway, "ROAMIFY", topup=True)
    order = await buy(gateway, "ROAMIFY", package_id=package["packageId"])
    query = """query($i: String!) { esim(iccid: $i) { ... on Esim { topupPackages {
      packageId price { amount currency } } } } }"""
    offers = (await gateway.execute(query, i=order["esims"][0]["iccid"]))["esim"]
    assert offers["topupPackages"] and all(
        o["price"]["currency"] == "USD" for o in offers["topupPackages"]
    )


# -- cancelling placed orders: each provider's rule, checked before it is called -----------

CANCEL_ORDER = """mutation($input: CancelOrderInput!) { cancelOrder(input: $input) { __typename
  ... on Order { id status providerStatus } ... on Error { message }
  ... on UnsupportedOperationError { provider operation }
  ... on CancellationNotAllowedError { provider orderKind productKind status providerStatus
    reason } } }"""
TOPUP_ORDER = """mutation($input: TopupInput!) { topup(input: $input) { __typename
  ... on Order { id status } } }"""
ST_CANCEL = ("POST", "/api/v1/orders/cancel")


async def cancel(gateway: Gateway, order_id: str) -> tuple[dict[str, Any], int]:
    """The answer, and how many provider calls this request made (its access line's
    count: background work of the gateway, such as a purchase's watch, is not in it)."""
    with written_lines() as stream:
        result: dict[str, Any] = (await gateway.execute(CANCEL_ORDER, input={"orderId": order_id}))[
            "cancelOrder"
        ]
    (line,) = access_lines(stream.getvalue())
    calls = line["provider_calls"]
    assert isinstance(calls, int)
    return result, calls


async def a_physical_sim_order(gateway: Gateway) -> str:
    """A physical-SIM order, placed at the provider and recorded as the driver records one.
    The gateway's catalog lists eSIMs only, so `createOrder` buys none: the test places it
    with the gateway's own SimplifyTrip client under the recorded order's reference."""
    from esim_gateway.domain import OrderState, ProviderName
    from esim_gateway.ledger.orders import NewOrder, Step
    from esim_gateway.providers.simplifytrip.gateway import SimplifyTripGateway
    from esim_gateway.schema.ids import order_global_id

    gateway_of = gateway.services.providers.get(ProviderName.SIMPLIFYTRIP)
    assert isinstance(gateway_of, SimplifyTripGateway)
    client = gateway_of.client
    sku = (await client.all_products(type="SIM"))[0].variations[0].sku
    record, _ = await gateway.ledger.orders.claim(
        NewOrder(
            owner="sandbox-demo",
            kind="order",
            provider=ProviderName.SIMPLIFYTRIP,
            idempotency_key=f"sim-{sku}-{len(gateway.simplifytrip.state.orders)}",
            request={"items": [{"packageId": sku, "quantity": 1}]},
        )
    )
    await gateway.ledger.orders.update(record.id, step=Step.SUBMITTING)
    created = await client.create_order(record.reference, [(f"{record.reference}-0", sku, 1)])
    assert created.status == "NEW"
    await gateway.ledger.orders.update(
        record.id,
        provider_order_id=created.order_id,
        state=OrderState.PENDING,
        provider_status="NEW",
        step=Step.SUBMITTED,
    )
    return order_global_id(record.id)


async def test_a_simplifytrip_esim_order_is_refused_by_its_rule_without_calling_simplifytrip(
    gateway: Gateway,
) -> None:
    order = await buy(gateway, "SIMPLIFYTRIP")
    assert order["status"] == "COMPLETED"
    refused, calls = await cancel(gateway, order["id"])
    assert refused["__typename"] == "CancellationNotAllowedError"
    assert (refused["provider"], refused["orderKind"], refused["productKind"]) == (
        "SIMPLIFYTRIP",
        "ORDER",
        "ESIM",
    )
    assert (refused["status"], refused["providerStatus"], refused["reason"]) == (
        "COMPLETED",
        "SUCCESS",
        "ORDER_KIND",
    )
    assert "physical-SIM orders still NEW" in refused["message"]
    assert "an eSIM order" in refused["message"]
    assert "No eligible order" not in refused["message"]
    assert calls == 0
    assert gateway.simplifytrip.control.calls.count(*ST_CANCEL) == 0


async def test_a_simplifytrip_recharge_is_refused_as_a_top_up_without_calling_simplifytrip(
    gateway: Gateway,
) -> None:
    from esim_gateway.domain import ProviderName

    iccid = "89860012017201244064"  # a TEST_MODE SIM card (providers.md 2.4)
    providers = gateway.services.providers
    offers = await providers.get(ProviderName.SIMPLIFYTRIP).topup_packages(iccid)
    recharge = {"iccid": iccid, "packageId": offers[0].package_id, "idempotencyKey": "rc-1"}
    topped = (await gateway.execute(TOPUP_ORDER, input=recharge))["topup"]
    assert topped["__typename"] == "Order" and topped["status"] == "COMPLETED"
    refused, calls = await cancel(gateway, topped["id"])
    assert refused["__typename"] == "CancellationNotAllowedError"
    assert (refused["orderKind"], refused["productKind"], refused["reason"]) == (
        "TOPUP",
        "SIM_RECHARGE",
        "ORDER_KIND",
    )
    assert calls == 0


async def test_a_roamify_order_is_unsupported_without_calling_roamify(gateway: Gateway) -> None:
    order = await buy(gateway, "ROAMIFY")
    refused, calls = await cancel(gateway, order["id"])
    assert refused["__typename"] == "UnsupportedOperationError"
    assert (refused["provider"], refused["operation"]) == ("ROAMIFY", "cancel")
    assert "no order cancellation" in refused["message"]
    assert calls == 0


async def test_a_new_physical_sim_order_is_cancelled_at_simplifytrip(gateway: Gateway) -> None:
    order_id = await a_physical_sim_order(gateway)
    cancelled, calls = await cancel(gateway, order_id)
    assert cancelled["__typename"] == "Order", cancelled
    assert (cancelled["status"], cancelled["providerStatus"]) == ("CANCELLED", "CANCELED")
    assert gateway.simplifytrip.control.calls.count(*ST_CANCEL) == 1 and calls >= 1


async def test_a_physical_sim_order_past_new_is_refused_by_its_status_without_a_call(
    gateway: Gateway,
) -> None:
    order_id = await a_physical_sim_order(gateway)
    # the ledger learns that the SIM was confirmed (as a webhook would tell it)
    from esim_gateway.schema.ids import parse_order_id

    await gateway.ledger.orders.update(
        parse_order_id(order_id), provider_status="CONFIRMED", state="PROCESSING"
    )
    refused, calls = await cancel(gateway, order_id)
    assert refused["__typename"] == "CancellationNotAllowedError"
    assert (refused["productKind"], refused["status"], refused["providerStatus"]) == (
        None,  # the gateway's catalog does not list physical SIMs
        "PROCESSING",
        "CONFIRMED",
    )
    assert refused["reason"] == "ORDER_STATUS"
    assert "only while they are NEW" in refused["message"]
    assert calls == 0


async def test_a_refusal_the_ledger_could_not_foresee_is_explained_from_the_providers_status(
    gateway: Gateway,
) -> None:
    order_id = await a_physical_sim_order(gateway)
    order = next(iter(gateway.simplifytrip.state.orders.values()))
    gateway.simplifytrip.state.advance_sim_order(order.id)  # no webhook reaches the gateway
    refused, calls = await cancel(gateway, order_id)
    assert refused["__typename"] == "CancellationNotAllowedError"
    assert (refused["providerStatus"], refused["reason"]) == ("CONFIRMED", "ORDER_STATUS")
    assert "No eligible order" not in refused["message"]
    assert gateway.simplifytrip.control.calls.count(*ST_CANCEL) == 1 and calls >= 1
