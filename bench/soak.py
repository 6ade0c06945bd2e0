"""The soak (issue 22 goal 9, QUALITY.md R13): two replicas on PostgreSQL and Redis under
mixed traffic at about half their capacity, for a set time.

`make soak` (one hour) or `python -m bench.soak --duration 600 --window 60`. Processes, all
on loopback: the provider simulators (`esim-gateway sandbox`, fulfilment after one second),
two gateway replicas (`esim-gateway serve`) on one PostgreSQL database of the run's own with
Redis for the shared rate limits and persisted queries, and a signed-webhook receiver
(`esim-gateway webhook-receiver`) registered for the order events.

The traffic: catalog reads, order reads and order lists at a fixed arrival rate (half of
what the two replicas answered in a closed-loop probe at the start), purchases of both
providers at `--purchase-rate`, a third of them meeting one of the simulator's faults
(fail, commit then 500, slow commit, 429, late commit, hang with no commit, read lag), each
answered badly retried with the same key on the other replica; a subscription on the other
replica follows one purchase in four until its order settles. Every `--window` seconds a
row: each replica's RSS, read p50/p99, errors, purchases settled, webhooks delivered,
subscriptions that saw their order settle.

At the end the faults stop and the run drains (every purchase settled, every delivery
made), then checks against the ledger and the simulators: every key bought at most once
upstream, no purchase lost (one ledger order per key, settled, agreeing with the
provider), no webhook undelivered, and RSS growth after the first window under 10 %.
Exit status 0 only when all hold.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis
import websockets

from bench.load import _port, rss_mb
from esim_gateway.errors import NotFound
from esim_gateway.providers.roamify import RoamifyClient
from esim_gateway.providers.simplifytrip import SimplifyTripClient

CUSTOMER_KEY = "soak-customer-key-0123456789"
OPERATOR_KEY = "soak-operator-key-0123456789"
#: the soak's quiet period: a purchase with an unknown outcome is sent again (Roamify) only
#: after this long without a sign of it; short, so the drain at the end is minutes, not hours
QUIET_PERIOD = 20.0
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "REFUNDED", "PARTIALLY_REFUNDED"}
#: each simulator's purchase endpoint, where its faults are armed
PURCHASE_PATH = {"ROAMIFY": "/api/esim/order", "SIMPLIFYTRIP": "/api/v1/orders"}
FAULTS: list[dict[str, Any]] = [
    {"status": 500, "body": {"message": "Unknown error"}},
    {"status": 500, "body": {"message": "Unknown error"}, "commit_then_status": True},
    {"latency": 1.5},
    {"status": 429, "body": {"message": "slow down"}, "retry_after": 1},
    {"commit_late": 6.0},
    {"hang": True},
    {"drop_after_commit": True, "read_lag": 3.0},
]
CATALOG = """query($c: String!) { packages(filter: {country: $c}, first: 10) {
  totalCount edges { node { id packageId price { amount currency } } } } }"""
ORDER = "query($id: ID!) { order(id: $id) { __typename ... on Order { id status } } }"
ORDERS = "{ orders(first: 20) { edges { node { id status } } } }"
CREATE = """mutation($input: CreateOrderInput!) { createOrder(input: $input, wait: false) {
  __typename ... on Order { id status } ... on Error { message } } }"""
SUBSCRIBE = "subscription($id: ID!) { orderUpdated(id: $id) { id status } }"
ENDPOINT = """mutation($url: String!) { createWebhookEndpoint(url: $url,
  events: ["order.completed", "order.failed"]) { __typename ... on WebhookEndpointSecret {
  secret } ... on Error { message } } }"""
COUNTRIES = ["JP", "FR", "US", "TH", "DE", "IT", "ES", "GB", "TR", "VN"]


@dataclass
class Purchase:
    key: str
    provider: str
    order_id: str | None = None
    settled_at: float | None = None


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    settled: int = 0
    delivered: int = 0
    followed: int = 0
    missed: int = 0


@dataclass
class Replica:
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"


class Receiver:
    """The webhook receiver process's stdout, read on a thread: one JSON line a delivery."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.ids: set[str] = set()
        self.lines = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._lock:
                self.ids.add(json.loads(line)["webhook-id"])
                self.lines += 1

    def count(self) -> int:
        with self._lock:
            return len(self.ids)


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], ready: str | None, **kw: Any) -> Iterator[Any]:
    process = subprocess.Popen([sys.executable, "-m", "esim_gateway", *args], env=env, **kw)
    try:
        deadline = time.monotonic() + 60
        while ready is not None:
            if process.poll() is not None:
                raise RuntimeError(f"{args[0]} exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{args[0]} did not start")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready, timeout=1).status_code < 500:
                    break
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ESIM_GATEWAY_")}


