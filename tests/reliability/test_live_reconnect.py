"""Live updates outlive the broker's database connections: PostgreSQL ends them (as a
restart or a failover would: here `pg_terminate_backend` on this test's database only,
the server is shared), and the broker opens them again, LISTENs again, and says so in
/readyz and /metrics; meanwhile publishing neither fails nor floods the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from esim_gateway.config import Settings
from esim_gateway.live.broker import APPLICATION_NAME, RESYNC, PostgresBroker, Subscription
from tests.api.test_live_updates import SUBSCRIBE, buy, serve
from tests.conftest import make_sandboxes, postgres_url

pytestmark = pytest.mark.postgres


def plain_dsn(database_url: str) -> str:
    return "postgresql://" + database_url.split("://", 1)[1]


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Wait for `condition` to hold, checking every 20 ms, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def administrator(database_url: str) -> AsyncIterator[Admin]:
    """A connection to the server's configured database, acting on `database_url`'s."""
    configured = postgres_url()
    assert configured is not None
    connection = await asyncpg.connect(plain_dsn(configured))
    try:
        yield Admin(connection, database_url.rsplit("/", 1)[1])
    finally:
        await connection.close()


class Admin:
    def __init__(self, connection: Any, database: str) -> None:
        self.connection = connection
        self.database = database

    async def terminate_brokers(self) -> int:
        """End every broker backend on the test's database; returns how many there were."""
        ended: int = await self.connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND application_name = $2",
            self.database,
            APPLICATION_NAME,
        )
        return ended

    @contextlib.asynccontextmanager
    async def refusing_connections(self) -> AsyncIterator[None]:
        """The test's database refuses new connections (open ones go on) until exit."""
        name = self.database.replace('"', "")
        await self.connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            yield
        finally:
            await self.connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


async def next_message(subscription: Subscription) -> str:
    return await asyncio.wait_for(anext(subscription), timeout=10)


