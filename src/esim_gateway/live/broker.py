"""Live updates: a tiny topic broker for subscriptions.

Topics are strings (``order:<id>``, ``esim:<iccid>``); messages are small strings (the
id that changed: subscribers re-read the ledger, so nothing sensitive travels).

* `LocalBroker` fans out within one process (SQLite, single replica).
* `PostgresBroker` sends every message through PostgreSQL ``NOTIFY`` and delivers what it
  ``LISTEN``s to locally, so an event received by one replica reaches subscribers on all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["Broker", "LocalBroker", "PostgresBroker", "Subscription", "create_broker"]

log = logging.getLogger("esim_gateway.live")

CHANNEL = "esim_gateway_events"
QUEUE_SIZE = 100
#: the broker's connections' application_name in pg_stat_activity
APPLICATION_NAME = "esim-gateway-live"
#: the message of a wake-up after missed notifications: subscribers read their state anew
RESYNC = ""


class LocalBroker:
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[str]]] = defaultdict(set)
        #: called for every message, from this replica or (PostgreSQL) any other
        self.observers: list[Callable[[str, str], None]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    @property
    def connected(self) -> bool:
        """Whether updates from other replicas reach this one (in process: nothing to lose)."""
        return True

    def health(self) -> str:
        """For /readyz."""
        return "in process"

    def deliver(self, topic: str, message: str) -> None:
        for observe in self.observers:
            observe(topic, message)
        for queue in list(self._queues.get(topic, ())):
            with contextlib.suppress(asyncio.QueueFull):  # a stalled subscriber loses updates
                queue.put_nowait(message)

    async def publish(self, topic: str, message: str) -> None:
        self.deliver(topic, message)

    def subscribers(self, topic: str) -> int:
        return len(self._queues.get(topic, ()))

    def subscribe(self, topic: str) -> Subscription:
        """Listening starts now (not at the first `anext`), so nothing is missed between
        subscribing and reading the current state."""
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._queues[topic].add(queue)

        def close() -> None:
            queues = self._queues.get(topic)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._queues[topic]

        return Subscription(queue, close)


class Subscription:
    def __init__(self, queue: asyncio.Queue[str], close: Callable[[], None]) -> None:
        self._queue = queue
        self.close = close

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> str:
        return await self._queue.get()


class PostgresBroker(LocalBroker):
    """LISTEN/NOTIFY over two dedicated asyncpg connections (no extra broker needed): one
    listens, one sends.

    A lost connection (a database restart or failover, a terminated backend, a network
    that stops answering: found by a ping every `ping_interval` seconds) is reopened
    with backoff, both connections together, and LISTENs again. Meanwhile a publish is
    delivered to this replica's subscribers only, and other replicas' notifications are
    missed: so on reconnecting every local subscriber is woken to read its state again.
    """

    def __init__(
        self,
        dsn: str,
        *,
        ping_interval: float = 10.0,
        command_timeout: float = 3.0,
        backoff: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        super().__init__()
        self._dsn = dsn
        self._listener: Any = None
        self._sender: Any = None
        self._lock = asyncio.Lock()
        self.ping_interval = ping_interval
        #: a NOTIFY is awaited on the path of the write that caused it: bounded
        self.command_timeout = command_timeout
        self.backoff = backoff
        self._connected = False
        #: why the connections are down, as shown by /readyz (an exception's type only)
        self._down_reason = "not started"
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    def health(self) -> str:
        return "ok" if self._connected else f"reconnecting: {self._down_reason}"

    async def start(self) -> None:
        try:
            await self._connect()
        except Exception as exc:  # the supervisor tries again; start-up goes on
            self._lose(exc)
            log.warning(
                "live updates: could not connect to PostgreSQL (%s); retrying, and meanwhile"
                " other replicas' updates do not reach this one's subscribers",
                type(exc).__name__,
            )
        else:
            self._connected = not self._lost.is_set()
        self._supervisor = asyncio.create_task(self._supervise(), name="live-broker")

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        self._connected = False
        await self._close()

    async def _connect(self) -> None:
        import asyncpg

        async def open_one() -> Any:
            return await asyncpg.connect(
                self._dsn,
                timeout=self.command_timeout,
                # named, so an operator (or a test) can find the broker's backends
                server_settings={"application_name": APPLICATION_NAME},
            )

        await self._close()
        self._lost.clear()  # from here on, a termination counts against these connections
        try:
            self._listener = await open_one()
            self._listener.add_termination_listener(self._on_terminated)
            await self._listener.add_listener(CHANNEL, self._on_notify)
            self._sender = await open_one()
            self._sender.add_termination_listener(self._on_terminated)
        except BaseException:
            await self._close()
            raise

    async def _close(self) -> None:
        connections = (self._listener, self._sender)
        self._listener = self._sender = None
        for connection in connections:
            if connection is not None:
                # no polite goodbye to a server that may not answer
                with contextlib.suppress(Exception):
                    connection.terminate()

    def _on_terminated(self, connection: Any) -> None:
        if connection is self._listener or connection is self._sender:
            self._lose(ConnectionError("connection closed"))

    def _lose(self, exc: BaseException) -> None:
        """Down from now until the supervisor reconnects: said once, at WARNING."""
        self._down_reason = type(exc).__name__
        self._lost.set()
        if self._connected:
            self._connected = False
            log.warning(
                "live updates: lost the PostgreSQL connection (%s: %s); reconnecting, and"
                " meanwhile other replicas' updates do not reach this one's subscribers",
                type(exc).__name__,
                exc,
            )

    async def _supervise(self) -> None:
        while True:
            await self._watch()
            await self._reconnect()

    async def _watch(self) -> None:
        """Returns when a connection is found lost: closed by the server, or a ping that
        fails or goes unanswered (a network that drops packets closes nothing)."""
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.ping_interval):
                    await self._lost.wait()
            if self._lost.is_set():
                return
            try:
                async with asyncio.timeout(self.command_timeout):
                    await self._listener.execute("SELECT 1")
                    async with self._lock:
                        await self._sender.execute("SELECT 1")
            except Exception as exc:
                self._lose(exc)

    async def _reconnect(self) -> None:
        down_since = time.monotonic()
        delay, longest = self.backoff
        while True:
            try:
                await self._connect()
            except Exception as exc:  # still down: quietly, the loss was said already
                self._down_reason = type(exc).__name__
                log.debug("live updates: reconnecting failed (%s)", type(exc).__name__)
            else:
                if not self._lost.is_set():  # not lost again while connecting
                    break
            # jittered, so replicas that lost the database together do not come back as one
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, longest)
        self._connected = True
        log.info(
            "live updates: reconnected to PostgreSQL after %.1f s", time.monotonic() - down_since
        )
        self.resync()

    def resync(self) -> None:
        """Wake every local subscriber to read its state again: what changed while the
        connections were down was never heard here."""
        for topic in list(self._queues):
            self.deliver(topic, RESYNC)

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            topic, message = orjson.loads(payload)
        except (orjson.JSONDecodeError, ValueError):
            log.warning("ignored a malformed notification on %s", channel)
            return
        self.deliver(str(topic), str(message))

    async def publish(self, topic: str, message: str) -> None:
        payload = orjson.dumps([topic, message]).decode()
        async with self._lock:
            sender = self._sender if self._connected else None
            if sender is not None:
                try:
                    async with asyncio.timeout(self.command_timeout):
                        await sender.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
                except Exception as exc:  # the connection, not the message: see below
                    if not _lost_connection(sender, exc):
                        raise
                    if sender is self._sender:  # not one the supervisor replaced already
                        self._lose(exc)
                else:
                    return  # this replica hears its own NOTIFY like the others do
        # down (or not started): this replica's subscribers at least hear it
        self.deliver(topic, message)


def _lost_connection(connection: Any, exc: Exception) -> bool:
    import asyncpg

    return connection.is_closed() or isinstance(
        exc,
        (
            OSError,
            TimeoutError,
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            asyncpg.AdminShutdownError,
        ),
    )


Broker = LocalBroker


def create_broker(database_url: str) -> LocalBroker:
    if database_url.startswith("postgresql"):
        dsn = "postgresql://" + database_url.split("://", 1)[1]
        return PostgresBroker(dsn)
    return LocalBroker()
