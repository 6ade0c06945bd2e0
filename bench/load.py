"""Load benchmarks over loopback (QUALITY.md 5.1, issue 7): every figure against a baseline
measured in the same run.

Processes: the provider simulator (`esim-gateway sandbox`), the gateway (`esim-gateway
serve`, live adapters pointed at the simulator), a bare Starlette app doing the same
provider call with httpx.AsyncClient over httpx-aiohttp (issue 12's baseline; the gateway
uses its own ProviderClient over reqwest), and the naive build of the gateway. The
gateway and its baselines are pinned to core 0 with `taskset` (each loaded in turn);
the simulator and this load generator share core 1. The load generator is a minimal
keep-alive HTTP/1.1 client on raw asyncio streams (a few microseconds per request, so the
client is not what is measured), closed-loop for throughput and latency, open-loop at a
fixed arrival rate for tail latency. Each cell: a warm-up, then `runs` interleaved runs,
median reported.

* P1/P4: `order(id)` vs the bare endpoint, concurrency 1 and 10.
* P11 (issue 12): the same against GraphQL Mesh (Hive Gateway serving an OpenAPI
  description of the order endpoint, `bench/mesh`), when node and its packages are there.
  At concurrency 10 each connection reads an order of its own on every server, so every
  request reaches the upstream once (the gateway would share identical reads in flight).
* single flight: 100 concurrent `order(id)` for one order, upstream calls per wave.
* P3: `{ __typename }` vs a plain Starlette JSON endpoint.
* P5: gateway requests per CPU-second of its process, at saturation.
* naive: the tuned gateway vs the naive build (no parser/validation/ledger caches, httpx's
  default transport), same query.
* P6: p99 / p50 at half the measured capacity, fixed arrival rate.
* memory: the gateway's RSS after 1,000 and after 10,000 requests.
* P2: upstream calls for N = 1, 10, 100 orders with their eSIMs.
* batch: `orders(first: 50)` with eSIMs vs a client making the 50 REST calls itself, one by
  one, with 20 ms of provider latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

TOKEN = {"authorization": "Bearer sandbox-roamify-token"}
API_KEY = "bench-api-key-0123456789abcdef"
AUTH = {"authorization": f"Bearer {API_KEY}"}
ORDER_QUERY = """query Order($id: ID!) { order(id: $id) { ... on Order { status
  items { packageId quantity } } } }"""
CREATE = """mutation($input: CreateOrderInput!) { createOrder(input: $input) {
  ... on Order { id providerOrderId } } }"""
LIST = """query List($n: Int) { orders(first: $n) {
  edges { node { id status esims { iccid } } } } }"""

BARE_APP = """
import os, httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from httpx_aiohttp import AiohttpTransport

client = httpx.AsyncClient(base_url=os.environ["UPSTREAM"], transport=AiohttpTransport(),
                           headers={"authorization": "Bearer sandbox-roamify-token"})

async def order(request):
    upstream = await client.get("/api/esim/order",
                                params={"orderId": request.query_params["id"]})
    return Response(upstream.content, media_type="application/json")

async def hello(request):
    return JSONResponse({"data": {"__typename": "Query"}})

# goal 2 of issue 12: the same ledger row the gateway answers `order(id)` from, read by a
# plain endpoint with the same driver (SQLAlchemy Core over aiosqlite, or asyncpg)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROW = text("SELECT id, state, reference, idempotency_key, created_at FROM orders WHERE id = :id")

def row_endpoint(url):
    ledger = create_async_engine(url)

    async def row(request):
        async with ledger.connect() as conn:
            found = (await conn.execute(ROW, {"id": request.query_params["id"]})).mappings().first()
        order = {"id": str(found["id"]), "status": found["state"].upper(),
                 "reference": found["reference"], "idempotencyKey": found["idempotency_key"],
                 "createdAt": str(found["created_at"])}
        return JSONResponse({"data": {"order": order}})

    return row

routes = [Route("/order", order), Route("/hello", hello),
          Route("/row", row_endpoint(os.environ["LEDGER_URL"]))]
if os.environ.get("LEDGER_PG_URL"):  # the same over asyncpg, on the PostgreSQL gateway's ledger
    routes.append(Route("/row-pg", row_endpoint(os.environ["LEDGER_PG_URL"])))
