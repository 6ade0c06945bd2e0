"""In-process microbenchmarks (QUALITY.md 5.1 P7, P8, P9): where a request's CPU goes.

* P7: a list of 1,000 objects x 3 fields through Strawberry and graphql-core, with
  Strawberry's execution and with ours (schema/execution.py).
* P8: CPU of one cached trivial operation (`{ __typename }`) through our schema, with
  its extensions, vs the naive build of the schema (no parser/validation caches).
* P9: client CPU per GET against a loopback server: httpx over httpx-aiohttp (what the
  adapters use) vs httpx's default transport, one at a time and 50 at once.

CPU is this process's CPU time (`time.process_time`), so waiting is not counted.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import strawberry
from httpx_aiohttp import AiohttpTransport

from bench.load import _pinned, _port, _process
from esim_gateway.providers._http import ProviderClient
from esim_gateway.providers.reqwest import ReqwestTransport

HELLO_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def hello(request):
    return JSONResponse({"hello": "world"})

app = Starlette(routes=[Route("/hello", hello)])
"""


@strawberry.type
class Item:
    id: int
    name: str
    price: float


@strawberry.type
class ListQuery:
    @strawberry.field
    def items(self) -> list[Item]:
        return [Item(id=i, name=f"item {i}", price=i * 1.5) for i in range(1000)]


async def _cpu_per_call(call: Callable[[], Awaitable[object]], rounds: int) -> float:
    for _ in range(max(rounds // 10, 20)):  # warm-up
        await call()
    samples = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(rounds):
            await call()
        samples.append((time.process_time() - started) / rounds)
    return statistics.median(samples)


async def large_list() -> dict[str, float]:
    """Strawberry as shipped, and with the gateway's execution context (its short path
    for attribute fields)."""
    from esim_gateway.schema.execution import AttributeFieldsExecutionContext

    query = "{ items { id name price } }"

    def runner(schema: strawberry.Schema) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            result = await schema.execute(query)
            assert result.errors is None and result.data is not None
            return result.data

        return run

    shipped = strawberry.Schema(query=ListQuery)
    ours = strawberry.Schema(
        query=ListQuery, execution_context_class=AttributeFieldsExecutionContext
    )
    return {
        "ms": await _cpu_per_call(runner(ours), 20) * 1000,
        "strawberry_ms": await _cpu_per_call(runner(shipped), 20) * 1000,
    }


async def trivial_operation() -> dict[str, float]:
    from esim_gateway.schema import build_schema

    tuned = build_schema(introspection=False, mask_errors=True)
    naive = build_schema(introspection=False, mask_errors=True, caches=False)
    query = "{ __typename }"

    def runner(schema: strawberry.Schema) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            result = await schema.execute(query)
            assert result.errors is None
            return result.data

        return run

    return {
        "tuned_us": await _cpu_per_call(runner(tuned), 2000) * 1e6,
        "naive_us": await _cpu_per_call(runner(naive), 2000) * 1e6,
    }


async def _client_cpu(client: httpx.AsyncClient, url: str, concurrency: int) -> float:
    total = 2000

    async def batch() -> None:
        responses = await asyncio.gather(*(client.get(url) for _ in range(concurrency)))
        assert all(r.status_code == 200 for r in responses)

    rounds = total // concurrency
    return await _cpu_per_call(batch, rounds) / concurrency


async def client_cost(port: int) -> dict[str, dict[str, float]]:
    url = f"http://127.0.0.1:{port}/hello"
    results: dict[str, dict[str, float]] = {}
    # the adapters' own stack: ProviderClient (straight to its transport) over reqwest
    async with ProviderClient(
        base_url=f"http://127.0.0.1:{port}",
        transport=ReqwestTransport(),
        timeout=httpx.Timeout(5.0),
    ) as provider_client:
        results["adapters"] = {
            "sequential_us": await _client_cpu(provider_client, url, 1) * 1e6,
            "concurrent_50_us": await _client_cpu(provider_client, url, 50) * 1e6,
        }
    for name, transport in (
        ("httpx over aiohttp", AiohttpTransport()),
        ("httpx default", httpx.AsyncHTTPTransport()),
    ):
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with httpx.AsyncClient(transport=transport, limits=limits) as client:
            results[name] = {
                "sequential_us": await _client_cpu(client, url, 1) * 1e6,
                "concurrent_50_us": await _client_cpu(client, url, 50) * 1e6,
            }
    return results


def run() -> dict[str, Any]:
    results: dict[str, Any] = {
        "p7": asyncio.run(large_list()),
        "p8": asyncio.run(trivial_operation()),
    }
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESIM_GATEWAY_")}
    with TemporaryDirectory() as tmp:
        (Path(tmp) / "hello_app.py").write_text(HELLO_APP)
        args = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--app-dir", tmp]
        with _process(
            _pinned(0, [*args, "hello_app:app", "--port", str(port)]),
            env,
            f"http://127.0.0.1:{port}/hello",
        ):
            # the client on the other core, so server and client do not share one
            cores = os.sched_getaffinity(0)
            if len(cores) > 1:
                os.sched_setaffinity(0, {max(cores)})
            try:
                results["p9"] = asyncio.run(client_cost(port))
            finally:
                os.sched_setaffinity(0, cores)
    return results


if __name__ == "__main__":  # pragma: no cover
    print(run())
