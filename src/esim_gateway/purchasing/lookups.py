"""An order at SUBMITTING: its send's outcome is unknown until it is looked up.

It is looked up by its reference, with growing waits, until it is found (adopted), or
the rules allow one more send, or nothing can still be bought (ABANDONED). A lookup that
finds nothing is not proof that nothing was bought: the send may still commit, and the
provider's reads may lag its writes. So a send is repeated only where the provider
refuses a second order under one reference (`Capabilities.unique_reference`), or once
the provider's quiet period since the last send is over with `min_lookups` lookups in a
row finding nothing; and never once the provider said it holds the reference.
"""

from __future__ import annotations

import asyncio
import enum
import random
from dataclasses import dataclass
from datetime import timedelta

from esim_gateway.domain import OrderState, ProviderOrder
from esim_gateway.ledger.orders import OrderRecord, Step
from esim_gateway.ledger.repository import Ledger
from esim_gateway.providers.registry import Providers
from esim_gateway.purchasing.pacing import Pacer, Tuning, now
from esim_gateway.purchasing.records import Recorder

__all__ = ["Lookups", "Resolved"]


class _Next(enum.Enum):
    SEND = "send"
    WAIT = "wait"
    GIVE_UP = "give up"


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where looking up an unknown outcome left the order."""

    record: OrderRecord
    #: the provider order found under the reference (adopted), if any
    found: ProviderOrder | None = None
    #: the rules allow one more send now
    send_again: bool = False


class Lookups:
    """Looks up orders whose send's outcome is unknown, waiting between lookups."""

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

    async def resolve(self, record: OrderRecord, patience_ends: float) -> Resolved:
        """Look the order up until found, sent again or given up; or, when waiting longer
        would pass `patience_ends` (event loop time) or the driver stops, leave it to the
        reconciler at the right moment."""
        loop = asyncio.get_running_loop()
        delay = self.tuning.poll_initial
        while True:
            found = await self.records.look_up(record)
            if found is not None:
                adopted = await self.records.adopt(record, found, "found by reference")
                return Resolved(adopted, found)
            record = await self.ledger.orders.update(record.id, lookups=record.lookups + 1)
            step = self._next_step(record)
            if step is _Next.GIVE_UP:
                return Resolved(await self._abandon(record))
            if step is _Next.SEND:
                return Resolved(record, send_again=True)
            record = await self._note_waiting(record)
            wait = self._wait_time(record, delay)
            if loop.time() + wait > patience_ends or not await self.pacer.nap(wait, record.id):
                # the reconciler takes it from here, at the right moment
                record = await self.ledger.orders.update(
                    record.id, next_check_at=now() + timedelta(seconds=wait)
                )
                return Resolved(record)
            if not await self.pacer.keep_lease(record.id):
                return Resolved(record)  # another worker drives it now
            delay = min(delay * 2, self.tuning.poll_max)

    def _next_step(self, record: OrderRecord) -> _Next:
        """After a lookup that found nothing: send again, wait, or give up."""
        if record.reference_taken_at is not None:
            return _Next.WAIT  # placed for sure: only a matter of reading it
        quiet_over = self._quiet_left(record) <= 0 and record.lookups >= self.tuning.min_lookups
        if record.attempts < self.tuning.submit_attempts and (
            quiet_over or self.providers.get(record.provider).capabilities.unique_reference
        ):
            return _Next.SEND
        return _Next.GIVE_UP if quiet_over else _Next.WAIT

    def _quiet_left(self, record: OrderRecord) -> float:
        sent = record.last_sent_at or record.updated_at
        quiet = self.tuning.quiet_periods[record.provider]
        return quiet - (now() - sent).total_seconds()

    def _wait_time(self, record: OrderRecord, delay: float) -> float:
        left = self._quiet_left(record)
        if record.reference_taken_at is None and 0 < left < delay:
            return left
        return delay * (0.75 + 0.5 * random.random())

    async def _note_waiting(self, record: OrderRecord) -> OrderRecord:
        """Say once per send, in the order's history, why nothing is happening."""
        if record.lookups != 1:
            return record
        if record.reference_taken_at is not None:
            note = f"placed at {record.provider.value}, not readable there yet: looking again"
        else:
            quiet = self.tuning.quiet_periods[record.provider]
            note = (
                f"not found at {record.provider.value} yet; it may still commit, so nothing is"
                f" sent again before its quiet period ({quiet:g} s) has passed"
            )
        return await self.ledger.orders.update(record.id, note=note)

    async def _abandon(self, record: OrderRecord) -> OrderRecord:
        quiet = self.tuning.quiet_periods[record.provider]
        record = await self.records.move(
            record,
            step=Step.ABANDONED,
            state=OrderState.FAILED,
            failure_reason=(
                f"{record.provider.value} never confirmed the purchase and showed no order"
                f" under its reference for {quiet:g} s after the last of {record.attempts}"
                " sends; the reference is still watched, and a purchase found later"
                " completes this order"
            ),
            note="given up: nothing found at the provider through its quiet period",
        )
        return await self.records.watch_from_now(record)