def _replica_env(database: str, sandbox: str, redis: str) -> dict[str, str]:
    return {
        **_clean_env(),
        "ESIM_GATEWAY_DATABASE_URL": database,
        "ESIM_GATEWAY_ROAMIFY_BASE_URL": f"{sandbox}/roamify",
        "ESIM_GATEWAY_SIMPLIFYTRIP_BASE_URL": f"{sandbox}/simplifytrip",
        "ESIM_GATEWAY_API_KEYS": f"soak:customer:{CUSTOMER_KEY},ops:operator:{OPERATOR_KEY}",
        "ESIM_GATEWAY_RATE_LIMIT_REDIS_URL": redis,
        "ESIM_GATEWAY_APQ_REDIS_URL": redis,
        "ESIM_GATEWAY_RATE_LIMIT_PER_SECOND": "100000",
        "ESIM_GATEWAY_RATE_LIMIT_BURST": "100000",
        "ESIM_GATEWAY_ROAMIFY_QUIET_PERIOD": str(QUIET_PERIOD),
        "ESIM_GATEWAY_SIMPLIFYTRIP_QUIET_PERIOD": str(QUIET_PERIOD),
        "ESIM_GATEWAY_ORDER_DEADLINE": "5",
        "ESIM_GATEWAY_WEBHOOK_RETRY_SCHEDULE": "1,2,5,10,30",
        "ESIM_GATEWAY_LOG_LEVEL": "WARNING",
    }


