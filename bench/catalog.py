"""Catalog benchmark: a filtered `packages` query served from the snapshot.

Baseline (same run, same process): the same filter, ordering and page as a plain Python
function scanning the snapshot and returning the same values. Goal (issue "one catalog"):
the GraphQL layer (`schema.execute` with a request's context) adds no more than 2x; the
whole HTTP request (view, authentication, limits, JSON, an in-process ASGI client) is
reported too. Also reports the snapshot's size in memory.
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
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from esim_gateway.app import Sandboxes, create_app
from esim_gateway.config import Settings
from esim_gateway.context import Context
from esim_gateway.dataloaders.loaders import build_loaders
from esim_gateway.domain import CatalogPackage, ProviderName
from esim_gateway.http.auth import DEMO_PRINCIPAL
from esim_gateway.ops.logging import configure_logging
from esim_gateway.resolvers.catalog import PackageQuery, search_packages
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox

QUERY = """query Plans($country: String!) {
  packages(filter: {country: $country, minDays: 7, minDataMb: 3000}, first: 20) {
    totalCount
    edges { node { id provider packageId name days dataMb unlimited
      price { amount currency } priceUsd { amount currency } } }
  }
}"""


async def _medians(
    runs: dict[str, Callable[[], Awaitable[object]]], rounds: int
) -> dict[str, float]:
    """Interleaved rounds (each function once per round), so drift hits all alike."""
    for run in runs.values():
        for _ in range(max(rounds, 100)):  # warm-up: the first rounds run measurably slower
            await run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            await run()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


async def run(rounds: int = 300) -> dict[str, Any]:
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
                return {
                    "totalCount": len(rows),
                    "nodes": [
                        {
                            "provider": p.provider.value,
                            "packageId": p.package_id,
                            "name": p.name,
                            "days": p.days,
                            "dataMb": p.data_mb,
                            "unlimited": p.unlimited,
                            "price": {"amount": str(p.price.amount), "currency": p.price.currency},
                            "priceUsd": {"amount": str(prices.usd(p.price)), "currency": "USD"},
                        }
                        for p in rows[:20]
                    ],
                }

            schema = app.state.schema
            variables = {"country": "JP"}

            async def layer() -> object:
                context = Context(
                    services=services,
                    principal=DEMO_PRINCIPAL,
                    loaders=build_loaders(services.providers, services.ledger),
                )
                result = await schema.execute(
                    QUERY, variable_values=variables, context_value=context
                )
                assert not result.errors, result.errors
                return result.data

            async def layer_strawberry() -> object:
                """The same through Strawberry's own execution (every field the full way)."""
                ours = schema.execution_context_class
                schema.execution_context_class = StrawberryGraphQLCoreExecutionContext
                try:
                    return await layer()
                finally:
                    schema.execution_context_class = ours

            search = PackageQuery(country="JP", min_days=7, min_data_mb=3000)
            context = Context(
                services=services,
                principal=DEMO_PRINCIPAL,
                loaders=build_loaders(services.providers, services.ledger),
            )

            async def resolver() -> object:
                return await search_packages(context, search, 20, None)

            async def graphql() -> object:
                response = await client.post(
                    "/graphql", json={"query": QUERY, "variables": {"country": "JP"}}
                )
                body = response.json()
                assert "errors" not in body, body
                return body

            medians = await _medians(
                {
                    "plain": plain,
                    "resolver": resolver,
                    "layer": layer,
                    "layer_strawberry": layer_strawberry,
                    "http": graphql,
                },
                rounds,
            )
            # each alone in a tight loop, its own data hot in the CPU caches
            alone = (await _medians({"plain": plain}, rounds))["plain"]
            layer_alone = (await _medians({"layer": layer}, rounds))["layer"]
            baseline, in_layer, over_http = medians["plain"], medians["layer"], medians["http"]
    return {
        "rounds": rounds,
        "plans": len(snapshots),
        "snapshot_mb": round(snapshot_bytes / 1024 / 1024, 2),
        "plain_ms": round(baseline * 1000, 3),
        "plain_alone_ms": round(alone * 1000, 3),
        "layer_alone_ms": round(layer_alone * 1000, 3),
        "layer_ratio_alone": round(layer_alone / alone, 2),
        "resolver_ms": round(medians["resolver"] * 1000, 3),
        "layer_ms": round(in_layer * 1000, 3),
        "layer_ratio": round(in_layer / baseline, 2),
        "layer_strawberry_ms": round(medians["layer_strawberry"] * 1000, 3),
        "request_ms": round(over_http * 1000, 3),
        "request_ratio": round(over_http / baseline, 2),
    }


if __name__ == "__main__":  # pragma: no cover
    print(asyncio.run(run()))
