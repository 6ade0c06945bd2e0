"""Two gateway processes on one PostgreSQL ledger, both looking for due scheduled orders
several times a second: each scheduled order is placed exactly once, and one left behind
by a stopped replica is placed by the other. Real processes, as in test_two_processes.

The orders are scheduled an hour ahead and made due by moving their time in the ledger
(`make_due`), as the clock reaching it would: no test waits for the wall clock, and no
order can fall due before the test has everything in place (every order recorded, the
replica that took one stopped)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from esim_gateway.ledger.orders import Step
from esim_gateway.ledger.tables import OrderRow
from esim_gateway.schema.ids import parse_order_id
from tests.reliability.test_two_processes import (
    LOOPBACK,
    free_port,
    replica_env,
    roamify_package,
    serving,
    simulators,
)

# `make test` runs the suite in parallel workers; each test here starts several real gateway
# and simulator processes, so one worker runs them one after another (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("real-processes")

CREATE = """mutation($input: CreateOrderInput!) { createOrder(input: $input) { __typename
  ... on Order { id status } ... on Error { message } } }"""
QUOTE = """mutation($input: QuoteOrderInput!) { quoteOrder(input: $input) { __typename
  ... on OrderQuote { quoteId } } }"""
ORDER = """query($id: ID!) { order(id: $id) { __typename
  ... on Order { status reference statusHistory { note } } } }"""
#: how long the test waits for the replicas to place what is due (a bound, not a measure)
PATIENCE = 60.0


def graphql(port: int, query: str, **variables: Any) -> dict[str, Any]:
    response = LOOPBACK.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables},
        timeout=30,
    )
    data: dict[str, Any] = response.json()["data"]
    return data


def schedule(
    port: int, package_id: str, key: str, when: datetime, quote_id: str | None = None
) -> str:
    order = graphql(
        port,
        CREATE,
        input={
            "provider": "ROAMIFY",
            "idempotencyKey": key,
            "items": [{"packageId": package_id, "quantity": 1}],
            "scheduledAt": when.isoformat(),
            "quoteId": quote_id,
        },
    )["createOrder"]
    assert order["__typename"] == "Order" and order["status"] == "SCHEDULED", order
    order_id: str = order["id"]
    return order_id


def make_due(database_url: str, order_ids: list[str]) -> None:
    """Scheduled orders' time comes now; every one of them still SCHEDULED (none placed
    before its time). `order_ids` are the API's (global) ids."""
    ledger_ids = [parse_order_id(order_id) for order_id in order_ids]

    async def move() -> int:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as conn:
                moved = await conn.execute(
                    update(OrderRow)
                    .where(OrderRow.id.in_(ledger_ids), OrderRow.step == Step.SCHEDULED.value)
                    .values(scheduled_at=datetime.now(UTC))
                )
                return moved.rowcount
        finally:
            await engine.dispose()

    assert asyncio.run(move()) == len(order_ids)


def later() -> datetime:
    """A time to schedule for that no replica reaches by itself during the test."""
    return datetime.now(UTC) + timedelta(hours=1)


def wait_settled(port: int, order_ids: list[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + PATIENCE
    while True:
        orders = {i: graphql(port, ORDER, id=i)["order"] for i in order_ids}
        if all(o["status"] == "COMPLETED" for o in orders.values()):
            return orders
        assert time.monotonic() < deadline, orders
        time.sleep(0.2)


@pytest.mark.postgres
def test_due_scheduled_orders_are_placed_once_across_two_replicas(clean_postgres: str) -> None:
    sandbox_port, first_port, second_port = free_port(), free_port(), free_port()
    with simulators(sandbox_port) as sandbox:
        # both replicas look for due orders every ~0.1 s: they do race for each one
        env = replica_env(clean_postgres, sandbox, SCHEDULER_INTERVAL="0.1")
        package_id = roamify_package(sandbox)
        with serving(second_port, env):
            with serving(first_port, env):
                # warms both replicas' catalogs; the quote is honoured by the other one
                quote_id = graphql(
                    second_port,
                    QUOTE,
                    input={
                        "provider": "ROAMIFY",
                        "items": [{"packageId": package_id, "quantity": 1}],
                    },
                )["quoteOrder"]["quoteId"]
                assert graphql(first_port, "{ packages(first: 1) { totalCount } }")
                due = later()
                raced = [
                    schedule(port, package_id, f"raced-{i}", due)
                    for i, port in enumerate([first_port, second_port] * 3)
                ]
                make_due(clean_postgres, raced)
                placed = wait_settled(second_port, raced)
                # scheduled on the first replica, which stops before it is due
                left = schedule(first_port, package_id, "left", later(), quote_id=quote_id)
            make_due(clean_postgres, [left])
            placed.update(wait_settled(second_port, [left]))
        calls = LOOPBACK.get(f"{sandbox}/roamify/_sandbox/calls").json()
    purchases = [c for c in calls if c["method"] == "POST" and c["path"] == "/api/esim/order"]
    references = [c["body"]["referenceId"] for c in purchases]
    assert sorted(references) == sorted(o["reference"] for o in placed.values())
    assert len(set(references)) == len(raced) + 1
    for order in placed.values():
        notes = [change["note"] for change in order["statusHistory"]]
        assert notes.count("scheduled time reached: placing") == 1
