"""Identical provider reads in flight at the same moment, from different requests, are
sent upstream once; ownership is still checked per request before any read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from esim_gateway.config import Settings
from tests.api.test_ordering import ORDER, buy
from tests.conftest import Gateway, GatewayFactory

# long enough for every request of a wave to reach its read while the first is upstream
UPSTREAM_LATENCY = 2.0
ALICE = {"authorization": "Bearer alice-key"}
BOB = {"authorization": "Bearer bob-key"}


def order_reads(gw: Gateway) -> int:
    return gw.roamify.control.calls.count("GET", "/api/esim/order")


async def wave(gw: Gateway, order_id: str, size: int, headers: dict[str, str]) -> list[Any]:
    responses = await asyncio.gather(
        *(gw.post(ORDER, {"id": order_id}, headers) for _ in range(size))
    )
    return [r.json()["data"]["order"] for r in responses]


async def test_a_hundred_concurrent_reads_of_one_order_make_one_upstream_call_per_wave(
    gateway: Gateway,
) -> None:
    order = await buy(gateway, "ROAMIFY")
    await gateway.execute(ORDER, id=order["id"])  # the ledger row is read once, then cached
    gateway.roamify.control.faults.arm(
        "GET", "/api/esim/order", latency=UPSTREAM_LATENCY, times=None
    )
    for number in (1, 2):
        before = order_reads(gateway)
        answers = await wave(gateway, order["id"], 100, {})
        assert {a["__typename"] for a in answers} == {"Order"}
        assert {a["status"] for a in answers} == {order["status"]}
        assert all(a["esims"] == answers[0]["esims"] for a in answers)
        assert order_reads(gateway) - before == 1, f"wave {number}"


@pytest.fixture
async def two_customers(gateway_factory: GatewayFactory) -> Any:
    keys = Settings.from_mapping(
        {"ESIM_GATEWAY_API_KEYS": "alice:customer:alice-key,bob:customer:bob-key"}
    ).api_keys
    async with gateway_factory(api_keys=keys, headers=ALICE) as gw:
        yield gw


async def test_a_read_in_flight_for_its_owner_is_never_shown_to_another_customer(
    two_customers: Gateway,
) -> None:
    gw = two_customers
    order = await buy(gw, "ROAMIFY")
    gw.roamify.control.faults.arm("GET", "/api/esim/order", latency=UPSTREAM_LATENCY, times=None)
    before = order_reads(gw)
    alice, bob = await asyncio.gather(
        wave(gw, order["id"], 10, ALICE), wave(gw, order["id"], 10, BOB)
    )
    assert {a["__typename"] for a in alice} == {"Order"}
    assert all(a["esims"][0]["lpa"] for a in alice)
    assert bob == [{"__typename": "NotFoundError", "message": "No order with this id."}] * 10
    assert order_reads(gw) - before == 1
