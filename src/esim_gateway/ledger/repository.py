"""The ledger: one engine, its migrations, and one store per aggregate.

    orders         orders we placed: keys, references, steps, leases, eSIMs, history
    quotes         quotes, and orders scheduled for later at a quoted price
    events         webhook deliveries received from the providers
    catalog        the last good catalog of each provider
    install_links  the install page's capability tokens (their digests)
    outbound       the outbound webhook outbox: endpoints, messages, deliveries

Every store shares the ledger's session factory (`ledger.store`). Changes to orders and
their eSIMs are told to `listeners` once committed; `invalidate` evicts an order another
replica changed from this process's read cache.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from esim_gateway.ledger.catalog import CatalogStore
from esim_gateway.ledger.events import EventStore
from esim_gateway.ledger.install_links import InstallLinkStore
from esim_gateway.ledger.orders import OrderStore
from esim_gateway.ledger.outbox import OutboundStore
from esim_gateway.ledger.quotes import QuoteStore
from esim_gateway.ledger.store import ChangeListener, sessions_for

__all__ = ["ChangeListener", "Ledger"]


class Ledger:
    def __init__(self, engine: AsyncEngine, *, read_cache_ttl: float = 2.0) -> None:
        self.engine = engine
        sessions = sessions_for(engine)
        #: called with (topic, message) after a committed change: subscriptions listen here
        self.listeners: list[ChangeListener] = []
        self.orders = OrderStore(engine, sessions, self._changed, read_cache_ttl=read_cache_ttl)
        self.quotes = QuoteStore(sessions, self.orders)
        self.events = EventStore(sessions)
        self.catalog = CatalogStore(sessions)
        self.install_links = InstallLinkStore(sessions)
        #: outbound webhooks; order events are written by `orders` in its transactions
        self.outbound = OutboundStore(sessions)

    def invalidate(self, order_id: str) -> None:
        """Another replica changed this order: read it afresh next time."""
        self.orders.invalidate(order_id)

    async def _changed(self, topic: str, message: str) -> None:
        for listener in self.listeners:
            try:
                await listener(topic, message)
            except Exception:  # a broken subscriber channel must not fail a purchase
                logging.getLogger("esim_gateway.ledger").exception("change listener failed")

    async def migrate(self) -> None:
        """Bring the tables to the latest Alembic revision.

        PostgreSQL serialises concurrent migrations with an advisory lock; SQLite has no
        such lock, so when several workers start at once on one file, the losers of the
        race retry and find the schema already at head.
        """
        import asyncio

        from sqlalchemy.exc import OperationalError, ProgrammingError

        from esim_gateway.ledger.migrate import upgrade

        for attempt in range(5):
            try:
                await upgrade(self.engine)
                return
            except (OperationalError, ProgrammingError):
                if self.engine.dialect.name != "sqlite" or attempt == 4:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))
