"""Outbound webhooks over months: operators page through deliveries (`after`, as with
`orders`), and the delivery loop prunes what was delivered longer ago than the retention
age, a small batch at a time, keeping what failed or waits."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from esim_gateway.ledger.tables import OutboundMessageRow
from tests.api.test_ordering import buy
from tests.api.test_outbound_webhooks import (
    REDELIVER,
    Clock,
    Received,
    Receiver,
    deliveries,
    dispatcher,
    hooked,
    ops,
    register,
)
from tests.conftest import Gateway, GatewayFactory

PAGE = """query($first: Int!, $after: String) {
  webhookDeliveries(first: $first, after: $after) { __typename
    ... on WebhookDeliveryList { deliveries { id orderId }
      pageInfo { hasNextPage endCursor } }
    ... on ValidationError { field } ... on Error { message } } }"""
ORDERS_CURSOR = "{ orders(first: 1) { pageInfo { endCursor } } }"


async def message_count(gw: Gateway) -> int:
    async with async_sessionmaker(gw.ledger.engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboundMessageRow)) or 0)


async def test_operators_page_through_deliveries_newest_first(
    gateway_factory: GatewayFactory,
) -> None:
    async with hooked(gateway_factory, Receiver()) as gw:
        await register(gw)
        orders = [await buy(gw, "ROAMIFY", key=f"paged-{i}") for i in range(3)]
        first = (await ops(gw, PAGE, first=2))["webhookDeliveries"]
        assert first["__typename"] == "WebhookDeliveryList"
        assert first["pageInfo"]["hasNextPage"] is True
        rest = (await ops(gw, PAGE, first=2, after=first["pageInfo"]["endCursor"]))[
            "webhookDeliveries"
        ]
        assert rest["pageInfo"]["hasNextPage"] is False
        assert rest["pageInfo"]["endCursor"] is not None
        listed = first["deliveries"] + rest["deliveries"]
        assert [d["orderId"] for d in listed] == [o["id"] for o in reversed(orders)]
        last = (await ops(gw, PAGE, first=2, after=rest["pageInfo"]["endCursor"]))[
            "webhookDeliveries"
        ]
        assert last["deliveries"] == [] and last["pageInfo"] == {
            "hasNextPage": False,
            "endCursor": None,
        }
        # a cursor of another list, or none of ours, is a typed error
        orders_cursor = (await ops(gw, ORDERS_CURSOR))["orders"]["pageInfo"]["endCursor"]
        for bad in ("bogus", orders_cursor, "ZGVsaXZlcnl8eA=="):
            refused = (await ops(gw, PAGE, first=2, after=bad))["webhookDeliveries"]
            assert refused["__typename"] == "ValidationError", refused
            assert refused["field"] == "after" and "cursor" in refused["message"]


async def test_delivered_webhooks_older_than_the_retention_are_pruned_in_batches(
    gateway_factory: GatewayFactory,
) -> None:
    failing: set[str] = set()

    def answer(received: Received) -> int | None:
        return 500 if received.payload["data"]["orderId"] in failing else None

    receiver = Receiver(answer=answer)
    async with hooked(gateway_factory, receiver, webhook_retry_schedule=(5.0,)) as gw:
        await register(gw)
        loop = dispatcher(gw)
        assert loop.retention == timedelta(days=30)  # the default, from Settings
        delivered = [await buy(gw, "ROAMIFY", key=f"kept-{i}") for i in range(3)]
        given_up = await buy(gw, "ROAMIFY", key="given-up")
        failing.add(given_up["id"])
        # from now: what the four orders enqueued is due (a clock started before them, a
        # second ahead, fell behind the last one's message when buying took over a second)
        loop.clock = clock = Clock()
        assert await loop.run_once() == 4
        clock.advance(5)
        assert await loop.run_once() == 1  # the failing one's last retry: FAILED
        old = {d["orderId"]: d for d in await deliveries(gw)}
        assert old[given_up["id"]]["status"] == "FAILED"
        assert await message_count(gw) == 4

        clock.advance(timedelta(days=30).total_seconds() - 3600)
        assert await loop.prune_once() == 0  # delivered 30 days ago less an hour: kept
        waiting = await buy(gw, "ROAMIFY", key="waiting")  # pending, never attempted
        clock.advance(2 * 3600)
        loop.prune_batch = 2
        assert await loop.prune_once() == 2
        assert await loop.prune_once() == 1
        assert await loop.prune_once() == 0
        left = await deliveries(gw)
        assert [(d["orderId"], d["status"]) for d in left] == [
            (waiting["id"], "PENDING"),
            (given_up["id"], "FAILED"),
        ]
        # their messages went with them; a pruned delivery cannot be replayed
        assert await message_count(gw) == 2
        gone = old[delivered[0]["id"]]["id"]
        assert (await ops(gw, REDELIVER, id=gone))["redeliverWebhook"]["__typename"] == (
            "NotFoundError"
        )


async def test_the_delivery_loop_prunes_on_its_own_when_nothing_is_due(
    gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hooked(gateway_factory, Receiver(), webhook_retention_days=1.0) as gw:
        await register(gw)
        for i in range(3):
            await buy(gw, "ROAMIFY", key=f"looped-{i}")
        loop = dispatcher(gw)
        assert await loop.run_once() == 3
        loop.clock = clock = Clock()
        clock.advance(timedelta(days=1, hours=1).total_seconds())
        loop.prune_batch = 1  # three batches, the loop going on after each full one
        batches: list[int] = []
        drained = asyncio.Event()
        prune = loop.store.prune

        async def recorded(delivered_before: datetime, *, limit: int) -> int:
            pruned = await prune(delivered_before, limit=limit)
            batches.append(pruned)
            if pruned < limit:
                drained.set()
            return pruned

        monkeypatch.setattr(loop.store, "prune", recorded)
        loop.start()
        try:
            async with asyncio.timeout(30):
                await drained.wait()
        finally:
            await loop.stop()
        # full batches follow one another; a partial one waits for `prune_every`
        assert batches == [1, 1, 1, 0]
        assert await deliveries(gw) == []
        assert await message_count(gw) == 0


async def test_a_message_stays_while_one_of_its_deliveries_is_kept(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver(answer=lambda r: 500 if r.path == "/failing" else None)
    async with hooked(gateway_factory, receiver, webhook_retry_schedule=(5.0,)) as gw:
        await register(gw, "http://localhost:8200/hooks")
        await register(gw, "http://localhost:8200/failing")
        await buy(gw, "ROAMIFY", key="two-endpoints")
        loop = dispatcher(gw)
        loop.clock = clock = Clock()
        assert await loop.run_once() == 2
        clock.advance(5)
        assert await loop.run_once() == 1  # the failing endpoint's last retry
        clock.advance(timedelta(days=31).total_seconds())
        assert await loop.prune_once() == 1
        assert [d["status"] for d in await deliveries(gw)] == ["FAILED"]
        assert await message_count(gw) == 1  # the FAILED delivery still needs its body
