"""Quotes: a firm price before money is taken, and orders that keep to it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from esim_gateway.config import Markup
from esim_gateway.domain import ProviderName
from tests.api.test_access import ALICE, BOB, KEYS
from tests.api.test_ordering import a_package
from tests.conftest import Gateway, GatewayFactory

QUOTE = """
mutation Quote($input: QuoteOrderInput!) {
  quoteOrder(input: $input) {
    __typename
    ... on OrderQuote {
      quoteId provider expiresAt canFulfil problems balanceSufficient
      total { amount currency } totalUsd { amount currency } retailTotal { amount currency }
      lines {
        packageId quantity listed package { packageId name }
        unitPrice { amount currency } unitPriceUsd { amount currency }
        total { amount currency } totalUsd { amount currency }
        retailUnitPrice { amount currency } retailTotal { amount currency }
        capabilities { topup cancel usage }
      }
    }
    ... on Error { message }
    ... on ValidationError { field }
  }
}
"""
CREATE = """
mutation Create($input: CreateOrderInput!) {
  createOrder(input: $input) {
    __typename
    ... on Order { id status fromQuote total { amount currency } }
    ... on Error { message }
    ... on ValidationError { field }
    ... on QuoteExpiredError { quoteId expiredAt }
    ... on PriceChangedError { quoteId quotedTotal currentTotal currency }
    ... on QuoteUsedError { quoteId orderId }
  }
}
"""
CANCEL = """mutation($input: CancelOrderInput!) { cancelOrder(input: $input) { __typename
  ... on Order { status } ... on Error { message } } }"""
PURCHASES = {
    ProviderName.ROAMIFY: ("POST", "/api/esim/order"),
    ProviderName.SIMPLIFYTRIP: ("POST", "/api/v1/orders"),
}


def purchases(gw: Gateway, provider: ProviderName = ProviderName.ROAMIFY) -> int:
    sandbox = gw.roamify if provider is ProviderName.ROAMIFY else gw.simplifytrip
    return sandbox.control.calls.count(*PURCHASES[provider])


def order_input(package_id: str, quantity: int = 1, provider: str = "ROAMIFY") -> dict[str, Any]:
    return {"provider": provider, "items": [{"packageId": package_id, "quantity": quantity}]}


async def quote(gw: Gateway, payload: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = (await gw.execute(QUOTE, input=payload))["quoteOrder"]
    return result


async def create(gw: Gateway, payload: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = (await gw.execute(CREATE, input=payload))["createOrder"]
    return result


async def reprice_roamify(gw: Gateway, package_id: str, delta: float) -> None:
    """The provider changes a price; the gateway's catalog sees it on its next refresh."""
    package, _ = gw.roamify.state.catalog.packages[package_id]
    package["price"] = round(float(package["price"]) + delta, 2)
    await gw.services.catalog.refresh(ProviderName.ROAMIFY)


async def test_a_quote_prices_each_line_in_both_currencies_and_buys_nothing(
    gateway: Gateway,
) -> None:
    package = await a_package(gateway, "ROAMIFY")
    answer = await quote(gateway, order_input(package["packageId"], 2))
    assert answer["__typename"] == "OrderQuote"
    assert answer["canFulfil"] is True and answer["problems"] == []
    assert answer["balanceSufficient"] is True
    assert answer["quoteId"] and answer["expiresAt"]
    (line,) = answer["lines"]
    unit = Decimal(package["price"]["amount"])
    assert line["listed"] is True and line["package"]["packageId"] == package["packageId"]
    assert line["unitPrice"] == {"amount": package["price"]["amount"], "currency": "USD"}
    assert Decimal(line["total"]["amount"]) == unit * 2
    assert Decimal(answer["total"]["amount"]) == unit * 2
    assert answer["totalUsd"]["currency"] == "USD"
    assert line["retailUnitPrice"] is None and answer["retailTotal"] is None
    assert line["capabilities"] == {"topup": package["topup"], "cancel": False, "usage": True}
    assert purchases(gateway) == 0
    assert (await gateway.ledger.orders.page(owner=None, first=5)).records == ()


async def test_a_simplifytrip_quote_is_in_dong_with_its_usd_value(gateway: Gateway) -> None:
    package = await a_package(gateway, "SIMPLIFYTRIP")
    answer = await quote(gateway, order_input(package["packageId"], 3, "SIMPLIFYTRIP"))
    assert answer["__typename"] == "OrderQuote" and answer["canFulfil"] is True
    assert answer["total"]["currency"] == "VND"
    assert Decimal(answer["total"]["amount"]) == Decimal(package["price"]["amount"]) * 3
    rate = gateway.services.prices.rate("VND")
    assert rate is not None
    expected = (Decimal(answer["total"]["amount"]) / rate.units_per_usd).quantize(Decimal("0.01"))
    assert Decimal(answer["totalUsd"]["amount"]) == expected
    # SimplifyTrip cancels physical-SIM orders only: an eSIM order cannot be cancelled
    (line,) = answer["lines"]
    assert line["capabilities"] == {"topup": package["topup"], "cancel": False, "usage": True}
    assert purchases(gateway, ProviderName.SIMPLIFYTRIP) == 0


