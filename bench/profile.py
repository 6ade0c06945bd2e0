"""Where an `order(id)`'s CPU goes, per layer (issue 12's budget), from a py-spy profile.

`python -m bench.profile [provider|ledger]` starts the simulator and the gateway as
`bench.load` does, drives `order(id)` with one provider read at concurrency 10 (or goal 2's
`order(id)` answered from the ledger alone, at concurrency 1), records the gateway process
with py-spy (sampling, from outside the process) and attributes each sample to the layer
of the innermost frame that belongs to one (asyncio's own frames go to the layer that
awaited). With the gateway's CPU per request measured alongside, each layer's share
becomes microseconds per request.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

from bench import load

#: (layer, path fragments of its frames); the first match from the innermost frame wins
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "logging and metrics",
        (
            "structlog/",
            "logging/",
            "prometheus_client/",
            "esim_gateway/ops/logging.py",
            "esim_gateway/ops/metrics.py",
            "esim_gateway/ops/requests.py",
            "esim_gateway/ops/tracing.py",
            # provider calls counted and timed: before the adapters' catch-all below
            "esim_gateway/providers/instrumented.py",
        ),
    ),
    ("auth and rate limit", ("esim_gateway/http/auth.py", "esim_gateway/ops/ratelimit.py", "jwt/")),
    ("document gate", ("esim_gateway/schema/limits.py",)),
    ("ledger", ("esim_gateway/ledger/", "sqlalchemy/", "aiosqlite/", "asyncpg/")),
    ("loaders", ("esim_gateway/dataloaders/", "aiodataloader/")),
    (
        "provider registry (retry, breaker, semaphore, single flight)",
        ("esim_gateway/providers/registry.py", "stamina/", "tenacity/"),
    ),
    # before the adapters: the transport module lives under providers/ but is the client
    (
        "httpx",
        (
            "httpx/",
            "pyreqwest/",
            "esim_gateway/providers/reqwest.py",
            "httpx_aiohttp/",
            "aiohttp/",
            "yarl/",
            "multidict/",
        ),
    ),
    ("adapter and parsing", ("esim_gateway/providers/",)),
    (
        "execution (Strawberry, graphql-core, resolvers)",
        (
            "graphql/",
            "strawberry/schema/",
            "strawberry/types/",
            "strawberry/extensions/",
            "esim_gateway/schema/",
            "esim_gateway/resolvers/",
        ),
    ),
    (
        "HTTP and view (uvicorn, Starlette, Strawberry's view)",
        (
            "uvicorn/",
            "starlette/",
            "strawberry/http/",
            "esim_gateway/http/view.py",
            "esim_gateway/http/endpoint.py",
            "esim_gateway/http/protocol.py",
            "esim_gateway/http/caching.py",
            "esim_gateway/http/routing.py",
            "httptools/",
            "orjson",
        ),
    ),
)
OTHER = "event loop and other"


#: innermost frames that mean the event loop itself was running (uvloop's C code below
#: `run_until_complete`): not the layer of whatever started the loop
EVENT_LOOP = ("asyncio/runners.py", "asyncio/base_events.py", "uvloop/")


def layer_of(frames: list[str]) -> str:
    if frames and any(fragment in frames[-1] for fragment in EVENT_LOOP):
        return OTHER
    for frame in reversed(frames):
        for layer, fragments in LAYERS:
            if any(fragment in frame for fragment in fragments):
                return layer
    return OTHER


def budget(raw: Path) -> Counter[str]:
    """Samples per layer from py-spy's raw (collapsed stack) output."""
    samples: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():  # a line py-spy cut short while the process changed
            continue
        frames = stack.split(";")
        if "aiosqlite/" in stack:  # its worker thread, or a call handing work to it
            samples["ledger"] += int(count)
            continue
        # A coroutine resumed by uvloop's C loop shows only its own task's frames (no
        # __main__ below them): classified by those frames like any other sample. (The
        # first budget counted such samples as "event loop and other": 64 % of them.)
        samples[layer_of(frames)] += int(count)
    return samples


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


