"""Applying stored webhook events to the ledger and to subscribers.

A webhook is a hint, not the truth: an order event makes the purchase driver re-read the
order from the provider (so the status mapping lives in one place and a forged or stale
payload can never write a status); an eSIM event notifies that eSIM's subscribers.
Events for orders we do not know yet stay `unmatched` and are retried by the reconciler.
"""

from __future__ import annotations

import hashlib
import logging

from esim_gateway.domain import PROVIDER_BALANCE_LOW, ProviderName
from esim_gateway.errors import GatewayError
from esim_gateway.ledger.events import StoredEvent
from esim_gateway.ledger.repository import Ledger
from esim_gateway.live.broker import LocalBroker
from esim_gateway.outbound.esim_watch import EsimAnnouncer
from esim_gateway.purchasing.driver import PurchaseDriver
from esim_gateway.webhooks.parsing import roamify_usage

__all__ = ["EventProcessor"]

log = logging.getLogger("esim_gateway.webhooks")

BALANCE_EVENTS = ("partner/low_balance", "partner/insufficient_balance", "partner/top_up")


class EventProcessor:
    def __init__(self, ledger: Ledger, driver: PurchaseDriver, broker: LocalBroker) -> None:
        self.ledger = ledger
        self.driver = driver
        self.broker = broker
        #: usage thresholds and expiry warnings carried by provider usage events
        self.announcer = EsimAnnouncer(ledger.outbound)

    async def process(self, event: StoredEvent) -> str:
        try:
            outcome = await self._apply(event)
        except GatewayError as exc:
            outcome = f"failed: {exc.message}"
        except Exception as exc:  # recorded and retried by the reconciler; never lost
            log.exception("webhook event %s failed", event.event_key)
            outcome = f"failed: {type(exc).__name__}"
        await self.ledger.events.mark(event.provider, event.event_key, outcome)
        return outcome

    async def _apply(self, event: StoredEvent) -> str:
        if event.iccid:
            owner = await self.ledger.orders.order_for_iccid(event.iccid)
            if owner is not None:
                await self.broker.publish(f"esim:{event.iccid}", owner.id)
            reading = roamify_usage(event)
            if reading is not None and owner is not None:
                order = (owner.id, owner.owner)

                async def lookup() -> tuple[str, str]:
                    return order

                await self.announcer.observe(reading, lookup, source="provider_event")
        if event.event_type in BALANCE_EVENTS[:2]:
            await self._announce_low_balance(event)
        if event.event_type in BALANCE_EVENTS or event.event_type.startswith("affiliate/"):
            return "applied"
        if event.reference is None:
            return "ignored"
        record = await self.ledger.orders.by_reference(event.provider, event.reference)
        if record is None and event.provider is ProviderName.ROAMIFY and event.iccid:
            record = await self.ledger.orders.order_for_iccid(event.iccid)
        if record is None:
            return "unmatched"
        await self.driver.refresh(record)
        return "applied"

    async def _announce_low_balance(self, event: StoredEvent) -> None:
        """`provider.balance_low`, once per provider event (a redelivered or reprocessed
        event carries the same key, so its mark is already there)."""
        data = event.body.get("data")
        data = data if isinstance(data, dict) else {}
        await self.ledger.outbound.emit(
            PROVIDER_BALANCE_LOW,
            f"provider:{event.provider.value}",
            {
                "provider": event.provider.value.upper(),
                "kind": event.event_type.partition("/")[2],
                "balance": data.get("balance"),
                "threshold": data.get("threshold"),
                "thresholdPercentage": data.get("threshold_percentage"),
                "currency": data.get("currency"),
            },
            once="balance:" + hashlib.sha256(event.event_key.encode()).hexdigest()[:48],
        )

    async def process_pending(self, *, limit: int = 100) -> int:
        """Apply what is stored but not applied yet (after a crash, or an order that
        appeared after its event). Returns how many events were looked at."""
        pending = await self.ledger.events.to_process(limit=limit)
        for event in pending:
            await self.process(event)
        return len(pending)