async def test_a_quote_shows_the_retail_price_when_a_markup_is_set(
    gateway_factory: GatewayFactory,
) -> None:
    markup = Markup(Decimal(10), Decimal("0.50"))
    async with gateway_factory(markups=(("roamify", markup),)) as gw:
        package = await a_package(gw, "ROAMIFY")
        answer = await quote(gw, order_input(package["packageId"], 2))
    unit = Decimal(package["price"]["amount"])
    retail = (unit * Decimal("1.1") + Decimal("0.50")).quantize(Decimal("0.01"))
    (line,) = answer["lines"]
    assert Decimal(line["retailUnitPrice"]["amount"]) == retail
    assert Decimal(line["retailTotal"]["amount"]) == retail * 2
    assert Decimal(answer["retailTotal"]["amount"]) == retail * 2


async def test_an_unlisted_package_is_quoted_as_not_fulfillable_without_a_quote_id(
    gateway: Gateway,
) -> None:
    listed = await a_package(gateway, "ROAMIFY")
    payload = {
        "provider": "ROAMIFY",
        "items": [
            {"packageId": listed["packageId"], "quantity": 1},
            {"packageId": "esim-atlantis-30days-1gb-all", "quantity": 1},
        ],
    }
    answer = await quote(gateway, payload)
    assert answer["__typename"] == "OrderQuote"
    assert answer["canFulfil"] is False and answer["quoteId"] is None
    assert answer["total"] is None and answer["expiresAt"] is None
    assert any("esim-atlantis-30days-1gb-all" in problem for problem in answer["problems"])
    first, second = answer["lines"]
    assert first["listed"] is True and first["unitPrice"] is not None
    assert second["listed"] is False and second["unitPrice"] is None
    assert second["package"] is None and second["capabilities"] is None


async def test_a_quote_says_when_the_balance_does_not_cover_the_order(gateway: Gateway) -> None:
    package = await a_package(gateway, "ROAMIFY")
    gateway.roamify.state.balance = Decimal(0)
    answer = await quote(gateway, order_input(package["packageId"]))
    assert answer["balanceSufficient"] is False and answer["canFulfil"] is False
    assert any("balance" in problem for problem in answer["problems"])
    # the price itself is firm: the quote can still be held while the balance is topped up
    assert answer["quoteId"] is not None


async def test_bad_quote_input_is_a_validation_error(gateway: Gateway) -> None:
    package = await a_package(gateway, "ROAMIFY")
    answer = await quote(gateway, order_input(package["packageId"], 0))
    assert answer["__typename"] == "ValidationError"
    assert answer["field"] == "items[0].quantity"


async def test_an_order_with_its_quote_is_bought_at_the_quoted_price(gateway: Gateway) -> None:
    package = await a_package(gateway, "ROAMIFY")
    quoted = await quote(gateway, order_input(package["packageId"], 2))
    order = await create(
        gateway, {**order_input(package["packageId"], 2), "quoteId": quoted["quoteId"]}
    )
    assert order["__typename"] == "Order", order
    assert order["fromQuote"] == quoted["quoteId"]
    assert Decimal(order["total"]["amount"]) == Decimal(quoted["total"]["amount"])
    assert purchases(gateway) == 1


async def test_an_order_whose_price_moved_since_its_quote_is_refused_and_buys_nothing(
    gateway: Gateway,
) -> None:
    package = await a_package(gateway, "ROAMIFY")
    quoted = await quote(gateway, order_input(package["packageId"]))
    await reprice_roamify(gateway, package["packageId"], 1.0)
    refused = await create(
        gateway, {**order_input(package["packageId"]), "quoteId": quoted["quoteId"]}
    )
    assert refused["__typename"] == "PriceChangedError", refused
    assert refused["quoteId"] == quoted["quoteId"] and refused["currency"] == "USD"
    assert Decimal(refused["quotedTotal"]) == Decimal(package["price"]["amount"])
    assert Decimal(refused["currentTotal"]) == Decimal(package["price"]["amount"]) + 1
    assert purchases(gateway) == 0
    assert (await gateway.ledger.orders.page(owner=None, first=5)).records == ()


async def test_a_retried_order_returns_the_order_even_after_its_price_moved(
    gateway: Gateway,
) -> None:
    package = await a_package(gateway, "ROAMIFY")
    quoted = await quote(gateway, order_input(package["packageId"]))
    payload = {
        **order_input(package["packageId"]),
        "quoteId": quoted["quoteId"],
        "idempotencyKey": "quoted-1",
    }
    first = await create(gateway, payload)
    await reprice_roamify(gateway, package["packageId"], 1.0)
    again = await create(gateway, payload)
    assert first["__typename"] == again["__typename"] == "Order"
    assert first["id"] == again["id"]
    assert purchases(gateway) == 1


