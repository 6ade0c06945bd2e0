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
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["Broker", "LocalBroker", "PostgresBroker", "Subscription", "create_broker"]

log = logging.getLogger("esim_gateway.live")

CHANNEL = "esim_gateway_events"
QUEUE_SIZE = 100


class LocalBroker:
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[str]]] = defaultdict(set)
        #: called for every message, from this replica or (PostgreSQL) any other
        self.observers: list[Callable[[str, str], None]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

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
    """LISTEN/NOTIFY over a dedicated asyncpg connection (no extra broker needed)."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn
        self._listener: Any = None
        self._sender: Any = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        import asyncpg

        self._listener = await asyncpg.connect(self._dsn)
        self._sender = await asyncpg.connect(self._dsn)
        await self._listener.add_listener(CHANNEL, self._on_notify)

    async def stop(self) -> None:
        for connection in (self._listener, self._sender):
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
        self._listener = self._sender = None

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            topic, message = orjson.loads(payload)
        except (orjson.JSONDecodeError, ValueError):
            log.warning("ignored a malformed notification on %s", channel)
            return
        self.deliver(str(topic), str(message))

    async def publish(self, topic: str, message: str) -> None:
        if self._sender is None:
            self.deliver(topic, message)
            return
        payload = orjson.dumps([topic, message]).decode()
        async with self._lock:
            await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)


Broker = LocalBroker


def create_broker(database_url: str) -> LocalBroker:
    if database_url.startswith("postgresql"):
        dsn = "postgresql://" + database_url.split("://", 1)[1]
        return PostgresBroker(dsn)
    return LocalBroker()
