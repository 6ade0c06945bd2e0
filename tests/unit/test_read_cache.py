"""The ledger's order read cache holds only what is fresh."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import create_async_engine

from esim_gateway.domain import ProviderName
from esim_gateway.ledger.orders import NewOrder
from esim_gateway.ledger.repository import Ledger


def _order(key: str) -> NewOrder:
    return NewOrder(
        owner="alice",
        kind="order",
        provider=ProviderName.ROAMIFY,
        idempotency_key=key,
        request={"items": [{"packageId": "p", "quantity": 1}]},
    )


async def test_expired_orders_leave_the_read_cache_as_new_ones_come(database_url: str) -> None:
    engine = create_async_engine(database_url)
    ledger = Ledger(engine, read_cache_ttl=0.05)
    await ledger.migrate()
    old = [(await ledger.orders.claim(_order(f"old-{i}")))[0] for i in range(3)]
    await ledger.orders.get_many([record.id for record in old])
    assert set(ledger.orders._read_cache) >= {record.id for record in old}
    await asyncio.sleep(0.06)  # the TTL itself is what is tested: let it pass
    new, _ = await ledger.orders.claim(_order("new"))
    await ledger.orders.get_many([new.id])
    assert list(ledger.orders._read_cache) == [new.id]
    await engine.dispose()
