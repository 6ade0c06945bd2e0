"""Per-request loaders: one upstream call per distinct resource, run concurrently.

Built in `get_context` for every request (never shared between principals). Each batch
dedupes its keys (aiodataloader caches per key), groups them by provider, and fans out
under the provider's concurrency limit; a failure lands in its key's slot as an
exception instance so the rest of the batch still resolves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiodataloader import DataLoader

from esim_gateway.errors import GatewayError
from esim_gateway.ledger.repository import Ledger, OrderRecord
from esim_gateway.providers.base import EsimProfile, EsimUsage, ProviderName, ProviderOrder
from esim_gateway.providers.registry import Providers

__all__ = ["Loaders", "build_loaders"]

K = TypeVar("K", bound=Hashable)
PK = TypeVar("PK", bound=tuple[ProviderName, str])
V = TypeVar("V")

MAX_BATCH = 100

OrderKey = tuple[ProviderName, str]
EsimKey = tuple[ProviderName, str]


def _fan_out(
    providers: Providers,
    provider_of: Callable[[PK], ProviderName],
    fetch: Callable[[PK], Awaitable[V]],
) -> Callable[[list[PK]], Coroutine[Any, Any, list[V | Exception]]]:
    async def one(key: PK) -> V | Exception:
        try:
            return await providers.read(provider_of(key), lambda: fetch(key))
        except GatewayError as exc:
            return exc

    async def batch(keys: list[PK]) -> list[V | Exception]:
        return list(await asyncio.gather(*(one(key) for key in keys)))

    return batch


@dataclass(frozen=True, slots=True)
class Loaders:
    ledger_orders: DataLoader[str, OrderRecord | None]
    provider_orders: DataLoader[OrderKey, ProviderOrder | Exception]
    order_esims: DataLoader[OrderKey, Sequence[EsimProfile] | Exception]
    esims: DataLoader[EsimKey, EsimProfile | Exception]
    usage: DataLoader[EsimKey, EsimUsage | Exception]


BatchObserver = Callable[[str, int], None]


def _observed(
    name: str,
    batch: Callable[[list[K]], Coroutine[Any, Any, list[V]]],
    observe: BatchObserver | None,
) -> Callable[[list[K]], Coroutine[Any, Any, list[V]]]:
    if observe is None:
        return batch

    async def observed(keys: list[K]) -> list[V]:
        observe(name, len(keys))
        return await batch(keys)

    return observed


def build_loaders(
    providers: Providers, ledger: Ledger, observe: BatchObserver | None = None
) -> Loaders:
    loop = asyncio.get_running_loop()

    async def ledger_batch(ids: list[str]) -> list[OrderRecord | None]:
        found = await ledger.get_many(ids)
        return [found.get(i) for i in ids]

    provider_orders: DataLoader[OrderKey, ProviderOrder | Exception] = DataLoader(
        _observed(
            "provider_orders",
            _fan_out(providers, lambda k: k[0], lambda k: providers.get(k[0]).get_order(k[1])),
            observe,
        ),
        max_batch_size=MAX_BATCH,
        loop=loop,
    )

    async def esims_of(key: OrderKey) -> Sequence[EsimProfile]:
        order = await provider_orders.load(key)
        if isinstance(order, Exception):
            raise order
        gateway = providers.get(key[0])
        return await providers.read(key[0], lambda: gateway.order_esims(order))

    async def order_esims_batch(keys: list[OrderKey]) -> list[Sequence[EsimProfile] | Exception]:
        async def one(key: OrderKey) -> Sequence[EsimProfile] | Exception:
            try:
                return await esims_of(key)
            except GatewayError as exc:
                return exc

        return list(await asyncio.gather(*(one(k) for k in keys)))

    def loader(
        name: str, batch: Callable[[list[K]], Coroutine[Any, Any, list[V]]]
    ) -> DataLoader[K, V]:
        return DataLoader(_observed(name, batch, observe), max_batch_size=MAX_BATCH, loop=loop)

    return Loaders(
        ledger_orders=loader("ledger_orders", ledger_batch),
        provider_orders=provider_orders,
        order_esims=loader("order_esims", order_esims_batch),
        esims=loader(
            "esims",
            _fan_out(providers, lambda k: k[0], lambda k: providers.get(k[0]).get_esim(k[1])),
        ),
        usage=loader(
            "usage",
            _fan_out(providers, lambda k: k[0], lambda k: providers.get(k[0]).usage(k[1])),
        ),
    )
