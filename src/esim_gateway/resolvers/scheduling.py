"""Scheduled orders: recorded now, placed by the gateway at `scheduledAt`.

`createOrder(scheduledAt)` writes the order at step SCHEDULED and calls no provider.
Until it is due, `cancelOrder` cancels it for free (a compare-and-set on the step: it
cannot race the placement). Every replica runs a `Scheduler`; when an order is due,
`Ledger.claim_due` moves it from SCHEDULED to NEW for exactly one of them, in one guarded
UPDATE, and that one hands it to the purchase driver. From then on it is an ordinary
purchase: leased, looked up by reference before any resend, finished by the reconciler
if the replica dies.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta

from esim_gateway.background import BackgroundLoop
from esim_gateway.config import Settings
from esim_gateway.context import Context
from esim_gateway.errors import InvalidInput
from esim_gateway.ledger.repository import Ledger, OrderRecord, Step
from esim_gateway.providers.base import OrderState
from esim_gateway.resolvers.purchasing import PurchaseDriver

__all__ = ["Scheduler", "cancel_scheduled", "check_scheduled_at"]

log = logging.getLogger("esim_gateway.scheduler")


def check_scheduled_at(settings: Settings, when: datetime, now: datetime | None = None) -> datetime:
    """`when` in UTC, if it is in the future and within the horizon."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidInput(
            "scheduledAt", "scheduledAt needs a UTC offset, e.g. 2026-12-01T09:00:00Z."
        )
    when = when.astimezone(UTC)
    now = now or datetime.now(UTC)
    if when <= now:
        raise InvalidInput("scheduledAt", "scheduledAt is in the past.")
    days = settings.schedule_horizon_days
    if when > now + timedelta(days=days):
        raise InvalidInput("scheduledAt", f"scheduledAt is at most {days:g} days ahead.")
    return when


async def cancel_scheduled(
    context: Context, record: OrderRecord, reason: str | None
) -> OrderRecord | None:
    """Cancel an order still waiting for its time (free: nothing was sent).

    None when the order was never scheduled or has been placed already: the ordinary
    cancellation rules apply to it then.
    """
    if record.step is not Step.SCHEDULED:
        if (
            record.scheduled_at is not None
            and record.provider_order_id is None
            and record.state is OrderState.CANCELLED
        ):
            return record  # cancelled before it was placed: again changes nothing
        return None
    note = "cancelled before it was placed" + (f": {reason}" if reason else "")
    cancelled = await context.ledger.cancel_scheduled(record.id, note)
    if cancelled is None:
        raise InvalidInput(
            "orderId", "This scheduled order is being placed now; it can no longer be withdrawn."
        )
    return cancelled


class Scheduler:
    """Places due scheduled orders; one per process, all replicas looking."""

    def __init__(
        self, ledger: Ledger, driver: PurchaseDriver, *, interval: float = 5.0, batch: int = 50
    ) -> None:
        self.ledger = ledger
        self.driver = driver
        self.interval = interval
        self.batch = batch
        self._background = BackgroundLoop("scheduler", self._loop)

    async def run_once(self, *, now: datetime | None = None) -> list[OrderRecord]:
        """Claim the orders due by `now` (the clock when None) and start placing them;
        returns the orders this process claimed."""
        claimed = await self.ledger.claim_due(
            self.driver.holder, now=now, limit=self.batch, lease=self.driver.lease_seconds
        )
        for record in claimed:
            self.driver.start(record)
        return claimed

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("scheduler pass failed")
            await asyncio.sleep(self.interval * (0.8 + 0.4 * random.random()))