async def test_the_broker_reconnects_and_publishing_while_down_stays_local_and_quiet(
    clean_postgres: str, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = plain_dsn(clean_postgres)
    caplog.set_level(logging.INFO, logger="esim_gateway")
    here = PostgresBroker(dsn, backoff=(0.05, 0.2))
    there = PostgresBroker(dsn, backoff=(0.05, 0.2))
    await here.start()
    await there.start()
    try:
        local, remote = here.subscribe("order:1"), there.subscribe("order:1")
        await here.publish("order:1", "1")
        assert await next_message(local) == "1"
        assert await next_message(remote) == "1"

        async with administrator(clean_postgres) as admin, admin.refusing_connections():
            assert await admin.terminate_brokers() == 4  # a listener and a sender each
            await until(lambda: _down(here, there))
            assert here.health() == there.health() != "ok"
            await publish_while_down(here, local)
        await until(lambda: _up(here, there))
        assert here.health() == there.health() == "ok"
        # woken to read their state again: what the other replica said meanwhile was lost
        assert await next_message(remote) == RESYNC
        assert await next_message(local) == RESYNC
        await here.publish("order:1", "3")
        assert await next_message(remote) == "3"
        assert await next_message(local) == "3"
    finally:
        await here.stop()
        await there.stop()
    # per broker: one line when lost, one when back, nothing for the publishes between
    said = broker_log(caplog)
    assert said[logging.WARNING] == ["lost the PostgreSQL connection"] * 2, said
    assert said[logging.INFO] == ["reconnected to PostgreSQL"] * 2, said
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def broker_log(caplog: pytest.LogCaptureFixture) -> dict[int, list[str]]:
    """What the broker logged, by level, each line cut to the phrase that names it."""
    said: dict[int, list[str]] = {logging.WARNING: [], logging.INFO: []}
    for record in caplog.records:
        if record.name == "esim_gateway.live":
            text = record.getMessage()
            phrase = next((p for p in PHRASES if p in text), text)
            said.setdefault(record.levelno, []).append(phrase)
    return said


PHRASES = ("lost the PostgreSQL connection", "reconnected to PostgreSQL")


async def publish_while_down(broker: PostgresBroker, local: Subscription) -> None:
    for _ in range(20):
        await broker.publish("order:1", "2")  # neither raises nor logs
    # this replica's subscribers still hear its own changes
    assert [await next_message(local) for _ in range(20)] == ["2"] * 20


async def _down(*brokers: PostgresBroker) -> bool:
    return not any(broker.connected for broker in brokers)


async def _up(*brokers: PostgresBroker) -> bool:
    return all(broker.connected for broker in brokers)


async def broker_state(base: str) -> tuple[bool, str, float]:
    """(ready, the live_updates check, the connected gauge) of the replica at `base`."""
    async with httpx.AsyncClient(base_url=f"http://{base}") as http:
        ready = (await http.get("/readyz")).json()
        metrics = (await http.get("/metrics")).text
    [gauge] = [
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("esim_gateway_live_broker_connected ")
    ]
    return ready["ready"], ready["checks"]["live_updates"], gauge


class OrderUpdates:
    """A subscription to one order's updates over graphql-transport-ws, read as it goes."""

    def __init__(self, base: str, order_id: str) -> None:
        self.seen: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task = asyncio.create_task(self._read(base, order_id))

    async def _read(self, base: str, order_id: str) -> None:
        transport = WebsocketsTransport(
            url=f"ws://{base}/graphql", subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
        )
        async with Client(transport=transport) as session:
            async for result in session.subscribe(
                GraphQLRequest(SUBSCRIBE, variable_values={"id": order_id})
            ):
                self.seen.put_nowait(result["orderUpdated"])

    async def next(self, timeout: float = 15.0) -> dict[str, Any]:
        got = asyncio.ensure_future(self.seen.get())
        done, _ = await asyncio.wait(
            {got, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if got not in done:
            got.cancel()
            if self._task in done:
                self._task.result()  # the subscription's own failure
            raise TimeoutError("no update")
        return got.result()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_a_subscriber_on_one_replica_hears_an_order_bought_on_the_other_after_the_brokers_lost_their_connections(  # noqa: E501
    clean_postgres: str,
) -> None:
    settings = Settings(database_url=clean_postgres, order_deadline=0.2)
    # fulfilled when the test says (`settle`), so the subscriber is there before
    sandboxes = make_sandboxes(fulfil_delay=3600)
    async with (
        administrator(clean_postgres) as admin,
        serve(settings, sandboxes=sandboxes) as a,
        # B neither hears the provider's webhooks nor polls the order: what it learns
        # of the order, it learns from A through the broker
        serve(settings, sandboxes=sandboxes, sandbox_webhooks=False, reconcile_interval=3600) as b,
    ):
        for base in (a, b):
            assert await broker_state(base) == (True, "ok", 1.0)
        # ended over and over (a flapping failover), until both replicas are seen down
        stop = asyncio.Event()

        async def terminate_until_stopped() -> int:
            ended = 0
            while not stop.is_set():
                ended += await admin.terminate_brokers()
                await asyncio.sleep(0.005)
            return ended

        terminator = asyncio.create_task(terminate_until_stopped())
        try:
            for base in (a, b):
                seen_down: list[tuple[bool, str, float]] = []

                async def down(base: str = base, seen: list[Any] = seen_down) -> bool:
                    ready, check, gauge = await broker_state(base)
                    seen.append((ready, check, gauge))
                    return check.startswith("reconnecting") and gauge == 0.0

                await until(down)
                # reported, not failing readiness: purchases and reads still work
                assert seen_down[-1][0] is True
        finally:
            stop.set()
            assert await terminator >= 4
        for base in (a, b):

            async def up(base: str = base) -> bool:
                return await broker_state(base) == (True, "ok", 1.0)

            await until(up)

        order = await buy(a)
        assert order["status"] == "PROCESSING"
        updates = OrderUpdates(b, order["id"])
        try:
            assert (await updates.next())["status"] == "PROCESSING"
            await sandboxes.simplifytrip.settle()  # fulfilled; its webhook reaches A
            final = await updates.next()
            while final["status"] == "PROCESSING":  # a wake-up may show no change yet
                final = await updates.next()
        finally:
            await updates.close()
    assert final["status"] == "COMPLETED"
    assert final["esims"] and final["esims"][0]["lpa"].startswith("LPA:1$")