#: the query shapes profiled: name -> (query, concurrency)
SHAPES: dict[str, tuple[str, int]] = {
    # one provider read per request, one order per connection (no shared reads)
    "provider": (load.ORDER_QUERY, 10),
    # goal 2's query, answered from the ledger alone, as goal 2 measures it
    "ledger": (load.LEDGER_QUERY, 1),
}


def run(
    seconds: float = 10.0, shape: str = "provider", keep: Path | None = None
) -> dict[str, Any] | None:
    """The budget of one query shape; `keep` saves py-spy's raw stacks there."""
    spy = py_spy()
    if spy is None:
        return None
    py = sys.executable
    up, gw = load._port(), load._port()
    upstream = f"http://127.0.0.1:{up}/roamify"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESIM_GATEWAY_")}
    with TemporaryDirectory() as tmp:
        gateway_env = {
            **env,
            "ESIM_GATEWAY_MODE": "live",
            "ESIM_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/ledger.db",
            "ESIM_GATEWAY_ROAMIFY_BASE_URL": upstream,
            "ESIM_GATEWAY_ROAMIFY_TOKEN": "sandbox-roamify-token",
            "ESIM_GATEWAY_API_KEYS": f"bench:customer:{load.API_KEY}",
            "ESIM_GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
            "ESIM_GATEWAY_RATE_LIMIT_BURST": "1000000",
        }
        with (
            load._process(
                load._pinned(1, [py, "-m", "esim_gateway", "sandbox", "--port", str(up)]),
                env,
                f"{upstream}/_sandbox/calls",
            ),
            load._process(
                load._pinned(0, [py, "-m", "esim_gateway", "serve", "--port", str(gw)]),
                gateway_env,
                f"http://127.0.0.1:{gw}/healthz",
            ) as pid,
        ):
            raw = Path(tmp) / "profile.txt"
            servers = load.Servers(gw, pid, 0, 0, 0, upstream)
            requests, cpu = asyncio.run(_drive(servers, spy, raw, seconds, *SHAPES[shape]))
            samples = budget(raw)
            if keep is not None:
                shutil.copy(raw, keep)
    total = sum(samples.values())
    per_request_us = cpu / requests * 1e6
    return {
        "requests": requests,
        "cpu_us": per_request_us,
        "layers": {
            layer: {"share": n / total, "us": n / total * per_request_us}
            for layer, n in samples.most_common()
        },
    }


async def _drive(
    servers: load.Servers, spy: str, raw: Path, seconds: float, query: str, concurrency: int
) -> tuple[int, float]:
    async with httpx.AsyncClient(timeout=60) as client:
        orders = await load._orders(client, servers, servers.gateway, concurrency)
    targets = tuple(
        load.Target.post(
            servers.gateway, "/graphql", {"query": query, "variables": {"id": o["id"]}}
        )
        for o in orders
    )
    await load.closed_loop(targets, concurrency, 2.0)  # warm
    # py-spy samples from outside: the gateway is not slowed by an in-process tracer
    recorder = await asyncio.create_subprocess_exec(
        spy,
        "record",
        "-p",
        str(servers.gateway_pid),
        "-d",
        str(int(seconds)),
        "-r",
        "250",
        "-f",
        "raw",
        "-o",
        str(raw),
        "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    cpu_before = load.cpu_seconds(servers.gateway_pid)
    result = await load.closed_loop(targets, concurrency, seconds)
    cpu = load.cpu_seconds(servers.gateway_pid) - cpu_before
    await recorder.wait()
    return result.requests, cpu


if __name__ == "__main__":  # pragma: no cover
    # python -m bench.profile [provider|ledger] [raw stacks file]
    print(
        run(
            shape=sys.argv[1] if len(sys.argv) > 1 else "provider",
            keep=Path(sys.argv[2]) if len(sys.argv) > 2 else None,
        )
    )
