"""One string per amount: an order's money reads the same in the createOrder answer, on
its replay, in order(id), in the orders list and in subscription payloads, and package
prices use the same form (the currency's ISO 4217 minor units: USD 5.00, VND 125000)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import httpx
import pytest

from esim_gateway.config import Settings
from esim_gateway.pricing.currency import canonical_amount
from tests.api.test_live_updates import serve, updates

MONEY = "total { amount currency } items { unitPrice { amount currency } }"
CREATE = f"""mutation($input: CreateOrderInput!) {{ createOrder(input: $input) {{ __typename
  ... on Order {{ id status {MONEY} }} ... on Error {{ message }} }} }}"""
ORDER = f"""query($id: ID!) {{ order(id: $id) {{ __typename ... on Order {{ id {MONEY} }} }} }}"""
ORDERS = f"{{ orders(first: 20) {{ edges {{ node {{ id {MONEY} }} }} }} }}"
PACKAGES = """query($provider: Provider!) { packages(filter: { provider: $provider }, first: 100) {
  edges { node { packageId requiresTravelDate price { amount currency }
  priceUsd { amount currency } } } } }"""
SUBSCRIBE = f"subscription($id: ID!) {{ orderUpdated(id: $id) {{ status {MONEY} }} }}"

#: the canonical forms: cents for USD, whole dong for VND
FORM = {"USD": re.compile(r"-?\d+\.\d\d"), "VND": re.compile(r"-?\d+")}


def monies(value: Any) -> list[dict[str, str]]:
    """Every {amount, currency} object inside an answer."""
    if isinstance(value, dict):
        if set(value) == {"amount", "currency"}:
            return [value]
        return [m for v in value.values() for m in monies(v)]
    if isinstance(value, list):
        return [m for v in value for m in monies(v)]
    return []


def assert_canonical(value: Any) -> None:
    found = monies(value)
    assert found, value
    for money in found:
        amount, currency = money["amount"], money["currency"]
        assert FORM[currency].fullmatch(amount), money
        assert amount == str(canonical_amount(Decimal(amount), currency))


def test_the_canonical_form_has_the_currencys_minor_units() -> None:
    cases = {
        ("5", "USD"): "5.00",
        ("5.0000", "USD"): "5.00",
        ("4.99", "usd"): "4.99",
        ("4.995", "USD"): "4.995",  # exact, never rounded away
        ("125000", "VND"): "125000",
        ("125000.0000", "VND"): "125000",
        ("1.25E+5", "VND"): "125000",
        ("1.5", "KWD"): "1.500",
        ("0", "JPY"): "0",
    }
    for (amount, currency), expected in cases.items():
        assert str(canonical_amount(Decimal(amount), currency)) == expected


@pytest.mark.parametrize("provider", ["ROAMIFY", "SIMPLIFYTRIP"])
async def test_an_orders_money_reads_the_same_on_every_path(
    database_url: str, provider: str
) -> None:
    # a deadline long enough for both to complete in the mutation: its answer has money
    settings = Settings(database_url=database_url, order_deadline=5, sandbox_fulfil_delay=0.3)
    async with serve(settings) as base, httpx.AsyncClient(base_url=f"http://{base}") as http:

        async def graphql(query: str, **variables: Any) -> dict[str, Any]:
            body = await http.post("/graphql", json={"query": query, "variables": variables})
            answer = body.json()
            assert "errors" not in answer, answer
            data: dict[str, Any] = answer["data"]
            return data

        packages = (await graphql(PACKAGES, provider=provider))["packages"]["edges"]
        assert_canonical(packages)
        package = next(e["node"] for e in packages if not e["node"]["requiresTravelDate"])
        payload = {
            "provider": provider,
            "items": [{"packageId": package["packageId"], "quantity": 2}],
            "idempotencyKey": f"money-{provider}",
        }
        fresh = (await graphql(CREATE, input=payload))["createOrder"]
        assert fresh["__typename"] == "Order" and fresh["status"] == "COMPLETED", fresh
        order_id = fresh["id"]
        seen = await updates(base, order_id, document=SUBSCRIBE)
        replay = (await graphql(CREATE, input=payload))["createOrder"]
        stored = (await graphql(ORDER, id=order_id))["order"]
        listed = next(
            e["node"]
            for e in (await graphql(ORDERS))["orders"]["edges"]
            if e["node"]["id"] == order_id
        )
    unit = {"amount": package["price"]["amount"], "currency": package["price"]["currency"]}
    for answer in (fresh, replay, stored, listed, seen[-1]):
        assert_canonical(answer)
        assert answer["items"][0]["unitPrice"] == unit, answer
    total = stored["total"]
    assert total is not None
    assert Decimal(total["amount"]) == 2 * Decimal(unit["amount"])
    for answer in (fresh, replay, listed, seen[-1]):
        assert answer["total"] == total, answer