app = Starlette(routes=routes)
"""
LEDGER_QUERY = """query Order($id: ID!) { order(id: $id) { ... on Order { id status reference
  idempotencyKey createdAt } } }"""

NAIVE_APP = """
from esim_gateway.app import create_app
from esim_gateway.config import Settings

def create():
    return create_app(Settings.from_env(), optimised=False)
"""

MESH_QUERY = """query Order($id: String!) { order(orderId: $id) {
  ... on OrderEnvelope { data { status items { packageId } } } } }"""
MESH_DIR = Path(__file__).resolve().parent / "mesh"

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


# -- a minimal keep-alive HTTP/1.1 client ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    port: int
    request: bytes  # the whole request, sent as is on a kept-alive connection

    @classmethod
    def post(
        cls, port: int, path: str, payload: dict[str, Any], *, authorization: bool = True
    ) -> Target:
        """A GraphQL POST, as an app would send it (with its API key)."""
        body = json.dumps(payload).encode()
        auth = f"Authorization: {AUTH['authorization']}\r\n" if authorization else ""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return cls(port, head.encode() + body)

    @classmethod
    def get(cls, port: int, path: str) -> Target:
        return cls(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, target: Target) -> bool:
        """One request; True when it answered 200 without GraphQL errors."""
        self.writer.write(target.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = _CONTENT_LENGTH.search(head)
        assert length is not None, head  # every server here answers with a length
        body = await self.reader.readexactly(int(length.group(1)))
        return head[9:12] == b"200" and b'"errors"' not in body

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True, slots=True)
class Run:
    p50_ms: float
    p99_ms: float
    rps: float
    errors: int
    requests: int


def _summary(latencies: list[float], elapsed: float, errors: int) -> Run:
    latencies.sort()
    return Run(
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000,
        rps=len(latencies) / elapsed,
        errors=errors,
        requests=len(latencies),
    )


Targets = Target | tuple[Target, ...]


async def closed_loop(targets: Targets, concurrency: int, seconds: float) -> Run:
    """`concurrency` connections sending back to back; with several targets, connection
    i sends target i (modulo their number): one resource per connection."""
    each = targets if isinstance(targets, tuple) else (targets,)
    connections = [await Connection.open(each[0].port) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(connection: Connection, target: Target) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            started = time.perf_counter()
            ok = await connection.send(target)
            latencies.append(time.perf_counter() - started)
            errors += not ok

    began = time.perf_counter()
    await asyncio.gather(*(worker(c, each[i % len(each)]) for i, c in enumerate(connections)))
    elapsed = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return _summary(latencies, elapsed, errors)


async def open_loop(target: Target, rate: float, seconds: float, connections: int = 64) -> Run:
    """Requests at a fixed arrival rate; latency counts from when each was due, so a
    stalled server cannot hide its queue (no coordinated omission)."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(target.port))
    latencies: list[float] = []
    errors = 0

    async def one(due: float) -> None:
        nonlocal errors
        connection = await pool.get()
        try:
            errors += not await connection.send(target)
        finally:
            pool.put_nowait(connection)
        latencies.append(time.perf_counter() - due)

    began = time.perf_counter()
    tasks = []
    for index in range(int(rate * seconds)):
        due = began + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    while not pool.empty():
        pool.get_nowait().close()
    return _summary(latencies, elapsed, errors)


async def count(target: Target, requests: int, concurrency: int = 10) -> None:
    """Sends exactly `requests` requests (for the memory figures)."""
    connections = [await Connection.open(target.port) for _ in range(concurrency)]
    share = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]

    async def worker(connection: Connection, n: int) -> None:
        for _ in range(n):
            assert await connection.send(target)

    await asyncio.gather(*(worker(c, n) for c, n in zip(connections, share, strict=True)))
    for connection in connections:
        connection.close()


# -- processes ------------------------------------------------------------------------------


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pinned(core: int, args: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *args]
    return args


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], ready: str) -> Iterator[int]:
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"{args} exited with {process.returncode}"
            assert time.monotonic() < deadline, f"{args} did not start"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready, timeout=1).status_code < 500:
                    break
            time.sleep(0.1)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=15)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# -- the benchmark --------------------------------------------------------------------------


