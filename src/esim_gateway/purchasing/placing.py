"""Placing a purchase: the send, and what each kind of answer means for the order.

The order is marked SUBMITTING, and that is committed, *before* the request leaves; the
reference sent never changes. Then:

* the provider returns the order: adopted (SUBMITTED);
* it refuses the purchase for good (a 4xx that is not "not now"): REJECTED;
* it says it already holds the reference: an earlier send was placed; looked up;
* the request certainly never reached it (connect failure, open circuit, 429): the send
  does not count, and it is retried after a backoff;
* anything else (timeout, reset, 5xx, an unreadable 2xx): the outcome is unknown, and
  the order is looked up (`lookups.py`) before anything is sent again.
"""

from __future__ import annotations

import asyncio
import functools
import random
from datetime import date

from esim_gateway.domain import (
    OrderLineRequest,
    OrderState,
    PlaceOrder,
    ProviderOrder,
    TopupRequest,
)
from esim_gateway.errors import (
    DuplicateReference,
    ProviderError,
    ProviderFailure,
    ProviderUnavailable,
)
from esim_gateway.ledger.orders import OrderRecord, Step
from esim_gateway.ledger.repository import Ledger
from esim_gateway.providers.registry import Providers
from esim_gateway.purchasing.lookups import Lookups
from esim_gateway.purchasing.pacing import Tuning, now
from esim_gateway.purchasing.records import Recorder

__all__ = ["Placer", "is_rejection", "never_accepted"]

#: "not now", not "no": they never reject a purchase for good
_NOT_REJECTIONS = frozenset({408, 409, 425, 429})


def is_rejection(exc: ProviderFailure) -> bool:
    return (
        isinstance(exc, ProviderError)
        and not isinstance(exc, DuplicateReference)
        and 400 <= exc.status < 500
        and exc.status not in _NOT_REJECTIONS
    )


def never_accepted(exc: ProviderFailure) -> bool:
    """The provider certainly did not take the purchase: it never left (connect failure,
    open circuit), or the provider's rate limiter turned it away (429)."""
    if isinstance(exc, ProviderUnavailable):
        return not exc.sent
    return isinstance(exc, ProviderError) and exc.status == 429


class Placer:
    """Sends a purchase, or finds it, or waits for the provider; never sends twice while
    an earlier send may still commit."""

    def __init__(
        self,
        ledger: Ledger,
        providers: Providers,
        tuning: Tuning,
        records: Recorder,
        lookups: Lookups,
    ) -> None:
        self.ledger = ledger
        self.providers = providers
        self.tuning = tuning
        self.records = records
        self.lookups = lookups

    async def place(self, record: OrderRecord) -> tuple[OrderRecord, ProviderOrder | None]:
        """Drive a NEW or SUBMITTING order until the provider holds it (the order placed
        is returned), or it is finished, or it is left for a later look (None)."""
        patience_ends = asyncio.get_running_loop().time() + self.tuning.follow_for
        refused_for_now = 0
        while True:
            if record.step is Step.SUBMITTING:
                resolved = await self.lookups.resolve(record, patience_ends)
                record = resolved.record
                if not resolved.send_again:
                    return record, resolved.found
            record, placed, failure = await self._send_once(record)
            if placed is not None:
                return record, placed
            if failure is None:
                continue  # the provider has the reference already: look it up
            if never_accepted(failure):
                refused_for_now += 1
                if refused_for_now >= self.tuning.submit_attempts:
                    raise failure
                await asyncio.sleep(self._backoff(refused_for_now - 1, failure))
                continue
            # outcome unknown: the loop looks it up before anything else

    async def _send_once(
        self, record: OrderRecord
    ) -> tuple[OrderRecord, ProviderOrder | None, ProviderFailure | None]:
        """One send. Returns the order placed, or the failure whose outcome is unknown or
        that never reached the provider, or (None, None) for a duplicate-reference refusal."""
        before = record
        sends = record.attempts + 1
        record = await self.records.move(
            record,
            step=Step.SUBMITTING,
            attempts=sends,
            last_sent_at=now(),
            lookups=0,
            next_check_at=None,
            note=f"submit attempt {sends}" if sends == 1 else f"sent again (attempt {sends})",
        )
        try:
            placed = await self.providers.write(
                record.provider, functools.partial(self._send, record)
            )
        except DuplicateReference:
            return await self._reference_taken(record), None, None
        except ProviderFailure as exc:
            if is_rejection(exc):
                assert isinstance(exc, ProviderError)
                await self._reject(record, exc)
                raise
            return await self._not_placed(before, record, exc), None, exc
        record = await self.records.adopt(record, placed, "placed")
        if sends > 1:
            record = await self.records.watch_from_now(record)
        return record, placed, None

    async def _reference_taken(self, record: OrderRecord) -> OrderRecord:
        return await self.ledger.orders.update(
            record.id,
            reference_taken_at=now(),
            note=(
                f"{record.provider.value} already has this reference: an earlier send"
                " was placed; looking it up"
            ),
        )

    async def _not_placed(
        self, before: OrderRecord, record: OrderRecord, exc: ProviderFailure
    ) -> OrderRecord:
        """A send that failed without an answer: it did not count (the provider never
        took it), or its outcome is unknown."""
        if never_accepted(exc):
            # this send did not count: the order stands where it stood before it
            return await self.records.move(
                record,
                step=before.step,
                attempts=before.attempts,
                last_sent_at=before.last_sent_at,
                note=f"not taken by {record.provider.value}: {exc.message}",
            )
        # the quiet period runs from the last moment the request may have been
        # in the provider's hands: when its answer failed, not when it left
        return await self.ledger.orders.update(
            record.id,
            last_sent_at=now(),
            note=f"outcome unknown ({exc.message}): looking it up before anything else",
        )

    async def _send(self, record: OrderRecord) -> ProviderOrder:
        gateway = self.providers.get(record.provider)
        body = record.request
        if record.kind == "topup":
            return await gateway.submit_topup(
                TopupRequest(record.reference, str(body["iccid"]), str(body["packageId"]))
            )
        lines = tuple(
            OrderLineRequest(str(line["packageId"]), int(line["quantity"]))
            for line in body["items"]
        )
        start = body.get("startDate")
        return await gateway.submit_order(
            PlaceOrder(record.reference, lines, date.fromisoformat(start) if start else None)
        )

    async def _reject(self, record: OrderRecord, exc: ProviderError) -> OrderRecord:
        record = await self.records.move(
            record,
            step=Step.REJECTED,
            state=OrderState.FAILED,
            failure_reason=exc.message,
            error_code=exc.error_code,
            error_status=exc.status,
            note=f"rejected by {record.provider.value} ({exc.status})",
        )
        if record.attempts > 1:
            # an earlier send's outcome was unknown: watch for it committing after all
            record = await self.records.watch_from_now(record)
        return record

    def _backoff(self, attempt: int, exc: ProviderFailure) -> float:
        retry_after = exc.retry_after if isinstance(exc, ProviderError) else None
        base: float = min(self.tuning.poll_initial * 2.0**attempt, self.tuning.poll_max)
        if retry_after is not None:
            return min(retry_after, self.tuning.poll_max)
        return base * (0.5 + random.random())
