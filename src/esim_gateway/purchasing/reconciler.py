"""Settles every order left in flight: after a crash, a lost response, a failed apply.

Runs in each server process. The ledger lease makes sure only one replica works an order
at a time; the purchase driver does the work (look up by reference before any resend).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Protocol

from esim_gateway.ledger.repository import Ledger
from esim_gateway.ops.background import BackgroundLoop
from esim_gateway.purchasing.driver import PurchaseDriver

__all__ = ["PendingEvents", "Reconciler"]


class PendingEvents(Protocol):
    async def process_pending(self, *, limit: int = 100) -> int: ...


log = logging.getLogger("esim_gateway.reconciler")


class Reconciler:
    def __init__(
        self,
        ledger: Ledger,
        driver: PurchaseDriver,
        *,
        interval: float = 15.0,
        grace: float = 10.0,
        batch: int = 50,
    ) -> None:
        self.ledger = ledger
        self.driver = driver
        self.interval = interval
        #: orders younger than this are still being driven by their request
        self.grace = grace
        self.batch = batch
        self._background = BackgroundLoop("reconciler", self._loop)
        #: webhook events stored but not applied yet are retried on every pass
        self.events: PendingEvents | None = None

    async def run_once(self, *, grace: float | None = None) -> int:
        """Start a driver for every unsettled order whose next look is due, and a watch
        pass for every finished order whose reference is still watched and due; returns
        how many were started."""
        started = 0
        pending = await self.ledger.orders.claim_unsettled(
            self.driver.holder,
            limit=self.batch,
            older_than=self.grace if grace is None else grace,
            lease=self.driver.lease_seconds,
        )
        for record in pending:
            self.driver.start(record)
            started += 1
        for record in await self.ledger.orders.claim_watched(
            self.driver.holder, limit=self.batch, lease=self.driver.lease_seconds
        ):
            self.driver.watch(record)
            started += 1
        if self.events is not None:
            await self.events.process_pending()
        return started

    async def settle_all(self, *, grace: float = 0.0, timeout: float = 30.0) -> None:
        """Drive every unsettled order and wait for the drivers (tests, shutdown, CLI)."""
        pending = await self.ledger.orders.unsettled(limit=10_000, older_than=grace)
        tasks = [self.driver.start(record) for record in pending]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("reconciler pass failed")
            await asyncio.sleep(self.interval * (0.8 + 0.4 * random.random()))
