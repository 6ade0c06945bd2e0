"""Outbound webhooks to one receiver never wait on another's: a receiver that hangs for
the whole attempt timeout holds up only its own deliveries; claims are fair between
endpoints and renewed while a delivery is in flight, so a long attempt is not claimed
again by another replica."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from esim_gateway.outbound.dispatcher import WebhookDispatcher
from tests.api.test_ordering import buy
from tests.api.test_outbound_webhooks import (
    Receiver,
    deliveries,
    dispatcher,
    hooked,
    register,
)
from tests.conftest import GatewayFactory


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Wait for `condition` to hold, checking every 20 ms, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        await asyncio.sleep(0.02)


class Receivers:
    """Two receivers behind one transport: /slow never answers (the dispatcher's attempt
    timeout ends each request), /fast answers at once and notes when each request came."""

    def __init__(self) -> None:
        self.slow = Receiver(hold=asyncio.Event())
        self.fast = Receiver()
        #: when each of fast's requests arrived
        self.fast_at: list[datetime] = []

    async def _fast(self, request: Request) -> Response:
        self.fast_at.append(datetime.now(UTC))
        return await self.fast.receive(request)

    def transport(self) -> httpx.ASGITransport:
        app = Starlette(
            routes=[
                Route("/slow", self.slow.receive, methods=["POST"]),
                Route("/fast", self._fast, methods=["POST"]),
            ]
        )
        return httpx.ASGITransport(app=app)


async def test_a_receiver_that_hangs_holds_up_no_other_endpoints_deliveries(
    gateway_factory: GatewayFactory,
) -> None:
    receivers = Receivers()
    async with hooked(
        gateway_factory,
        webhook_transport=receivers.transport(),
        webhook_dispatch=True,
        webhook_timeout=3.0,
        # deliveries start on the wake-ups of the loop, never on its interval
        webhook_poll_interval=30.0,
        webhook_retry_schedule=(3600.0,),
    ) as gw:
        await register(gw, url="http://localhost:8200/slow", events=["order.completed"])
        await register(gw, url="http://localhost:8200/fast", events=["order.completed"])
        first = await buy(gw, "ROAMIFY", key="first")
        await asyncio.wait_for(receivers.slow.entered.wait(), timeout=10)
        await asyncio.wait_for(receivers.fast.entered.wait(), timeout=10)
        # while the slow receiver holds its attempt, another order completes
        second = await buy(gw, "ROAMIFY", key="second")

        async def fast_got_both() -> bool:
            return len(receivers.fast.got) >= 2

        await until(fast_got_both, timeout=10)
        arrived = receivers.fast.got[1].payload
        assert arrived["data"]["orderId"] == second["id"]
        created = datetime.fromisoformat(arrived["timestamp"])
        assert receivers.fast_at[1] - created < timedelta(seconds=1)
        held = [
            d
            for d in await deliveries(gw, orderId=first["id"])
            if d["attempts"] == 0 and d["status"] == "PENDING"
        ]
        assert held, "the slow receiver's first delivery is still in flight"

        async def slow_timed_out() -> bool:
            listed = await deliveries(gw, orderId=first["id"])
            return any(d["lastError"] == "timed out" for d in listed)

        # the hanging receiver is given up on after the attempt timeout, not sooner
        await until(slow_timed_out, timeout=15)
    # each event reached the healthy receiver once
    ids = [r.headers["webhook-id"] for r in receivers.fast.got]
    assert len(ids) == len(set(ids)) == 2
    assert [r.payload["data"]["orderId"] for r in receivers.fast.got] == [first["id"], second["id"]]


async def test_a_claim_shares_its_slots_between_endpoints_and_skips_busy_ones(
    gateway_factory: GatewayFactory,
) -> None:
    async with hooked(gateway_factory, Receiver()) as gw:
        await register(gw, url="http://localhost:8200/one")
        await register(gw, url="http://localhost:8200/two")
        store = gw.ledger.outbound
        ids = {endpoint.url.rsplit("/", 1)[1]: endpoint.id for endpoint in await store.endpoints()}
        one, two = ids["one"], ids["two"]
        for i in range(3):
            await buy(gw, "ROAMIFY", key=f"backlog-{i}")
        later = datetime.now(UTC) + timedelta(seconds=1)
        # one slot left to `one` (one of two in flight): the rest of the claim goes to `two`
        claimed = await store.claim_due(
            later, limit=3, lease=60, per_endpoint=2, in_flight={one: 1}
        )
        assert Counter(d.endpoint_id for d in claimed) == {one: 1, two: 2}
        # `one` full: nothing more of it, the last of `two`
        rest = await store.claim_due(later, limit=10, lease=60, per_endpoint=2, in_flight={one: 2})
        assert [d.endpoint_id for d in rest] == [two]
        assert not {d.id for d in rest} & {d.id for d in claimed}


async def test_a_delivery_in_flight_past_its_claim_is_not_claimed_by_another_replica(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver(hold=asyncio.Event())
    async with hooked(gateway_factory, receiver) as gw:
        await register(gw)
        order = await buy(gw, "ROAMIFY")
        here = dispatcher(gw)
        here.lease = 0.6  # renewed every 0.2 s while the attempt runs
        async with httpx.AsyncClient(transport=receiver.transport()) as client:
            there = WebhookDispatcher(gw.ledger.outbound, client, here.policy)
            running = asyncio.create_task(here.run_once())
            await asyncio.wait_for(receiver.entered.wait(), timeout=10)
            [record] = (await gw.ledger.outbound.deliveries()).records
            assert record.next_attempt_at is not None
            first_claim_ends = record.next_attempt_at

            async def first_claim_over() -> bool:
                return datetime.now(UTC) > first_claim_ends + timedelta(seconds=0.3)

            await until(first_claim_over, timeout=10)
            renewed = await gw.ledger.outbound.delivery(record.id)
            assert renewed is not None and renewed.next_attempt_at is not None
            assert renewed.next_attempt_at > datetime.now(UTC)  # held by the attempt still
            assert await there.run_once() == 0
            assert receiver.hold is not None
            receiver.hold.set()
            assert await asyncio.wait_for(running, timeout=10) == 1
    [sent] = receiver.got  # once
    assert sent.payload["data"]["orderId"] == order["id"]
