"""Scheduled orders: recorded now without calling the provider, cancelled for free until
their time, then placed exactly once by the scheduler (here driven with a fake clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from esim_gateway.domain import ProviderName
from esim_gateway.http.auth import DEMO_PRINCIPAL
from esim_gateway.purchasing.driver import PurchaseDriver
from esim_gateway.purchasing.scheduler import Scheduler
from esim_gateway.schema.ids import order_global_id, parse_order_id
from tests.api.test_ordering import a_package
from tests.api.test_quotes import purchases, quote, reprice_roamify
from tests.conftest import Gateway

# every order moves only along the purchase state table's lines
pytestmark = pytest.mark.usefixtures("declared_moves_only")

ORDER_FIELDS = """
    __typename
    ... on Order { id status scheduledAt providerOrderId failureReason esims { iccid } }
    ... on Error { message }
    ... on ValidationError { field }
"""
MUTATION_FIELDS = ORDER_FIELDS + "... on UnsupportedOperationError { operation }"
CREATE = f"""
mutation Create($input: CreateOrderInput!) {{ createOrder(input: $input) {{ {MUTATION_FIELDS} }} }}
"""
CANCEL = f"""
mutation Cancel($input: CancelOrderInput!) {{ cancelOrder(input: $input) {{ {MUTATION_FIELDS} }} }}
"""
ORDER = f"query Order($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
SCHEDULED = """
query { orders(filter: {status: SCHEDULED}) { edges { node { id status scheduledAt } } } }
"""


def in_(delta: timedelta) -> datetime:
    return datetime.now(UTC) + delta


async def schedule(
    gw: Gateway, when: str, provider: str = "ROAMIFY", key: str | None = None
) -> dict[str, Any]:
    package = await a_package(gw, provider)
    payload: dict[str, Any] = {
        "provider": provider,
        "items": [{"packageId": package["packageId"], "quantity": 1}],
        "scheduledAt": when,
    }
    if key is not None:
        payload["idempotencyKey"] = key
    result: dict[str, Any] = (await gw.execute(CREATE, input=payload))["createOrder"]
    return result


def scheduler(gw: Gateway) -> Scheduler:
    found: Scheduler = gw.services.scheduler
    return found


async def test_a_scheduled_order_is_recorded_without_calling_the_provider(gateway: Gateway) -> None:
    when = in_(timedelta(hours=1))
    order = await schedule(gateway, when.isoformat())
    assert order["__typename"] == "Order"
    assert order["status"] == "SCHEDULED" and order["providerOrderId"] is None
    assert datetime.fromisoformat(order["scheduledAt"]) == when
    listed = (await gateway.execute(SCHEDULED))["orders"]["edges"]
    assert [edge["node"]["id"] for edge in listed] == [order["id"]]
    assert purchases(gateway) == 0
    # not due yet: the scheduler leaves it alone
    assert await scheduler(gateway).run_once() == []
    assert purchases(gateway) == 0


async def test_the_same_key_returns_the_scheduled_order_and_another_time_is_a_conflict(
    gateway: Gateway,
) -> None:
    when = in_(timedelta(hours=2)).isoformat()
    first = await schedule(gateway, when, key="trip-1")
    again = await schedule(gateway, when, key="trip-1")
    assert again["id"] == first["id"] and again["status"] == "SCHEDULED"
    other = await schedule(gateway, in_(timedelta(hours=3)).isoformat(), key="trip-1")
    assert other["__typename"] == "IdempotencyConflictError"


async def test_a_time_in_the_past_beyond_the_horizon_or_without_offset_is_refused(
    gateway: Gateway,
) -> None:
    for when in (
        in_(-timedelta(minutes=1)).isoformat(),
        in_(timedelta(days=91)).isoformat(),
        in_(timedelta(hours=1)).replace(tzinfo=None).isoformat(),
    ):
        refused = await schedule(gateway, when)
        assert refused["__typename"] == "ValidationError", when
        assert refused["field"] == "scheduledAt"
    assert (await gateway.ledger.orders.page(owner=None, first=5)).records == ()
    assert purchases(gateway) == 0


async def test_the_horizon_is_configurable(gateway_factory: Any) -> None:
    async with gateway_factory(schedule_horizon_days=1) as gw:
        refused = await schedule(gw, in_(timedelta(days=2)).isoformat())
        assert refused["__typename"] == "ValidationError" and refused["field"] == "scheduledAt"
        accepted = await schedule(gw, in_(timedelta(hours=20)).isoformat())
        assert accepted["status"] == "SCHEDULED"


async def test_a_scheduled_order_is_cancelled_for_free_and_never_placed(gateway: Gateway) -> None:
    # Roamify cannot cancel a placed order; a scheduled one was never placed
    order = await schedule(gateway, in_(timedelta(hours=1)).isoformat())
    cancelled = (
        await gateway.execute(CANCEL, input={"orderId": order["id"], "reason": "trip off"})
    )["cancelOrder"]
    assert cancelled["__typename"] == "Order" and cancelled["status"] == "CANCELLED"
    again = (await gateway.execute(CANCEL, input={"orderId": order["id"]}))["cancelOrder"]
    assert again["status"] == "CANCELLED"
    assert await scheduler(gateway).run_once(now=in_(timedelta(hours=2))) == []
    assert purchases(gateway) == 0
    assert (await gateway.execute(SCHEDULED))["orders"]["edges"] == []


async def test_a_due_scheduled_order_is_placed_once_then_follows_the_normal_lifecycle(
    gateway: Gateway,
) -> None:
    order = await schedule(gateway, in_(timedelta(hours=1)).isoformat())
    later = in_(timedelta(hours=2))
    (claimed,) = await scheduler(gateway).run_once(now=later)
    assert order_global_id(claimed.id) == order["id"]
    await gateway.services.driver.start(claimed)
    assert await scheduler(gateway).run_once(now=later) == []
    placed = (await gateway.execute(ORDER, id=order["id"]))["order"]
    assert placed["status"] == "COMPLETED" and placed["providerOrderId"] is not None
    assert len(placed["esims"]) == 1
    assert purchases(gateway) == 1
    # once placed, the provider's own cancellation rules apply (Roamify: none)
    refused = (await gateway.execute(CANCEL, input={"orderId": order["id"]}))["cancelOrder"]
    assert refused["__typename"] == "UnsupportedOperationError"


async def test_two_schedulers_racing_for_due_orders_place_each_once(gateway: Gateway) -> None:
    orders = [
        await schedule(gateway, in_(timedelta(minutes=10 + i)).isoformat(), provider=provider)
        for i, provider in enumerate(["ROAMIFY", "SIMPLIFYTRIP"] * 3)
    ]
    services = gateway.services
    # a second replica's scheduler: its own driver (own lease holder), the same ledger
    other = Scheduler(
        services.ledger, PurchaseDriver(services.ledger, services.providers), services.catalog
    )
    later = in_(timedelta(hours=1))
    first, second = await asyncio.gather(
        scheduler(gateway).run_once(now=later), other.run_once(now=later)
    )
    claimed = [order_global_id(r.id) for r in [*first, *second]]
    assert sorted(claimed) == sorted(o["id"] for o in orders)
    await asyncio.gather(
        *(services.driver.start(r) for r in first), *(other.driver.start(r) for r in second)
    )
    await other.driver.shutdown()
    for provider in ProviderName:
        assert purchases(gateway, provider) == 3


async def test_a_scheduled_order_whose_quoted_price_moved_fails_without_being_placed(
    gateway: Gateway,
) -> None:
    package = await a_package(gateway, "ROAMIFY")
    items = [{"packageId": package["packageId"], "quantity": 1}]
    quoted = await quote(gateway, {"provider": "ROAMIFY", "items": items})
    order = (
        await gateway.execute(
            CREATE,
            input={
                "provider": "ROAMIFY",
                "items": items,
                "quoteId": quoted["quoteId"],
                "scheduledAt": in_(timedelta(hours=1)).isoformat(),
            },
        )
    )["createOrder"]
    assert order["status"] == "SCHEDULED"
    await reprice_roamify(gateway, package["packageId"], 2.0)
    assert await scheduler(gateway).run_once(now=in_(timedelta(hours=2))) == []
    failed = (await gateway.execute(ORDER, id=order["id"]))["order"]
    assert failed["status"] == "FAILED" and failed["providerOrderId"] is None
    assert "price changed" in failed["failureReason"]
    assert purchases(gateway) == 0


async def test_a_travel_date_before_the_scheduled_time_is_refused(gateway: Gateway) -> None:
    package = await a_package(gateway, "ROAMIFY")
    refused = (
        await gateway.execute(
            CREATE,
            input={
                "provider": "ROAMIFY",
                "items": [{"packageId": package["packageId"], "quantity": 1}],
                "scheduledAt": in_(timedelta(days=3)).isoformat(),
                "startDate": in_(timedelta(days=1)).date().isoformat(),
            },
        )
    )["createOrder"]
    assert refused["__typename"] == "ValidationError" and refused["field"] == "startDate"
    assert (await gateway.ledger.orders.page(owner=None, first=5)).records == ()


async def test_a_cancel_racing_the_placement_lets_exactly_one_of_them_win(
    gateway: Gateway,
) -> None:
    ledger = gateway.ledger
    for _ in range(5):
        order = await schedule(gateway, in_(timedelta(hours=1)).isoformat())
        order_id = parse_order_id(order["id"])
        cancelled, claimed = await asyncio.gather(
            ledger.quotes.cancel_scheduled(order_id, "cancelled"),
            ledger.quotes.claim_scheduled(order_id, "another-replica"),
        )
        assert (cancelled is None) != (claimed is None)
        record = await ledger.orders.get(order_id)
        assert record is not None
        assert record.state.value == ("CANCELLED" if cancelled else "PENDING")


async def test_cancelling_an_order_another_replica_just_claimed_is_refused_and_changes_nothing(
    gateway: Gateway,
) -> None:
    from esim_gateway.context import Context
    from esim_gateway.dataloaders.loaders import build_loaders
    from esim_gateway.errors import InvalidInput
    from esim_gateway.purchasing.scheduler import cancel_scheduled

    order = await schedule(gateway, in_(timedelta(hours=1)).isoformat())
    order_id = parse_order_id(order["id"])
    seen = await gateway.ledger.orders.get(order_id)  # what this replica read: still SCHEDULED
    assert seen is not None
    claimed = await gateway.ledger.quotes.claim_scheduled(order_id, "another-replica")
    assert claimed is not None
    services = gateway.services
    context = Context(services, DEMO_PRINCIPAL, build_loaders(services.providers, services.ledger))
    with pytest.raises(InvalidInput, match="being placed now"):
        await cancel_scheduled(context, seen, "too late")
    record = await gateway.ledger.orders.get(order_id)
    assert record is not None and record.state.value == "PENDING"
