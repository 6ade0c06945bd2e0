"""Watching a reference after a resend or a give-up (`watch_for`, 24 h by default).

A send whose outcome was unknown may still commit after the order was given up, and a
second send may have bought twice. So the reference stays watched, looked at less and
less often: a purchase found under it revives an order given up (it completes), and any
other order under it is a duplicate (recorded, and cancelled where the provider allows).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from esim_gateway.domain import ProviderOrder
from esim_gateway.errors import ProviderFailure
from esim_gateway.ledger.orders import OrderRecord, Step
from esim_gateway.ledger.repository import Ledger
from esim_gateway.purchasing.following import Follower
from esim_gateway.purchasing.pacing import Tuning, now
from esim_gateway.purchasing.records import PurchaseOutcome, Recorder, shown_state

__all__ = ["Watcher"]

log = logging.getLogger("esim_gateway.purchasing")


class Watcher:
    """One watch pass over a finished order's reference."""

    def __init__(
        self, ledger: Ledger, tuning: Tuning, records: Recorder, follower: Follower
    ) -> None:
        self.ledger = ledger
        self.tuning = tuning
        self.records = records
        self.follower = follower

    async def watch_once(self, record: OrderRecord) -> PurchaseOutcome:
        """Look at everything under the reference: a purchase found after the order was
        given up revives it; any other order under it is a duplicate."""
        try:
            found = await self.records.find(record)
        except ProviderFailure as exc:
            log.warning("watching order %s: %s", record.id, exc.message)
            return PurchaseOutcome(await self._next_watch(record), exc)
        outcome = PurchaseOutcome(record)
        if record.provider_order_id is None and found:
            outcome = await self._revive(record, found[0])
            record = outcome.record
        for other in found:
            if other.order_id != record.provider_order_id:
                await self.records.report_duplicate(record, other)
        return PurchaseOutcome(await self._next_watch(record), outcome.failure)

    async def _revive(self, record: OrderRecord, found: ProviderOrder) -> PurchaseOutcome:
        """The purchase given up went through: complete the order."""
        revived = await self.records.move(
            record,
            step=Step.SUBMITTED,
            state=shown_state(found),
            provider_order_id=found.order_id,
            provider_status=found.provider_status,
            failure_reason=None,
            error_code=None,
            error_status=None,
            note=(
                f"found at {record.provider.value} after it was marked failed: the"
                " purchase went through, completing it"
            ),
        )
        log.warning("order %s: a purchase given up was found and is completed", record.id)
        try:
            return await self.follower.follow(revived, found)
        except ProviderFailure as exc:
            return PurchaseOutcome(await self.ledger.orders.get(record.id) or revived, exc)

    async def _next_watch(self, record: OrderRecord) -> OrderRecord:
        """Back off: look again after a quarter of the time watched so far, within bounds."""
        assert record.watch_until is not None
        started = record.watch_until - timedelta(seconds=self.tuning.watch_for)
        watched = max(0.0, (now() - started).total_seconds())
        wait = min(self.tuning.watch_max, max(self.tuning.watch_initial, watched / 4))
        return await self.ledger.orders.update(
            record.id, next_check_at=now() + timedelta(seconds=wait)
        )