def mesh_command() -> list[str] | None:
    """Hive Gateway from bench/mesh (`npm ci` there), or None without node or packages."""
    binary = MESH_DIR / "node_modules" / ".bin"
    if shutil.which("node") is None or not (binary / "hive-gateway").exists():
        return None
    return [str(binary / "hive-gateway")]


def compose_mesh(upstream: str, out: Path) -> None:
    """The supergraph of the OpenAPI description, pointed at this run's simulator."""
    subprocess.run(
        [str(MESH_DIR / "node_modules" / ".bin" / "mesh-compose"), "-o", str(out)],
        cwd=MESH_DIR,
        env={**os.environ, "ROAMIFY_UPSTREAM": upstream},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class Servers:
    gateway: int
    gateway_pid: int
    bare_pid: int
    naive: int
    bare: int
    upstream: str
    mesh: int | None = None
    gateway_pg: int | None = None  # the same gateway on a PostgreSQL ledger, when one answers


@contextlib.contextmanager
def postgres_database() -> Iterator[str | None]:
    """A database of this run's own on the PostgreSQL server, dropped afterwards; None
    (goal 2 measured on SQLite only) when there is no server or it refuses us."""
    # the server the tests use, found the same way (a dev dependency, as the bench is)
    from tests.conftest import find_postgres_url, postgres_admin

    url = find_postgres_url(os.environ)
    if url is None:
        yield None
        return
    name = f"esim_gateway_bench_{os.getpid()}"
    try:
        asyncio.run(postgres_admin(url, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # a server found on the port may not be ours to use
        print(f"bench: PostgreSQL at {url} not used: {type(exc).__name__}", file=sys.stderr)
        yield None
        return
    try:
        yield f"{url.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(seconds: float = 3.0, runs: int = 3, tail_seconds: float = 20.0) -> dict[str, Any]:
    py = sys.executable
    up, gw, naive, bare = _port(), _port(), _port(), _port()
    upstream = f"http://127.0.0.1:{up}/roamify"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESIM_GATEWAY_")}
    with TemporaryDirectory() as tmp, postgres_database() as pg_url:
        (Path(tmp) / "bare_app.py").write_text(BARE_APP)
        (Path(tmp) / "naive_app.py").write_text(NAIVE_APP)

        def gateway_env(name: str, **extra: str) -> dict[str, str]:
            return {
                **env,
                "ESIM_GATEWAY_MODE": "live",
                "ESIM_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/{name}.db",
                "ESIM_GATEWAY_ROAMIFY_BASE_URL": upstream,
                "ESIM_GATEWAY_ROAMIFY_TOKEN": "sandbox-roamify-token",
                "ESIM_GATEWAY_API_KEYS": f"bench:customer:{API_KEY}",
                # the default level: the gateway pays for its access line, as deployed
                "ESIM_GATEWAY_LOG_LEVEL": "INFO",
                "ESIM_GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
                "ESIM_GATEWAY_RATE_LIMIT_BURST": "1000000",
                **extra,
            }

        uvicorn = [py, "-m", "uvicorn", "--log-level", "warning", "--app-dir", tmp]
        with (
            _process(
                _pinned(1, [py, "-m", "esim_gateway", "sandbox", "--port", str(up)]),
                env,
                f"{upstream}/_sandbox/calls",
            ),
            _process(
                _pinned(0, [py, "-m", "esim_gateway", "serve", "--port", str(gw)]),
                gateway_env("tuned"),
                f"http://127.0.0.1:{gw}/healthz",
            ) as gateway_pid,
            _process(
                _pinned(0, [*uvicorn, "--factory", "naive_app:create", "--port", str(naive)]),
                gateway_env("naive", ESIM_GATEWAY_HTTP_TRANSPORT="httpx"),
                f"http://127.0.0.1:{naive}/healthz",
            ),
            contextlib.ExitStack() as peers,
        ):
            bare_env = {
                **env,
                "UPSTREAM": upstream,
                "LEDGER_URL": f"sqlite+aiosqlite:///{tmp}/tuned.db",
            }
            gateway_pg = None
            if pg_url is not None:
                # goal 2 on PostgreSQL: the same gateway and the same plain endpoint, both
                # on one database (the gateway creates its tables when it starts)
                gateway_pg = _port()
                peers.enter_context(
                    _process(
                        _pinned(0, [py, "-m", "esim_gateway", "serve", "--port", str(gateway_pg)]),
                        gateway_env("pg", ESIM_GATEWAY_DATABASE_URL=pg_url),
                        f"http://127.0.0.1:{gateway_pg}/healthz",
                    )
                )
                bare_env["LEDGER_PG_URL"] = pg_url
            bare_pid = peers.enter_context(
                _process(
                    _pinned(0, [*uvicorn, "bare_app:app", "--port", str(bare)]),
                    bare_env,
                    f"http://127.0.0.1:{bare}/hello",
                )
            )
            servers = Servers(gw, gateway_pid, bare_pid, naive, bare, upstream)
            servers.gateway_pg = gateway_pg
            mesh = mesh_command()
            if mesh is not None:
                servers.mesh = _port()
                supergraph = Path(tmp) / "supergraph.graphql"
                compose_mesh(upstream, supergraph)
                serve = [*mesh, "supergraph", str(supergraph), "--host", "127.0.0.1"]
                peers.enter_context(
                    _process(
                        # one process (no cluster), as the gateway and the bare endpoint
                        _pinned(0, [*serve, "--port", str(servers.mesh), "--fork", "1"]),
                        {**env, "NODE_ENV": "production"},
                        f"http://127.0.0.1:{servers.mesh}/healthcheck",
                    )
                )
            return asyncio.run(_measure(servers, seconds, runs, tail_seconds))


async def _graphql(client: httpx.AsyncClient, port: int, query: str, **variables: Any) -> Any:
    response = await client.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables},
        headers=AUTH,
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def _orders(client: httpx.AsyncClient, servers: Servers, port: int, n: int) -> list[Any]:
    packages = (
        await client.get(
            f"{servers.upstream}/api/esim/packages",
            headers=TOKEN,
            params={"page": 1, "pageSize": 50},
        )
    ).json()
    package_id = next(
        p["packageId"] for p in packages["data"]["packages"] if "requirements" not in p
    )
    orders = []
    for i in range(n):
        item = {"packageId": package_id, "quantity": 1}
        data = await _graphql(
            client,
            port,
            CREATE,
            input={"provider": "ROAMIFY", "idempotencyKey": f"bench-{port}-{i}", "items": [item]},
        )
        orders.append(data["createOrder"])
    return orders


async def _cells(
    pairs: Mapping[str, Targets], concurrency: int, seconds: float, runs: int
) -> dict[str, Run]:
    """Interleaved runs of each target (so drift hits all alike); the median run of each."""
    for target in pairs.values():  # warm-up
        await closed_loop(target, concurrency, 1.0)
    results: dict[str, list[Run]] = {name: [] for name in pairs}
    for _ in range(runs):
        for name, target in pairs.items():
            results[name].append(await closed_loop(target, concurrency, seconds))
    return {name: sorted(rs, key=lambda r: r.rps)[len(rs) // 2] for name, rs in results.items()}


async def _measure(
    servers: Servers, seconds: float, runs: int, tail_seconds: float
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        orders = await _orders(client, servers, servers.gateway, 100)
        naive_orders = await _orders(client, servers, servers.naive, 1)
        p2 = {}
        for n in (1, 10, 100):
            await client.delete(f"{servers.upstream}/_sandbox/calls")
            await _graphql(client, servers.gateway, LIST, n=n)
            p2[n] = len((await client.get(f"{servers.upstream}/_sandbox/calls")).json())

    def order(port: int, order_id: str) -> Target:
        return Target.post(port, "/graphql", {"query": ORDER_QUERY, "variables": {"id": order_id}})

    # an order per connection (10 at most): every request reaches the upstream once
    gateways = tuple(order(servers.gateway, o["id"]) for o in orders[:10])
    bares = tuple(
        Target.get(servers.bare, f"/order?id={o['providerOrderId']}") for o in orders[:10]
    )
    gateway, bare = gateways[0], bares[0]
    naive = order(servers.naive, naive_orders[0]["id"])
    hello = Target.post(servers.gateway, "/graphql", {"query": "{ __typename }"})
    plain = Target.get(servers.bare, "/hello")
    subjects: dict[str, Targets] = {"direct": bares, "gateway": gateways}
    if servers.mesh is not None:
        subjects["mesh"] = tuple(
            Target.post(
                servers.mesh,
                "/graphql",
                {"query": MESH_QUERY, "variables": {"id": o["providerOrderId"]}},
                authorization=False,
            )
            for o in orders[:10]
        )

    overhead = {}
    for concurrency in (1, 10):
        overhead[concurrency] = await _cells(subjects, concurrency, seconds, runs)
    shared = await _single_flight(servers, orders[10]["id"])
    ledger_only = {
        "sqlite": await _ledger_cell(servers, servers.gateway, "/row", orders[0], seconds, runs)
    }
    if servers.gateway_pg is not None:
        async with httpx.AsyncClient(timeout=60) as client:
            (pg_order,) = await _orders(client, servers, servers.gateway_pg, 1)
        ledger_only["postgresql"] = await _ledger_cell(
            servers, servers.gateway_pg, "/row-pg", pg_order, seconds, runs
        )
    trivial = await _cells({"plain": plain, "gateway": hello}, 10, seconds, runs)
    naive_cells = await _cells({"tuned": gateway, "naive": naive}, 10, seconds, runs)

    # P5: requests per CPU-second of the gateway's process at saturation, and of the bare
    # endpoint's (what the same provider call costs without the gateway around it)
    gc_before = await gc_collections(servers.gateway)
    cpu_before = cpu_seconds(servers.gateway_pid)
    saturated = await closed_loop(gateway, 10, seconds)
    cpu = cpu_seconds(servers.gateway_pid) - cpu_before
    gc_runs = [a - b for a, b in zip(await gc_collections(servers.gateway), gc_before, strict=True)]
    cpu_before = cpu_seconds(servers.bare_pid)
    bare_saturated = await closed_loop(bare, 10, seconds)
    bare_cpu = cpu_seconds(servers.bare_pid) - cpu_before

    # P6: fixed arrival rate at half the capacity just measured, with how busy each
    # server's core really was (requests arriving one by one cost more CPU each than
    # back-to-back ones at saturation)
    rate = saturated.rps / 2
    tail, busy = await _open_loop_busy(gateway, rate, tail_seconds, servers.gateway_pid)
    # the same arrival rate on the bare endpoint: what the machine and the load generator
    # contribute to the tail on their own
    bare_tail, bare_busy = await _open_loop_busy(bare, rate, tail_seconds, servers.bare_pid)
    # and half that rate: the gateway's tail when its core is about half busy
    low_tail, low_busy = await _open_loop_busy(gateway, rate / 2, tail_seconds, servers.gateway_pid)

    # memory: RSS after 1,000 and after 10,000 requests (this process's requests so far
    # only warmed it up; both figures are taken from here on)
    await count(gateway, 1_000)
    rss_1k = rss_mb(servers.gateway_pid)
    await count(gateway, 9_000)
    rss_10k = rss_mb(servers.gateway_pid)

    batch = await _batch(servers, orders[:50])
    return {
        "p1_p4": overhead,
        "single_flight": shared,
        "ledger_only": ledger_only,
        "p3": trivial,
        "naive": naive_cells,
        "p5": {
            "requests": saturated.requests,
            "cpu_seconds": cpu,
            "bare_requests": bare_saturated.requests,
            "bare_cpu_seconds": bare_cpu,
            "gc_collections": gc_runs,
        },
        "p6": {
            "rate": rate,
            "run": tail,
            "busy": busy,
            "bare": bare_tail,
            "bare_busy": bare_busy,
            "low": low_tail,
            "low_busy": low_busy,
            "seconds": tail_seconds,
        },
        "memory": {"rss_1k_mb": rss_1k, "rss_10k_mb": rss_10k},
        "p2_upstream_calls": p2,
        "batch": batch,
    }


_GC_RUNS = re.compile(r'^python_gc_collections_total\{generation="(\d)"\} ([0-9.e+]+)$', re.M)


async def gc_collections(port: int) -> list[float]:
    """The gateway process's cyclic-collector runs so far, per generation (/metrics)."""
    async with httpx.AsyncClient(timeout=60) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    runs = {int(g): float(n) for g, n in _GC_RUNS.findall(text)}
    return [runs.get(generation, 0.0) for generation in range(3)]


async def _ledger_cell(
    servers: Servers, gateway: int, row_path: str, order: Any, seconds: float, runs: int
) -> dict[str, Run]:
    """Goal 2: `order(id)` answered from the ledger alone vs the plain endpoint reading the
    same row from the same database, concurrency 1."""
    return await _cells(
        {
            "row": Target.get(servers.bare, f"{row_path}?id={_uuid(order['id'])}"),
            "gateway": Target.post(
                gateway, "/graphql", {"query": LEDGER_QUERY, "variables": {"id": order["id"]}}
            ),
        },
        1,
        seconds,
        runs,
    )


def _uuid(global_id: str) -> str:
    """The ledger's row id inside an `Order` global id."""
    from esim_gateway.schema.ids import parse_order_id

    return parse_order_id(global_id)


async def _single_flight(
    servers: Servers, order_id: str, waves: int = 3, size: int = 100, latency: float = 0.3
) -> dict[str, Any]:
    """`size` concurrent `order(id)` for one order, `waves` times, with `latency` added
    upstream: how many upstream reads each wave made (goal 3 of issue 12)."""
    target = Target.post(
        servers.gateway, "/graphql", {"query": ORDER_QUERY, "variables": {"id": order_id}}
    )
    calls_url = f"{servers.upstream}/_sandbox/calls"
    faults = f"{servers.upstream}/_sandbox/faults"
    connections = [await Connection.open(servers.gateway) for _ in range(size)]
    per_wave = []
    async with httpx.AsyncClient(timeout=60) as client:
        await client.post(
            faults,
            json={"method": "GET", "path": "/api/esim/order", "latency": latency, "times": None},
        )
        try:
            for _ in range(waves):
                await client.delete(calls_url)
                answers = await asyncio.gather(*(c.send(target) for c in connections))
                assert all(answers)
                calls = (await client.get(calls_url)).json()
                per_wave.append(sum(1 for c in calls if c["path"] == "/api/esim/order"))
        finally:
            await client.delete(faults)
    for connection in connections:
        connection.close()
    return {"size": size, "latency_ms": latency * 1000, "upstream_calls": per_wave}


async def _open_loop_busy(
    target: Target, rate: float, seconds: float, pid: int
) -> tuple[Run, float]:
    """An open-loop run, and the share of a core the server's process used during it."""
    cpu_before, began = cpu_seconds(pid), time.perf_counter()
    run = await open_loop(target, rate, seconds)
    return run, (cpu_seconds(pid) - cpu_before) / (time.perf_counter() - began)


async def _batch(servers: Servers, orders: list[Any], latency: float = 0.02) -> dict[str, float]:
    """50 orders with their eSIMs in one query vs 50 REST calls one by one, both with
    `latency` added by the simulator to every call."""
    async with httpx.AsyncClient(timeout=60) as client:
        faults = f"{servers.upstream}/_sandbox/faults"
        for path in ("/api/esim/order", "/api/esims"):
            await client.post(
                faults, json={"method": "GET", "path": path, "latency": latency, "times": None}
            )
        try:
            rest = []
            graphql = []
            for _ in range(3):
                started = time.perf_counter()
                for order in orders:
                    response = await client.get(
                        f"{servers.upstream}/api/esim/order",
                        headers=TOKEN,
                        params={"orderId": order["providerOrderId"]},
                    )
                    response.raise_for_status()
                rest.append(time.perf_counter() - started)
                await asyncio.sleep(2.1)  # past the gateway's 2 s read cache: fresh reads
                started = time.perf_counter()
                data = await _graphql(client, servers.gateway, LIST, n=len(orders))
                graphql.append(time.perf_counter() - started)
                assert len(data["orders"]["edges"]) == len(orders)
        finally:
            await client.delete(faults)
    return {
        "orders": len(orders),
        "latency_ms": latency * 1000,
        "rest_ms": statistics.median(rest) * 1000,
        "graphql_ms": statistics.median(graphql) * 1000,
    }


if __name__ == "__main__":  # pragma: no cover
    print(run())
