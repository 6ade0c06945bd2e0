"""What the purchase driver writes down: moves between steps, orders found, duplicates.

Every change of an order's step made by the driver goes through `Recorder.move`, which
holds it to the state table (`states.py`). A provider order is *adopted* when a send
returns it or a lookup finds it under the reference; any other order under the same
reference is a duplicate purchase: recorded, counted, logged at ERROR and cancelled
where the provider allows.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from esim_gateway.domain import OrderState, ProviderName, ProviderOrder
from esim_gateway.errors import ProviderFailure
from esim_gateway.ledger.orders import OrderRecord, Step
from esim_gateway.ledger.repository import Ledger
from esim_gateway.providers.registry import Providers
from esim_gateway.purchasing.pacing import Tuning, now
from esim_gateway.purchasing.states import check_move

__all__ = ["PurchaseOutcome", "Recorder"]

log = logging.getLogger("esim_gateway.purchasing")


@dataclass(frozen=True, slots=True)
class PurchaseOutcome:
    record: OrderRecord
    #: the provider failure that stopped this attempt, if any (the order may still settle)
    failure: ProviderFailure | None = None


def shown_state(order: ProviderOrder) -> OrderState:
    """The status an adopted order shows: COMPLETED waits for its eSIMs (PROCESSING)."""
    return order.state if order.state is not OrderState.COMPLETED else OrderState.PROCESSING


class Recorder:
    """Adopts provider orders, reports duplicates, starts watches: the driver's writes."""

    def __init__(
        self,
        ledger: Ledger,
        providers: Providers,
        tuning: Tuning,
        on_duplicate: Callable[[ProviderName], None] | None,
    ) -> None:
        self.ledger = ledger
        self.providers = providers
        self.tuning = tuning
        self.on_duplicate = on_duplicate

    async def move(self, record: OrderRecord, *, note: str, **changes: Any) -> OrderRecord:
        """Write a change of the order's step (held to the state table)."""
        return check_move(record, await self.ledger.orders.update(record.id, note=note, **changes))

    async def adopt(self, record: OrderRecord, placed: ProviderOrder, note: str) -> OrderRecord:
        return await self.move(
            record,
            step=Step.SUBMITTED,
            provider_order_id=placed.order_id,
            state=shown_state(placed),
            provider_status=placed.provider_status,
            total_amount=placed.total.amount if placed.total else record.total_amount,
            currency=placed.total.currency if placed.total else record.currency,
            note=note,
        )

    async def find(self, record: OrderRecord) -> Sequence[ProviderOrder]:
        """Every provider order under the order's reference, oldest first."""
        gateway = self.providers.get(record.provider)
        return await self.providers.read(
            record.provider, functools.partial(gateway.find_orders, record.reference)
        )

    async def look_up(self, record: OrderRecord) -> ProviderOrder | None:
        """The oldest provider order under the reference; the others are duplicates."""
        found = await self.find(record)
        if not found:
            return None
        for duplicate in found[1:]:
            await self.report_duplicate(record, duplicate)
        return found[0]

    async def watch_from_now(self, record: OrderRecord) -> OrderRecord:
        return await self.ledger.orders.update(
            record.id,
            watch_until=now() + timedelta(seconds=self.tuning.watch_for),
            next_check_at=now() + timedelta(seconds=self.tuning.watch_initial),
        )

    async def report_duplicate(self, record: OrderRecord, duplicate: ProviderOrder) -> None:
        known = {d.provider_order_id for d in await self.ledger.orders.duplicates(record.id)}
        if duplicate.order_id in known:
            return
        action = await self._cancel_duplicate(record, duplicate)
        if not await self.ledger.orders.record_duplicate(record.id, duplicate.order_id, action):
            return
        if self.on_duplicate is not None:
            self.on_duplicate(record.provider)
        log.error(
            "order %s bought twice at %s: provider orders %s and %s share reference %s (%s)",
            record.id,
            record.provider.value,
            record.provider_order_id,
            duplicate.order_id,
            record.reference,
            action,
        )

    async def _cancel_duplicate(self, record: OrderRecord, duplicate: ProviderOrder) -> str:
        """Cancel the second purchase where the provider allows; says what was done."""
        gateway = self.providers.get(record.provider)
        if not gateway.capabilities.cancel:
            return "reported (the provider has no cancellation for it)"
        try:
            await self.providers.write(
                record.provider,
                functools.partial(gateway.cancel_order, duplicate.order_id, "duplicate purchase"),
            )
        except ProviderFailure as exc:
            return f"reported (cancellation refused: {exc.message})"
        return "cancelled"
