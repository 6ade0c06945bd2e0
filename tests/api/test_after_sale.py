"""Refunds with their fee rules, provider balances, and top-up offers on an eSIM."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from esim_gateway.app import Sandboxes
from esim_gateway.config import Settings
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from tests.api.test_ordering import a_package, buy
from tests.conftest import Gateway, GatewayFactory, make_sandboxes

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