class Soak:
    def __init__(self, args: argparse.Namespace, replicas: list[Replica], sandbox: str) -> None:
        self.args = args
        self.replicas = replicas
        self.sandbox = sandbox
        self.rng = random.Random(args.seed)
        #: what the errors of the table were, over the whole run (an answer's HTTP status,
        #: a GraphQL error's code or message, a client-side exception's type)
        self.error_kinds: collections.Counter[str] = collections.Counter()
        self.purchases: list[Purchase] = []
        self.windows: list[Window] = [Window()]
        self.packages: dict[str, str] = {}
        self.subscriptions = 0
        self.http = httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_connections=200, max_keepalive_connections=100)
        )

    @property
    def now(self) -> Window:
        return self.windows[-1]

    async def graphql(
        self, replica: Replica, query: str, key: str = CUSTOMER_KEY, **variables: Any
    ) -> Any:
        response = await self.http.post(
            replica.url,
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {key}"},
        )
        if response.status_code != 200:
            self.error_kinds[f"HTTP {response.status_code}"] += 1
            return None
        return response.json()

    # -- reads ----------------------------------------------------------------------------

    async def read(self) -> None:
        replica = self.rng.choice(self.replicas)
        kind = self.rng.random()
        known = [p for p in self.purchases if p.order_id is not None]
        started = time.perf_counter()
        try:
            if kind < 0.45 and known:
                purchase = self.rng.choice(known)
                body = await self.graphql(replica, ORDER, id=purchase.order_id)
                self._saw(purchase, body and body.get("data", {}).get("order"))
            elif kind < 0.85:
                body = await self.graphql(replica, CATALOG, c=self.rng.choice(COUNTRIES))
            else:
                body = await self.graphql(replica, ORDERS)
        except httpx.HTTPError as exc:
            self.error_kinds[type(exc).__name__] += 1
            body = None
        self.now.latencies.append(time.perf_counter() - started)
        if body is not None and body.get("errors"):
            error = body["errors"][0]
            self.error_kinds[error.get("extensions", {}).get("code") or error["message"][:80]] += 1
        if body is None or body.get("errors"):
            self.now.errors += 1

    def _saw(self, purchase: Purchase, order: Any) -> None:
        if purchase.settled_at is None and order and order.get("status") in FINAL:
            purchase.settled_at = time.monotonic()
            self.now.settled += 1

    async def reads_at(self, rate: float, until: float) -> None:
        tasks: set[asyncio.Task[None]] = set()
        gap = 1.0 / rate
        due = time.monotonic()
        while due < until:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if len(tasks) < 400:  # bounded: a stalled server must not grow the client
                task = asyncio.ensure_future(self.read())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                self.now.errors += 1
                self.error_kinds["not sent: 400 reads already in flight"] += 1
            due += self.rng.expovariate(1.0 / gap)
        await asyncio.gather(*tasks)

    # -- purchases ------------------------------------------------------------------------

    async def buy(self, index: int) -> None:
        provider = ("ROAMIFY", "SIMPLIFYTRIP")[index % 2]
        purchase = Purchase(f"soak-{self.args.seed}-{index}", provider)
        self.purchases.append(purchase)
        if self.rng.random() < 1 / 3:
            fault = {"method": "POST", "path": PURCHASE_PATH[provider], "times": 1}
            await self.http.post(
                f"{self.sandbox}/{provider.lower()}/_sandbox/faults",
                json={**fault, **self.rng.choice(FAULTS)},
            )
        first, second = self.rng.sample(self.replicas, 2)
        variables: dict[str, Any] = {
            "input": {
                "provider": provider,
                "idempotencyKey": purchase.key,
                "items": [{"packageId": self.packages[provider], "quantity": 1}],
            }
        }
        for attempt, replica in enumerate((first, second, first, second)):
            try:
                body = await self.graphql(replica, CREATE, input=variables["input"])
            except httpx.HTTPError:
                body = None
            order = (body or {}).get("data", {}).get("createOrder") or {}
            if order.get("__typename") == "Order":
                purchase.order_id = order["id"]
                self._saw(purchase, order)
                break
            await asyncio.sleep(2.0 * (attempt + 1))  # a client's backoff between retries
        if purchase.order_id is not None and index % 4 == 0 and self.subscriptions < 20:
            await self.follow(second, purchase)

    async def follow(self, replica: Replica, purchase: Purchase) -> None:
        """A subscription on the other replica until the order settles (or 120 s)."""
        self.subscriptions += 1
        try:
            settled = await asyncio.wait_for(self._subscribe(replica, purchase), 120)
        except (TimeoutError, OSError, websockets.WebSocketException):
            settled = False
        finally:
            self.subscriptions -= 1
        if settled:
            self.now.followed += 1
        else:
            self.now.missed += 1

    async def _subscribe(self, replica: Replica, purchase: Purchase) -> bool:
        url = f"ws://127.0.0.1:{replica.port}/graphql"
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            init = {
                "type": "connection_init",
                "payload": {"Authorization": f"Bearer {CUSTOMER_KEY}"},
            }
            await ws.send(json.dumps(init))
            await ws.recv()  # connection_ack
            payload = {"query": SUBSCRIBE, "variables": {"id": purchase.order_id}}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] != "next":
                    return False
                order = message["payload"]["data"]["orderUpdated"]
                self._saw(purchase, order)
                if order["status"] in FINAL:
                    return True
        return False

    async def purchases_at(self, rate: float, until: float) -> None:
        tasks: set[asyncio.Task[None]] = set()
        index = len(self.purchases)
        while time.monotonic() < until:
            task = asyncio.ensure_future(self.buy(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
            await asyncio.sleep(self.rng.expovariate(rate))
        await asyncio.gather(*tasks)

    async def follow_unsettled(self, until: float) -> None:
        """An app polling its pending orders every few seconds (on either replica)."""
        while time.monotonic() < until:
            for purchase in [p for p in self.purchases if p.order_id and not p.settled_at][:50]:
                body = await self.graphql(
                    self.rng.choice(self.replicas), ORDER, id=purchase.order_id
                )
                self._saw(purchase, body and body.get("data", {}).get("order"))
            await asyncio.sleep(5)


async def _capacity(soak: Soak, seconds: float) -> float:
    """Reads a second that the two replicas answer in a closed loop (8 connections each)."""
    done = 0
    end = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < end:
            await soak.read()
            done += 1

    await asyncio.gather(*(loop() for _ in range(16)))
    soak.windows[-1] = Window()
    return done / seconds


def _row(minute: float, window: Window, rss: list[float], sent: int) -> str:
    latencies = sorted(window.latencies) or [0.0]
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000
    return (
        f"| {minute:6.1f} | {rss[0]:6.1f} | {rss[1]:6.1f} | {len(window.latencies):7d} | "
        f"{p50:6.1f} | {p99:7.1f} | {window.errors:5d} | {sent:5d} | {window.settled:5d} | "
        f"{window.delivered:5d} | {window.followed}/{window.followed + window.missed} |"
    )


HEADER = (
    "| minute | RSS A MB | RSS B MB | reads | p50 ms | p99 ms | errors | bought | settled |"
    " webhooks | subscriptions |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


async def _windows(soak: Soak, receiver: Receiver, until: float, rows: list[str]) -> list[float]:
    start = time.monotonic()
    first_rss: list[float] = []
    delivered = receiver.count()
    sent = 0
    while time.monotonic() < until - 1:
        await asyncio.sleep(min(soak.args.window, max(0.0, until - time.monotonic())))
        rss = [rss_mb(r.pid) for r in soak.replicas]
        first_rss = first_rss or rss
        soak.now.delivered = receiver.count() - delivered
        delivered += soak.now.delivered
        bought = len(soak.purchases) - sent
        sent = len(soak.purchases)
        rows.append(_row((time.monotonic() - start) / 60, soak.now, rss, bought))
        print(rows[-1], flush=True)
        soak.windows.append(Window())
        # the simulators log every call for tests; a soak does not read it
        await soak.http.delete(f"{soak.sandbox}/roamify/_sandbox/calls")
        await soak.http.delete(f"{soak.sandbox}/simplifytrip/_sandbox/calls")
    return first_rss


async def _drain(soak: Soak, database: str, receiver: Receiver, timeout: float) -> dict[str, int]:
    """Faults off; wait until every purchase is settled in the ledger and every delivery
    made, or the timeout; then the counts of what is not."""
    for provider in ("roamify", "simplifytrip"):
        await soak.http.delete(f"{soak.sandbox}/{provider}/_sandbox/faults")
    connection = await asyncpg.connect(database.replace("postgresql+asyncpg", "postgresql"))
    try:
        deadline = time.monotonic() + timeout
        while True:
            unsettled = await connection.fetchval(
                "SELECT count(*) FROM orders WHERE state <> ALL($1::text[])", sorted(FINAL)
            )
            pending = await connection.fetchval(
                "SELECT count(*) FROM outbound_deliveries WHERE status <> 'DELIVERED'"
            )
            messages = await connection.fetchval("SELECT count(*) FROM outbound_messages")
            if (unsettled == 0 and pending == 0) or time.monotonic() > deadline:
                break
            await asyncio.sleep(5)
        keys = [p.key for p in soak.purchases]
        rows = await connection.fetch(
            "SELECT idempotency_key, provider, reference, state FROM orders"
            " WHERE idempotency_key = ANY($1::text[])",
            keys,
        )
    finally:
        await connection.close()
    return await _check(soak, rows, unsettled, pending, messages, receiver)


async def _check(
    soak: Soak, rows: list[Any], unsettled: int, pending: int, messages: int, receiver: Receiver
) -> dict[str, int]:
    by_key: dict[str, list[Any]] = {}
    for row in rows:
        by_key.setdefault(row["idempotency_key"], []).append(row)
    missing = sum(1 for p in soak.purchases if len(by_key.get(p.key, [])) != 1)
    double = disagree = 0
    async with (
        httpx.AsyncClient(base_url=f"{soak.sandbox}/roamify") as r_http,
        httpx.AsyncClient(base_url=f"{soak.sandbox}/simplifytrip") as s_http,
    ):
        roamify = RoamifyClient(r_http, token="sandbox-roamify-token")
        simplifytrip = SimplifyTripClient(
            s_http,
            api_key="pk_test_sandbox",
            secret_key="sk_test_sandbox",
            checksum_key="ck_test_sandbox",
        )
        for found in by_key.values():
            row = found[0]
            if row["provider"] == "roamify":
                upstream = len(await roamify.list_orders(reference_id=row["reference"]))
            else:
                try:
                    await simplifytrip.get_order(row["reference"])
                    upstream = 1
                except NotFound:
                    upstream = 0
            double += upstream > 1
            disagree += (row["state"] == "COMPLETED") != (upstream >= 1)
    return {
        "purchases": len(soak.purchases),
        "missing in the ledger": missing,
        "unsettled": unsettled,
        "bought twice upstream": double,
        "ledger and provider disagree": disagree,
        "webhook messages": messages,
        "deliveries not delivered": pending,
        "delivered to the receiver": receiver.count(),
    }


async def _run(
    args: argparse.Namespace,
    replicas: list[Replica],
    sandbox: str,
    receiver_port: int,
    database: str,
) -> int:
    soak = Soak(args, replicas, sandbox)
    body = await soak.graphql(
        replicas[0], ENDPOINT, OPERATOR_KEY, url=f"http://127.0.0.1:{receiver_port}/hooks"
    )
    secret = body["data"]["createWebhookEndpoint"]["secret"]
    with _process(
        ["webhook-receiver", "--secret", secret, "--port", str(receiver_port)],
        _clean_env(),
        None,
        stdout=subprocess.PIPE,
    ) as process:
        receiver = Receiver(process)
        soak.packages = await _packages(soak)
        capacity = await _capacity(soak, args.probe)
        rate = capacity * args.load
        print(
            f"soak: capacity {capacity:.0f} reads/s over both replicas; reading at {rate:.0f}/s,"
            f" buying at {args.purchase_rate}/s, for {args.duration:.0f} s",
            flush=True,
        )
        print(HEADER, flush=True)
        rows: list[str] = []
        until = time.monotonic() + args.duration
        windows = asyncio.ensure_future(_windows(soak, receiver, until, rows))
        await asyncio.gather(
            soak.reads_at(rate, until),
            soak.purchases_at(args.purchase_rate, until),
            soak.follow_unsettled(until),
        )
        first_rss = await windows
        for kind, count in soak.error_kinds.most_common(8):
            print(f"- errors: {count} x {kind}", flush=True)
        last_rss = [rss_mb(r.pid) for r in replicas]
        result = await _drain(soak, database, receiver, args.drain)
        await soak.http.aclose()
    return _verdict(result, first_rss, last_rss, rows, args)


async def _packages(soak: Soak) -> dict[str, str]:
    """One eSIM package per provider that needs nothing else (no travel date)."""
    query = """query($p: Provider!) { packages(filter: {provider: $p, country: "JP"}, first: 50) {
      edges { node { packageId } } } }"""
    found = {}
    for provider in ("ROAMIFY", "SIMPLIFYTRIP"):
        body = await soak.graphql(soak.replicas[0], query, p=provider)
        found[provider] = body["data"]["packages"]["edges"][0]["node"]["packageId"]
    return found


def _verdict(
    result: dict[str, int],
    first: list[float],
    last: list[float],
    rows: list[str],
    args: argparse.Namespace,
) -> int:
    growth = max((b - a) / a for a, b in zip(first, last, strict=True)) if first else 0.0
    ok = (
        result["missing in the ledger"] == 0
        and result["unsettled"] == 0
        and result["bought twice upstream"] == 0
        and result["ledger and provider disagree"] == 0
        and result["deliveries not delivered"] == 0
        and growth < 0.10
    )
    lines = [f"- {name}: {value}" for name, value in result.items()]
    lines.append(f"- RSS growth after the first window: {growth * 100:+.1f} % (goal < 10 %)")
    lines.append(f"- verdict: {'holds' if ok else 'DOES NOT HOLD'}")
    print("\n".join(lines), flush=True)
    if args.output:
        Path(args.output).write_text(
            HEADER + "\n" + "\n".join(rows) + "\n\n" + "\n".join(lines) + "\n"
        )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of traffic")
    parser.add_argument("--window", type=float, default=300.0, help="seconds per table row")
    parser.add_argument("--load", type=float, default=0.5, help="share of the probed capacity")
    parser.add_argument("--purchase-rate", type=float, default=0.5, help="purchases a second")
    parser.add_argument("--probe", type=float, default=15.0, help="seconds of capacity probe")
    parser.add_argument("--drain", type=float, default=600.0, help="seconds to settle at the end")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--output", help="also write the table and verdict to this file")
    parser.add_argument("--logs", default="var/soak", help="folder of the replicas' logs")
    args = parser.parse_args(argv)
    from bench.load import postgres_database

    try:
        redis.Redis.from_url(args.redis).ping()
    except redis.RedisError as exc:
        print(f"soak: needs Redis at {args.redis} ({type(exc).__name__}); start it or pass --redis")
        return 2
    with postgres_database() as database:
        if database is None:
            print("soak: needs PostgreSQL (ESIM_GATEWAY_TEST_POSTGRES_URL or 127.0.0.1:5432)")
            return 2
        sandbox_port, receiver_port = _port(), _port()
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        with _process(
            ["sandbox", "--port", str(sandbox_port), "--fulfil-delay", "1"],
            _clean_env(),
            f"{sandbox}/roamify/_sandbox/calls",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ):
            env = _replica_env(database, sandbox, args.redis)
            logs = Path(args.logs)
            logs.mkdir(parents=True, exist_ok=True)
            with contextlib.ExitStack() as stack:
                replicas = []
                for name in "ab":  # one after the other: the first migrates the ledger
                    port = _port()
                    log = stack.enter_context((logs / f"replica-{name}.log").open("wb"))
                    process = stack.enter_context(
                        _process(
                            ["serve", "--port", str(port)],
                            env,
                            f"http://127.0.0.1:{port}/healthz",
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
                    replicas.append(Replica(port, process.pid))
                status = asyncio.run(_run(args, replicas, sandbox, receiver_port, database))
            for name in "ab":
                text = (logs / f"replica-{name}.log").read_text(errors="replace")
                lines = text.lower().splitlines()
                errors = sum("error" in line for line in lines)
                print(
                    f"- replica {name}: {len(lines)} log lines at WARNING or above, {errors}"
                    f" mentioning an error ({logs / f'replica-{name}.log'})"
                )
            return status


if __name__ == "__main__":
    sys.exit(main())
