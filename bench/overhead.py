"""P1/P4 and P2 (QUALITY.md 5.1): gateway overhead against a bare endpoint, same run.

Three processes on loopback: the Roamify simulator (`esim-gateway sandbox`) as the
upstream, the gateway (`esim-gateway serve`, live adapters pointed at the simulator), and
a bare Starlette endpoint doing the same provider call with the same httpx client stack.
A bounded asyncio client measures p50/p99 latency and throughput at concurrency 1 and 10
against both; P2 counts upstream calls for N = 1, 10, 100 orders with their eSIMs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

TOKEN = {"authorization": "Bearer sandbox-roamify-token"}
ORDER_QUERY = """query($id: ID!) { order(id: $id) { ... on Order { status
  items { packageId quantity } } } }"""
CREATE = """mutation($input: CreateOrderInput!) { createOrder(input: $input) {
  ... on Order { id } } }"""
LIST = "query($n: Int) { orders(first: $n) { edges { node { id esims { iccid } } } } }"

BARE_APP = """
import os, httpx
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from httpx_aiohttp import AiohttpTransport

client = httpx.AsyncClient(base_url=os.environ["UPSTREAM"], transport=AiohttpTransport(),
                           headers={"authorization": "Bearer sandbox-roamify-token"})

async def order(request):
    upstream = await client.get("/api/esim/order",
                                params={"orderId": request.query_params["id"]})
    return Response(upstream.content, media_type="application/json")

app = Starlette(routes=[Route("/order", order)])
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], ready: str) -> Iterator[None]:
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready, timeout=1).status_code < 500:
                    break
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=15)


async def _load(url: str, make: Any, concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def worker() -> None:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = await make(client, url)
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

        for _ in range(20):  # warm-up
            await make(client, url)
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "rps": len(latencies) / elapsed,
    }


def run(seconds: float = 3.0) -> dict[str, Any]:
    py = sys.executable
    up, gw, bare = _port(), _port(), _port()
    upstream = f"http://127.0.0.1:{up}/roamify"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESIM_GATEWAY_")}
    results: dict[str, Any] = {}
    with TemporaryDirectory() as tmp:
        (Path(tmp) / "bare_app.py").write_text(BARE_APP)
        gateway_env = {
            **env,
            "ESIM_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/ledger.db",
            "ESIM_GATEWAY_ROAMIFY_BASE_URL": upstream,
            "ESIM_GATEWAY_SIMPLIFYTRIP_BASE_URL": f"http://127.0.0.1:{up}/simplifytrip",
            "ESIM_GATEWAY_LOG_LEVEL": "WARNING",
            "ESIM_GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
            "ESIM_GATEWAY_RATE_LIMIT_BURST": "1000000",
        }
        with (
            _process(
                [py, "-m", "esim_gateway", "sandbox", "--port", str(up)],
                env,
                f"{upstream}/_sandbox/calls",
            ),
            _process(
                [py, "-m", "esim_gateway", "serve", "--port", str(gw)],
                gateway_env,
                f"http://127.0.0.1:{gw}/healthz",
            ),
            _process(
                [
                    py,
                    "-m",
                    "uvicorn",
                    "bare_app:app",
                    "--port",
                    str(bare),
                    "--log-level",
                    "warning",
                    "--app-dir",
                    tmp,
                ],
                {**env, "UPSTREAM": upstream},
                f"http://127.0.0.1:{bare}/order?id=x",
            ),
        ):
            results = asyncio.run(_measure(gw, bare, upstream, seconds))
    return results


async def _measure(gw: int, bare: int, upstream: str, seconds: float) -> dict[str, Any]:
    graphql = f"http://127.0.0.1:{gw}/graphql"
    async with httpx.AsyncClient(timeout=30) as client:
        packages = (
            await client.get(
                f"{upstream}/api/esim/packages", headers=TOKEN, params={"page": 1, "pageSize": 50}
            )
        ).json()
        package_id = next(
            p["packageId"] for p in packages["data"]["packages"] if "requirements" not in p
        )
        ids = []
        for i in range(100):
            body = (
                await client.post(
                    graphql,
                    json={
                        "query": CREATE,
                        "variables": {
                            "input": {
                                "provider": "ROAMIFY",
                                "idempotencyKey": f"bench-{i}",
                                "items": [{"packageId": package_id, "quantity": 1}],
                            }
                        },
                    },
                )
            ).json()
            ids.append(body["data"]["createOrder"]["id"])
        from strawberry.relay import GlobalID

        provider_id = (
            await client.post(
                graphql,
                json={
                    "query": "query($id: ID!) { order(id: $id) {"
                    " ... on Order { providerOrderId } } }",
                    "variables": {"id": ids[0]},
                },
            )
        ).json()["data"]["order"]["providerOrderId"]
        assert GlobalID.from_id(ids[0]).type_name == "Order"
        p2 = {}
        for n in (1, 10, 100):
            await client.delete(f"{upstream}/_sandbox/calls")
            await client.post(graphql, json={"query": LIST, "variables": {"n": n}})
            calls = (await client.get(f"{upstream}/_sandbox/calls")).json()
            p2[n] = len(calls)

    async def via_gateway(c: httpx.AsyncClient, url: str) -> httpx.Response:
        return await c.post(url, json={"query": ORDER_QUERY, "variables": {"id": ids[0]}})

    async def via_bare(c: httpx.AsyncClient, url: str) -> httpx.Response:
        return await c.get(url, params={"id": provider_id})

    table = {}
    for concurrency in (1, 10):
        direct = await _load(f"http://127.0.0.1:{bare}/order", via_bare, concurrency, seconds)
        gateway = await _load(graphql, via_gateway, concurrency, seconds)
        table[concurrency] = {
            "direct": direct,
            "gateway": gateway,
            "p50_ratio": gateway["p50_ms"] / direct["p50_ms"],
            "p99_ratio": gateway["p99_ms"] / direct["p99_ms"],
            "throughput_ratio": gateway["rps"] / direct["rps"],
        }
    return {"p1_p4": table, "p2_upstream_calls": p2}
