"""`esim.usage_threshold` and `esim.expiring`, from every usage reading the gateway sees.

Readings come from three places: a client reading `Esim.usage`, a provider's usage event
(Roamify `esim`/`usage`), and the watcher loop below, which polls the usage of eSIMs of
completed orders while some endpoint subscribes to an `esim.*` event (one replica per
interval). Each threshold
(50/80/100 % of the data allowance) and each warning (3 days, 1 day before the plan ends)
is announced at most once per eSIM, by a mark written with the message
(`OutboundStore.emit(once=...)`). A reading that jumps past several thresholds announces
the highest one; the lower ones are then behind it for good.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from esim_gateway.background import BackgroundLoop
from esim_gateway.errors import GatewayError
from esim_gateway.ledger.outbound_events import ESIM_EXPIRING, ESIM_USAGE_THRESHOLD, order_global_id
from esim_gateway.ledger.outbox import OutboundStore
from esim_gateway.providers.base import EsimUsage, ProviderName
from esim_gateway.providers.registry import Providers

__all__ = ["EXPIRY_WARNING_DAYS", "USAGE_THRESHOLDS", "EsimAnnouncer", "EsimWatcher"]

log = logging.getLogger("esim_gateway.outbound")

USAGE_THRESHOLDS = (50, 80, 100)
EXPIRY_WARNING_DAYS = (3, 1)

#: (order id, owner) of an eSIM, looked up only when a reading has something to announce
OrderLookup = Callable[[], Awaitable[tuple[str, str] | None]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def used_percent(usage: EsimUsage) -> Decimal | None:
    allowed = usage.data_allowed_mb
    if usage.unlimited or allowed is None or allowed <= 0:
        return None
    used = usage.data_used_mb
    if used is None and usage.data_remaining_mb is not None:
        used = allowed - usage.data_remaining_mb
    if used is None:
        return None
    return min(used / allowed * 100, Decimal(100))


class EsimAnnouncer:
    def __init__(self, store: OutboundStore, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.store = store
        self.clock = clock

    def _due(self, usage: EsimUsage) -> list[tuple[str, str, dict[str, Any]]]:
        due: list[tuple[str, str, dict[str, Any]]] = []
        percent = used_percent(usage)
        if percent is not None:
            reached = [t for t in USAGE_THRESHOLDS if percent >= t]
            if reached:
                due.append(
                    (
                        ESIM_USAGE_THRESHOLD,
                        f"usage:{reached[-1]}",
                        {
                            "threshold": reached[-1],
                            "usedPercent": str(percent.quantize(Decimal("0.1"))),
                            "dataAllowedMb": usage.data_allowed_mb,
                            "dataUsedMb": usage.data_used_mb,
                            "dataRemainingMb": usage.data_remaining_mb,
                        },
                    )
                )
        if usage.plan_end is not None:
            left = usage.plan_end - self.clock()
            windows = [d for d in EXPIRY_WARNING_DAYS if timedelta(0) < left <= timedelta(days=d)]
            if windows:
                days = min(windows)
                due.append(
                    (
                        ESIM_EXPIRING,
                        f"expiring:{days}d",
                        {"daysBefore": days, "expiresAt": usage.plan_end},
                    )
                )
        return due

    async def observe(self, usage: EsimUsage, lookup: OrderLookup, *, source: str) -> list[str]:
        """Announce what this reading crossed for the first time; returns the messages
        written (none when nothing is new, or no endpoint listens)."""
        due = self._due(usage)
        if not due:
            return []
        subject = f"esim:{usage.provider.value}:{usage.iccid}"
        done = await self.store.marks(subject)
        due = [d for d in due if d[1] not in done]
        if not due:
            return []
        order = await lookup()
        written = []
        for event_type, mark, extra in due:
            data: dict[str, Any] = {
                "iccid": usage.iccid,
                "provider": usage.provider.value.upper(),
                "orderId": order_global_id(order[0]) if order else None,
                "owner": order[1] if order else None,
                "source": source,
                **extra,
            }
            message = await self.store.emit(event_type, subject, data, once=mark)
            if message is not None:
                written.append(message)
        return written


class EsimWatcher:
    """Polls the usage of recent eSIMs, so thresholds and expiry warnings go out even
    when nobody reads `Esim.usage` and the provider sends no usage events."""

    def __init__(
        self,
        store: OutboundStore,
        providers: Providers,
        announcer: EsimAnnouncer,
        *,
        interval: float = 3600.0,
        batch: int = 500,
    ) -> None:
        self.store = store
        self.providers = providers
        self.announcer = announcer
        self.interval = interval
        self.batch = batch
        self._background = BackgroundLoop("esim-watcher", self._loop)

    async def run_once(self) -> int:
        """One pass; returns how many eSIMs were read (none while nobody subscribes)."""
        if not await self.store.subscribed((ESIM_USAGE_THRESHOLD, ESIM_EXPIRING)):
            return 0
        watched = await self.store.watched_esims(limit=self.batch)
        enabled = set(self.providers.enabled())

        async def read(provider: ProviderName, iccid: str, order_id: str, owner: str) -> bool:
            gateway = self.providers.get(provider)
            if not gateway.capabilities.usage:
                return False
            try:
                usage = await self.providers.read(provider, lambda: gateway.usage(iccid))
            except GatewayError as exc:  # one eSIM's failure must not stop the others
                log.info("usage of an eSIM could not be read: %s", exc.message)
                return False

            async def lookup() -> tuple[str, str]:
                return order_id, owner

            await self.announcer.observe(usage, lookup, source="polling")
            return True

        results = await asyncio.gather(
            *(read(*row) for row in watched if row[0] in enabled), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.warning("eSIM usage pass failed", exc_info=result)
        return sum(1 for r in results if r is True)

    async def take_turn(self, now: float) -> bool:
        """Whether this replica makes the pass of the interval `now` falls in: the first
        replica to write that interval's mark does, the others skip it, so the providers
        see one usage read per eSIM per interval however many replicas run."""
        return await self.store.claim_mark("esim-watcher", f"pass:{int(now // self.interval)}")

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval * (0.8 + 0.4 * random.random()))
            try:
                if await self.take_turn(time.time()):
                    await self.run_once()
            except Exception:
                log.exception("eSIM watcher pass failed")