async def test_an_expired_quote_is_refused_and_buys_nothing(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(quote_ttl=0.0) as gw:
        package = await a_package(gw, "ROAMIFY")
        quoted = await quote(gw, order_input(package["packageId"]))
        refused = await create(
            gw, {**order_input(package["packageId"]), "quoteId": quoted["quoteId"]}
        )
        assert refused["__typename"] == "QuoteExpiredError", refused
        assert refused["quoteId"] == quoted["quoteId"]
        assert refused["expiredAt"] == quoted["expiresAt"]
        assert purchases(gw) == 0


async def test_a_quote_for_another_order_is_refused(gateway: Gateway) -> None:
    package = await a_package(gateway, "ROAMIFY")
    quoted = await quote(gateway, order_input(package["packageId"], 1))
    refused = await create(
        gateway, {**order_input(package["packageId"], 2), "quoteId": quoted["quoteId"]}
    )
    assert refused["__typename"] == "ValidationError" and refused["field"] == "quoteId"
    unknown = await create(
        gateway,
        {**order_input(package["packageId"]), "quoteId": "00000000-0000-4000-8000-000000000000"},
    )
    assert unknown["__typename"] == "NotFoundError"
    malformed = await create(gateway, {**order_input(package["packageId"]), "quoteId": "x"})
    assert malformed["__typename"] == "ValidationError" and malformed["field"] == "quoteId"
    assert purchases(gateway) == 0


async def test_a_quote_of_another_principal_is_refused(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(api_keys=KEYS, headers=ALICE) as gw:
        package = await a_package(gw, "ROAMIFY")
        payload = order_input(package["packageId"])
        quoted = await quote(gw, payload)
        response = await gw.post(CREATE, {"input": {**payload, "quoteId": quoted["quoteId"]}}, BOB)
        refused = response.json()["data"]["createOrder"]
        assert refused["__typename"] == "NotFoundError"
        assert purchases(gw) == 0
        assert (await gw.ledger.orders.page(owner=None, first=5)).records == ()


async def test_a_quote_buys_once_and_the_same_key_still_replays(gateway: Gateway) -> None:
    package = await a_package(gateway, "ROAMIFY")
    quoted = await quote(gateway, order_input(package["packageId"]))
    payload = {**order_input(package["packageId"]), "quoteId": quoted["quoteId"]}
    first = await create(gateway, {**payload, "idempotencyKey": "quote-once-1"})
    assert first["__typename"] == "Order" and first["status"] == "COMPLETED", first
    second = await create(gateway, {**payload, "idempotencyKey": "quote-once-2"})
    assert second["__typename"] == "QuoteUsedError", second
    assert second["quoteId"] == quoted["quoteId"] and second["orderId"] == first["id"]
    assert "already used" in second["message"]
    again = await create(gateway, {**payload, "idempotencyKey": "quote-once-1"})
    assert again["__typename"] == "Order" and again["id"] == first["id"]
    assert purchases(gateway) == 1
    # the refused order was not recorded
    page = await gateway.ledger.orders.page(owner=None, first=5)
    assert [r.idempotency_key for r in page.records] == ["quote-once-1"]


async def test_orders_racing_for_one_quote_with_different_keys_buy_once(gateway: Gateway) -> None:
    package = await a_package(gateway, "ROAMIFY")
    quoted = await quote(gateway, order_input(package["packageId"]))
    payload = {**order_input(package["packageId"]), "quoteId": quoted["quoteId"]}
    results = await asyncio.gather(
        *(create(gateway, {**payload, "idempotencyKey": f"quote-race-{i}"}) for i in range(4))
    )
    kinds = sorted(r["__typename"] for r in results)
    assert kinds == ["Order"] + ["QuoteUsedError"] * 3, results
    [order] = [r for r in results if r["__typename"] == "Order"]
    assert {r["orderId"] for r in results if r["__typename"] == "QuoteUsedError"} == {order["id"]}
    assert purchases(gateway) == 1
    assert len((await gateway.ledger.orders.page(owner=None, first=10)).records) == 1


async def test_a_quote_whose_scheduled_order_was_cancelled_backs_another_order(
    gateway: Gateway,
) -> None:
    package = await a_package(gateway, "ROAMIFY")
    quoted = await quote(gateway, order_input(package["packageId"]))
    payload = {**order_input(package["packageId"]), "quoteId": quoted["quoteId"]}
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = await create(
        gateway, {**payload, "idempotencyKey": "quote-later", "scheduledAt": later}
    )
    assert scheduled["__typename"] == "Order" and scheduled["status"] == "SCHEDULED", scheduled
    # a scheduled order holds its quote: it will buy with it
    held = await create(gateway, {**payload, "idempotencyKey": "quote-now"})
    assert held["__typename"] == "QuoteUsedError" and held["orderId"] == scheduled["id"]
    cancelled = (await gateway.execute(CANCEL, input={"orderId": scheduled["id"]}))["cancelOrder"]
    assert cancelled == {"__typename": "Order", "status": "CANCELLED"}
    # cancelled before it was placed, it bought nothing: the quote is free again, once
    now = await create(gateway, {**payload, "idempotencyKey": "quote-now"})
    assert now["__typename"] == "Order" and now["status"] == "COMPLETED", now
    third = await create(gateway, {**payload, "idempotencyKey": "quote-third"})
    assert third["__typename"] == "QuoteUsedError" and third["orderId"] == now["id"]
    assert purchases(gateway) == 1
