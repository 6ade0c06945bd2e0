"""Scheduled orders: recorded now, placed by the gateway at `scheduledAt`.

`createOrder(scheduledAt)` writes the order at step SCHEDULED and calls no provider.
Until it is due, `cancelOrder` cancels it for free (a compare-and-set on the step: it
cannot race the placement). Every replica runs a `Scheduler`; when an order is due,
`ledger.quotes.claim_scheduled` moves it from SCHEDULED to NEW for exactly one of them, in
one guarded UPDATE, and that one hands it to the purchase driver. From then on it is an ordinary
purchase: leased, looked up by reference before any resend, finished by the reconciler
if the replica dies.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from esim_gateway.config import Settings
from esim_gateway.context import Context
from esim_gateway.dataloaders.catalog import Catalog
from esim_gateway.domain import OrderState
from esim_gateway.errors import InvalidInput
from esim_gateway.ledger.orders import OrderRecord, Step
from esim_gateway.ledger.repository import Ledger
from esim_gateway.ops.background import periodic
from esim_gateway.purchasing.driver import PurchaseDriver
from esim_gateway.purchasing.repricing import moved_price

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
    cancelled = await context.ledger.quotes.cancel_scheduled(record.id, note)
    if cancelled is None:
        raise InvalidInput(
            "orderId", "This scheduled order is being placed now; it can no longer be withdrawn."
        )
    return cancelled


class Scheduler:
    """Places due scheduled orders; one per process, all replicas looking.

    An order bought under a quote is placed only if the quoted price still holds; else
    it fails (`PRICE_CHANGED`) without anything being bought.
    """

    def __init__(
        self,
        ledger: Ledger,
        driver: PurchaseDriver,
        catalog: Catalog,
        *,
        interval: float = 5.0,
        batch: int = 50,
    ) -> None:
        self.ledger = ledger
        self.driver = driver
        self.catalog = catalog
        self.interval = interval
        self.batch = batch
        self._background = periodic("scheduler", self.run_once, interval, log)

    async def run_once(self, *, now: datetime | None = None) -> list[OrderRecord]:
        """Place the orders due by `now` (the clock when None); returns the orders this
        process claimed and started placing."""
        claimed = []
        for due in await self.ledger.quotes.due_scheduled(now=now, limit=self.batch):
            problem = await self._price_problem(due)
            if problem is not None:
                await self.ledger.quotes.refuse_scheduled(due.id, problem, "PRICE_CHANGED")
                continue
            record = await self.ledger.quotes.claim_scheduled(
                due.id, self.driver.holder, lease=self.driver.lease_seconds
            )
            if record is not None:
                self.driver.start(record)
                claimed.append(record)
        return claimed

    async def _price_problem(self, record: OrderRecord) -> str | None:
        """Why the order may not be placed at its quoted price now, if it may not."""
        quote_id = record.request.get("quoteId")
        if quote_id is None:
            return None
        quote = await self.ledger.quotes.get(str(uuid.UUID(str(quote_id))))
        if quote is None:  # checked when the order was recorded; quotes are never deleted
            return None
        moved_to = await moved_price(self.catalog, quote)
        if moved_to is None:
            return None
        return (
            f"The price changed since the quote ({quote.total.amount} -> {moved_to}"
            f" {quote.total.currency}); nothing was bought."
        )

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()
