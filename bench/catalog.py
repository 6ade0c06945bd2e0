"""Catalog benchmark: a filtered `packages` query served from the snapshot.

Baseline (same run, same process): the same filter, ordering and page as a plain Python
function over the snapshot. Goal (issue "one catalog"): the GraphQL layer adds no more
than 2x. Also reports the snapshot's size in memory.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from esim_gateway.app import Sandboxes, create_app
from esim_gateway.config import Settings
from esim_gateway.observability import configure_logging
from esim_gateway.providers.base import CatalogPackage, ProviderName
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox

QUERY = """query Plans($country: String!) {
  packages(filter: {country: $country, minDays: 7, minDataMb: 3000}, first: 20) {
    totalCount
    edges { node { id provider packageId name days dataMb unlimited
      price { amount currency } priceUsd { amount currency } } }
  }
}"""


async def _median(run: Callable[[], Awaitable[object]], rounds: int) -> float:
    for _ in range(20):  # warm-up
        await run()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def run(rounds: int = 200) -> dict[str, Any]:
    configure_logging("WARNING")  # as in production: no per-request debug output
    with TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            rate_limit_per_second=1e9,
            rate_limit_burst=10**9,  # a load test, not abuse
        )
        sandboxes = Sandboxes(
            roamify=create_roamify_sandbox(),
            simplifytrip=create_simplifytrip_sandbox(fulfil_delay=0),
        )
        app = create_app(settings, sandboxes=sandboxes, reconcile_interval=3600)
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://bench"
            ) as client,
        ):
            services = app.state.services
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            snapshots: list[CatalogPackage] = []
            for provider in ProviderName:
                snapshots.extend(await services.catalog.packages(provider))
            snapshot_bytes = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            prices = services.prices

            async def plain() -> object:
                rows = [
                    p
                    for p in snapshots
                    if "JP" in p.country_codes
                    and p.days >= 7
                    and (p.unlimited or (p.data_mb or 0) >= 3000)
                ]
                rows.sort(
                    key=lambda p: (
                        prices.usd(p.price) or Decimal("1e12"),
                        p.provider.value,
                        p.package_id,
                    )
                )
                return [(p.package_id, p.name, p.price, prices.usd(p.price)) for p in rows[:20]]

            async def graphql() -> object:
                response = await client.post(
                    "/graphql", json={"query": QUERY, "variables": {"country": "JP"}}
                )
                body = response.json()
                assert "errors" not in body, body
                return body

            baseline = await _median(plain, rounds)
            gateway = await _median(graphql, rounds)
    return {
        "plans": len(snapshots),
        "snapshot_mb": round(snapshot_bytes / 1024 / 1024, 2),
        "plain_ms": round(baseline * 1000, 3),
        "graphql_ms": round(gateway * 1000, 3),
        "ratio": round(gateway / baseline, 2),
    }


if __name__ == "__main__":  # pragma: no cover
    print(asyncio.run(run()))
