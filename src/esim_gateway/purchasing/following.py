"""Following a placed order (SUBMITTED) until it settles at the provider.

The order is read with growing waits until its state is final, and its eSIMs are
recorded. Roamify's second step (`apply`, which generates the eSIMs) is retried on its
own like a read, never the purchase. Not found while placed (its id is known) is the
provider's reads lagging its writes: looked at again later, never treated as gone.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import date

from esim_gateway.domain import OrderState, ProviderName, ProviderOrder
from esim_gateway.errors import NotFound
from esim_gateway.ledger.orders import OrderRecord, Step
from esim_gateway.ledger.repository import Ledger
from esim_gateway.providers.registry import Providers
from esim_gateway.purchasing.pacing import Pacer, Tuning
from esim_gateway.purchasing.records import PurchaseOutcome, Recorder

__all__ = ["Follower"]


class Follower:
    """From SUBMITTED to SETTLED: generate profiles / wait for the provider."""

    def __init__(
        self,
        ledger: Ledger,
        providers: Providers,
        tuning: Tuning,
        pacer: Pacer,
        records: Recorder,
    ) -> None:
        self.ledger = ledger
        self.providers = providers
        self.tuning = tuning
        self.pacer = pacer
        self.records = records

    async def follow(self, record: OrderRecord, placed: ProviderOrder | None) -> PurchaseOutcome:
        """Follow the order until it settles, or `follow_for` has passed, or another
        worker takes it, or the driver stops; `placed` is the order as last read, if any."""
        assert record.provider_order_id is not None
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.tuning.follow_for
        delay = self.tuning.poll_initial
        order = placed
        while True:
            if order is None:
                order = await self._read(record)
            if order is not None:
                order = await self._fulfil_if_due(record, order)
                if _settles(record, order):
                    return PurchaseOutcome(await self._settle(record, order))
                record = await self._keep_up(record, order)
            # keep the lease while following; if another worker took it, it drives now
            if loop.time() + delay > give_up_at or not await self.pacer.pause(delay, record.id):
                return PurchaseOutcome(record)
            delay = min(delay * 2, self.tuning.poll_max)
            order = None

    async def _read(self, record: OrderRecord) -> ProviderOrder | None:
        gateway = self.providers.get(record.provider)
        assert record.provider_order_id is not None
        try:
            return await self.providers.read(
                record.provider, functools.partial(gateway.get_order, record.provider_order_id)
            )
        except NotFound:
            # placed (we hold its id), so this is the provider's reads lagging
            # its writes: look again later, never treat it as gone
            return None

    async def _fulfil_if_due(self, record: OrderRecord, order: ProviderOrder) -> ProviderOrder:
        """Roamify's paid order without eSIMs: apply it (generates the eSIMs)."""
        if not (
            record.kind == "order"
            and record.provider is ProviderName.ROAMIFY
            and order.state is OrderState.COMPLETED
            and not order.esims_included
        ):
            return order
        gateway = self.providers.get(record.provider)
        start = record.request.get("startDate")
        # apply is idempotent upstream (applied eSIMs come back as they are),
        # so it is retried like a read; the purchase itself never is
        return await self.providers.read(
            record.provider,
            functools.partial(
                gateway.fulfil_order,
                order,
                start_date=date.fromisoformat(start) if start else None,
            ),
        )

    async def _keep_up(self, record: OrderRecord, order: ProviderOrder) -> OrderRecord:
        """Show the provider's latest status while the order is not final."""
        if order.state is record.state and order.provider_status == record.provider_status:
            return record
        return await self.ledger.orders.update(
            record.id, state=order.state, provider_status=order.provider_status
        )

    async def _settle(self, record: OrderRecord, order: ProviderOrder) -> OrderRecord:
        iccids: Sequence[str] = [e.iccid for e in order.esims if e.iccid]
        if record.kind == "topup":
            iccids = [str(record.request["iccid"])]
        await self.ledger.orders.record_esims(record, iccids)
        return await self.records.move(
            record,
            step=Step.SETTLED,
            state=order.state,
            provider_status=order.provider_status,
            failure_reason=order.failure_reason,
            total_amount=order.total.amount if order.total else record.total_amount,
            currency=order.total.currency if order.total else record.currency,
            note="settled",
        )


def _settles(record: OrderRecord, order: ProviderOrder) -> bool:
    """Final at the provider, with its eSIMs where there are eSIMs to wait for."""
    return order.state.is_final and (
        order.esims_included or order.state is not OrderState.COMPLETED or record.kind == "topup"
    )
