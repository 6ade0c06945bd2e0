"""How long the purchase driver waits, and what cuts a wait short.

`Tuning` holds the driver's knobs, shared by all its parts (set on the driver, they take
effect at once); `Pacer` sleeps between two looks at an order: a webhook about the order
wakes it early, a shutdown ends it at once, and the order's lease is renewed after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from esim_gateway.domain import ProviderName
from esim_gateway.ledger.repository import Ledger

__all__ = ["DEFAULT_QUIET_PERIODS", "Pacer", "Tuning", "now"]

#: quiet periods when none is configured (seconds): longer than the slowest documented
#: processing (Roamify: 60-90 s); SimplifyTrip refuses a repeated trackId, so there it
#: only decides when to give up
DEFAULT_QUIET_PERIODS: Mapping[ProviderName, float] = {
    ProviderName.ROAMIFY: 180.0,
    ProviderName.SIMPLIFYTRIP: 120.0,
}


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Tuning:
    """The purchase driver's knobs (seconds unless said)."""

    #: sends of one purchase at most (each after its quiet period or a refusal)
    submit_attempts: int
    lease_seconds: float
    #: how long one driver follows an order before leaving it to the reconciler
    follow_for: float
    poll_initial: float
    poll_max: float
    #: per provider: how long after a send its outcome may still commit
    quiet_periods: dict[ProviderName, float]
    #: lookups in a row that must find nothing before a send is repeated
    min_lookups: int
    #: how long a reference stays watched after a resend or a give-up, and how often
    watch_for: float
    watch_initial: float
    watch_max: float


class Pacer:
    """The waits of the drivers of one process, and their leases."""

    def __init__(self, ledger: Ledger, tuning: Tuning, holder: str) -> None:
        self.ledger = ledger
        self.tuning = tuning
        self.holder = holder
        #: set at shutdown: drivers that are only waiting hand their order back at once
        self._stopping = asyncio.Event()
        #: per order being driven here: set by a webhook about it, to look again at once
        self._nudges: dict[str, asyncio.Event] = {}

    async def nap(self, seconds: float, order_id: str) -> bool:
        """Sleep until the next look at an order: cut short when a webhook says the order
        changed; False (at once) when the driver is shutting down."""
        if self._stopping.is_set():
            return False
        nudge = self._nudges.setdefault(order_id, asyncio.Event())
        waits = {
            asyncio.ensure_future(self._stopping.wait()),
            asyncio.ensure_future(nudge.wait()),
        }
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            nudge.clear()
        return not self._stopping.is_set()

    async def keep_lease(self, order_id: str) -> bool:
        """Renew this process's lease on the order; False when another worker took it
        (it drives the order now)."""
        return await self.ledger.orders.acquire_lease(
            order_id, self.holder, self.tuning.lease_seconds
        )

    async def pause(self, seconds: float, order_id: str) -> bool:
        """`nap`, then `keep_lease`: False when this driver should stop here."""
        return await self.nap(seconds, order_id) and await self.keep_lease(order_id)

    def nudge(self, order_id: str) -> None:
        """Wake the driver of this order if it is waiting: look again now."""
        self._nudges.setdefault(order_id, asyncio.Event()).set()

    def forget(self, order_id: str) -> None:
        self._nudges.pop(order_id, None)

    def stop(self) -> None:
        self._stopping.set()
