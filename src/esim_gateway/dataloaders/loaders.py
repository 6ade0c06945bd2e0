"""Per-request loaders: one upstream call per distinct resource, run concurrently.

Built in `get_context` for every request (never shared between principals). Each batch
dedupes its keys (aiodataloader caches per key), groups them by provider, and fans out
under the provider's concurrency limit; a failure lands in its key's slot as an
exception instance so the rest of the batch still resolves.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from typing import Any, TypeVar

from aiodataloader import DataLoader

from esim_gateway.domain import EsimProfile, EsimUsage, ProviderName, ProviderOrder
from esim_gateway.errors import GatewayError
from esim_gateway.ledger.orders import OrderRecord
from esim_gateway.ledger.repository import Ledger
from esim_gateway.providers.registry import Providers

__all__ = ["Loaders", "build_loaders"]

K = TypeVar("K", bound=Hashable)
PK = TypeVar("PK", bound=tuple[ProviderName, str])
V = TypeVar("V")

MAX_BATCH = 100

OrderKey = tuple[ProviderName, str]
EsimKey = tuple[ProviderName, str]


def _fan_out(
    name: str,
    providers: Providers,
    provider_of: Callable[[PK], ProviderName],
    fetch: Callable[[PK], Awaitable[V]],
) -> Callable[[list[PK]], Coroutine[Any, Any, list[V | Exception]]]:
    """Each key read concurrently, and shared with other requests reading the same key
    at the same moment (`Providers.read`): callers checked ownership before loading."""

    async def one(key: PK) -> V | Exception:
        try:
            return await providers.read(provider_of(key), lambda: fetch(key), shared_as=(name, key))
        except GatewayError as exc:
            return exc

    async def batch(keys: list[PK]) -> list[V | Exception]:
        if len(keys) == 1:  # most batches: no task to gather one read
            return [await one(keys[0])]
        return list(await asyncio.gather(*(one(key) for key in keys)))

    return batch


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


class Loaders:
    """One request's loaders, each built when the request first uses it.

    Most operations use one loader or none (`packages`, `{ __typename }`), so building
    all five up front was work thrown away on every request.
    """

    def __init__(
        self, providers: Providers, ledger: Ledger, observe: BatchObserver | None = None
    ) -> None:
        self._providers = providers
        self._ledger = ledger
        self._observe = observe
        self._loop = asyncio.get_running_loop()

    def _loader(
        self, name: str, batch: Callable[[list[K]], Coroutine[Any, Any, list[V]]]
    ) -> DataLoader[K, V]:
        return DataLoader(
            _observed(name, batch, self._observe), max_batch_size=MAX_BATCH, loop=self._loop
        )

    @functools.cached_property
    def ledger_orders(self) -> DataLoader[str, OrderRecord | None]:
        ledger = self._ledger

        async def batch(ids: list[str]) -> list[OrderRecord | None]:
            found = await ledger.orders.get_many(ids)
            return [found.get(i) for i in ids]

        return self._loader("ledger_orders", batch)

    @functools.cached_property
    def provider_orders(self) -> DataLoader[OrderKey, ProviderOrder | Exception]:
        providers = self._providers
        return self._loader(
            "provider_orders",
            _fan_out(
                "provider_orders",
                providers,
                lambda k: k[0],
                lambda k: providers.get(k[0]).get_order(k[1]),
            ),
        )

    @functools.cached_property
    def order_esims(self) -> DataLoader[OrderKey, Sequence[EsimProfile] | Exception]:
        providers = self._providers
        provider_orders = self.provider_orders

        async def one(key: OrderKey) -> Sequence[EsimProfile] | Exception:
            try:
                order = await provider_orders.load(key)
                if isinstance(order, Exception):
                    raise order
                gateway = providers.get(key[0])
                return await providers.read(
                    key[0], lambda: gateway.order_esims(order), shared_as=("order_esims", key)
                )
            except GatewayError as exc:
                return exc

        async def batch(keys: list[OrderKey]) -> list[Sequence[EsimProfile] | Exception]:
            return list(await asyncio.gather(*(one(k) for k in keys)))

        return self._loader("order_esims", batch)

    @functools.cached_property
    def esims(self) -> DataLoader[EsimKey, EsimProfile | Exception]:
        providers = self._providers
        return self._loader(
            "esims",
            _fan_out(
                "esims", providers, lambda k: k[0], lambda k: providers.get(k[0]).get_esim(k[1])
            ),
        )

    @functools.cached_property
    def usage(self) -> DataLoader[EsimKey, EsimUsage | Exception]:
        providers = self._providers
        return self._loader(
            "usage",
            _fan_out("usage", providers, lambda k: k[0], lambda k: providers.get(k[0]).usage(k[1])),
        )


def build_loaders(
    providers: Providers, ledger: Ledger, observe: BatchObserver | None = None
) -> Loaders:
    return Loaders(providers, ledger, observe)
