"""Placing orders and top-ups exactly once, and following them until they settle.

A purchase is driven by `PurchaseDriver.drive()` through the ledger's steps:

    NEW --mark SUBMITTING, send--> SUBMITTED --fulfil/poll--> SETTLED
      \\                       \\
       \\                       +-- refused by the provider (4xx) --> REJECTED
        +-- outcome unknown (timeout, reset, 5xx): stays SUBMITTING

Rules that make it exactly-once:

* the step is set to SUBMITTING (and committed) *before* the request is sent;
* a SUBMITTING order is never sent again before the provider has been asked for the
  order by its reference, and the reference never changes (it is derived from the
  idempotency key);
* the provider's answer to the lookup decides: found -> adopt it; not found -> it is
  safe to send again, with the identical body and reference;
* Roamify's second step (`apply`) is retried on its own, never the purchase;
* one driver per order at a time: an in-process task map, plus a lease in the ledger
  that also holds across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from esim_gateway.errors import ProviderError, ProviderFailure, ProviderUnavailable
from esim_gateway.ledger.repository import Ledger, OrderRecord, Step
from esim_gateway.providers.base import (
    OrderLineRequest,
    OrderState,
    PlaceOrder,
    ProviderName,
    ProviderOrder,
    TopupRequest,
)
from esim_gateway.providers.registry import Providers

__all__ = ["PurchaseDriver", "PurchaseOutcome"]

log = logging.getLogger("esim_gateway.purchasing")

#: 409 and 429 mean "not now", not "no": they never reject a purchase for good
_NOT_REJECTIONS = frozenset({408, 409, 425, 429})


@dataclass(frozen=True, slots=True)
class PurchaseOutcome:
    record: OrderRecord
    #: the provider failure that stopped this attempt, if any (the order may still settle)
    failure: ProviderFailure | None = None


def _is_rejection(exc: ProviderFailure) -> bool:
    return (
        isinstance(exc, ProviderError)
        and 400 <= exc.status < 500
        and exc.status not in _NOT_REJECTIONS
    )


class PurchaseDriver:
    """Drives purchases; shared by the API, the background followers and the reconciler."""

    def __init__(
        self,
        ledger: Ledger,
        providers: Providers,
        *,
        submit_attempts: int = 3,
        lease_seconds: float = 120.0,
        follow_for: float = 600.0,
        poll_initial: float = 0.25,
        poll_max: float = 15.0,
    ) -> None:
        self.ledger = ledger
        self.providers = providers
        self.submit_attempts = submit_attempts
        self.lease_seconds = lease_seconds
        self.follow_for = follow_for
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._tasks: dict[str, asyncio.Task[PurchaseOutcome]] = {}

    # -- entry points ----------------------------------------------------------------

    def start(self, record: OrderRecord) -> asyncio.Task[PurchaseOutcome]:
        """The one driver task of this order in this process (started when absent)."""
        task = self._tasks.get(record.id)
        if task is None or task.done():
            task = asyncio.create_task(self._run(record.id), name=f"purchase-{record.id}")
            self._tasks[record.id] = task
            task.add_done_callback(functools.partial(self._forget, record.id))
        return task

    async def wait(self, record: OrderRecord, deadline: float) -> PurchaseOutcome:
        """Drive the order, returning by `deadline` seconds with the best state known."""
        task = self.start(record)
        done, _ = await asyncio.wait({task}, timeout=deadline)
        if task in done:
            return task.result()
        current = await self.ledger.get(record.id)
        return PurchaseOutcome(current or record)

    async def refresh(self, record: OrderRecord) -> OrderRecord:
        """Bring the ledger up to date with the provider (a webhook said something changed).

        An unsettled order is driven on (in the background); a settled one is re-read
        and its status updated when the provider's changed (refunds, SIM delivery).
        """
        if not record.step.is_terminal:
            self.start(record)
            return record
        if record.provider_order_id is None:
            return record
        gateway = self.providers.get(record.provider)
        order_id = record.provider_order_id
        order = await self.providers.read(record.provider, lambda: gateway.get_order(order_id))
        if order.state is record.state and order.provider_status == record.provider_status:
            return record
        return await self.ledger.update(
            record.id,
            state=order.state,
            provider_status=order.provider_status,
            note="updated by the provider",
        )

    async def shutdown(self, grace: float = 10.0) -> None:
        """Let in-flight purchases finish (up to `grace` s), then cancel what is left."""
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def in_flight(self) -> int:
        return sum(1 for t in self._tasks.values() if not t.done())

    def _forget(self, order_id: str, task: asyncio.Task[PurchaseOutcome]) -> None:
        if self._tasks.get(order_id) is task:
            del self._tasks[order_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("purchase driver for order %s crashed", order_id, exc_info=task.exception())

    # -- the driver ----------------------------------------------------------------------

    async def _run(self, order_id: str) -> PurchaseOutcome:
        record = await self.ledger.get(order_id)
        if record is None:
            raise KeyError(order_id)
        if record.step.is_terminal or record.step is Step.SCHEDULED:  # the scheduler starts it
            return PurchaseOutcome(record)
        # Acquiring inside the try: a cancellation (a shutdown) can land after the lease
        # is committed but before the call returns, and must still give it back; releasing
        # a lease this holder does not hold changes nothing.
        try:
            if not await self.ledger.acquire_lease(order_id, self.holder, self.lease_seconds):
                return await self._wait_for_other_driver(record)
            return await self._advance(record)
        finally:
            with contextlib.suppress(Exception):
                await self.ledger.release_lease(order_id, self.holder)

    async def _wait_for_other_driver(self, record: OrderRecord) -> PurchaseOutcome:
        """Another replica holds the lease: report its progress as the ledger shows it."""
        delay = self.poll_initial
        for _ in range(40):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            current = await self.ledger.get(record.id)
            if current is None or current.step.is_terminal:
                return PurchaseOutcome(current or record)
            if await self.ledger.acquire_lease(record.id, self.holder, self.lease_seconds):
                try:
                    return await self._advance(current)
                finally:
                    with contextlib.suppress(Exception):
                        await self.ledger.release_lease(record.id, self.holder)
        current = await self.ledger.get(record.id)
        return PurchaseOutcome(current or record)

    async def _advance(self, record: OrderRecord) -> PurchaseOutcome:
        try:
            if record.step in (Step.NEW, Step.SUBMITTING):
                record, placed = await self._submit(record)
                if placed is None:
                    return PurchaseOutcome(record)
            else:
                placed = None
            return await self._follow(record, placed)
        except ProviderFailure as exc:
            log.warning("order %s paused at %s: %s", record.id, record.step, exc.message)
            current = await self.ledger.get(record.id)
            return PurchaseOutcome(current or record, exc)

    async def _submit(self, record: OrderRecord) -> tuple[OrderRecord, ProviderOrder | None]:
        gateway = self.providers.get(record.provider)
        for attempt in range(self.submit_attempts):
            if record.step is Step.SUBMITTING:
                # The last attempt's outcome is unknown: ask before sending again.
                found = await self.providers.read(
                    record.provider, functools.partial(gateway.find_order, record.reference)
                )
                if found is not None:
                    return await self._adopt(record, found, "found by reference"), found
            record = await self.ledger.update(
                record.id,
                step=Step.SUBMITTING,
                attempts=record.attempts + 1,
                note=f"submit attempt {record.attempts + 1}",
            )
            try:
                placed = await self.providers.write(
                    record.provider, functools.partial(self._send, record)
                )
            except ProviderFailure as exc:
                if _is_rejection(exc):
                    assert isinstance(exc, ProviderError)
                    record = await self.ledger.update(
                        record.id,
                        step=Step.REJECTED,
                        state=OrderState.FAILED,
                        failure_reason=exc.message,
                        error_code=exc.error_code,
                        error_status=exc.status,
                        note=f"rejected by {record.provider.value} ({exc.status})",
                    )
                    raise
                if isinstance(exc, ProviderUnavailable) and not exc.sent:
                    record = await self.ledger.update(
                        record.id, step=Step.NEW, note="not sent: connect failure"
                    )
                if attempt + 1 >= self.submit_attempts:
                    raise
                await asyncio.sleep(self._backoff(attempt, exc))
                continue
            return await self._adopt(record, placed, "placed"), placed
        raise AssertionError("unreachable")  # pragma: no cover

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

    def _backoff(self, attempt: int, exc: ProviderFailure) -> float:
        import random

        retry_after = exc.retry_after if isinstance(exc, ProviderError) else None
        base: float = min(self.poll_initial * 2.0**attempt, self.poll_max)
        if retry_after is not None:
            return min(retry_after, self.poll_max)
        return base * (0.5 + random.random())

    async def _adopt(self, record: OrderRecord, placed: ProviderOrder, note: str) -> OrderRecord:
        return await self.ledger.update(
            record.id,
            step=Step.SUBMITTED,
            provider_order_id=placed.order_id,
            state=placed.state
            if placed.state is not OrderState.COMPLETED
            else OrderState.PROCESSING,
            provider_status=placed.provider_status,
            total_amount=placed.total.amount if placed.total else record.total_amount,
            currency=placed.total.currency if placed.total else record.currency,
            note=note,
        )

    async def _follow(self, record: OrderRecord, placed: ProviderOrder | None) -> PurchaseOutcome:
        """From SUBMITTED to SETTLED: generate profiles / wait for the provider."""
        gateway = self.providers.get(record.provider)
        assert record.provider_order_id is not None
        delay = self.poll_initial
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.follow_for
        order = placed
        while True:
            if order is None:
                order = await self.providers.read(
                    record.provider, functools.partial(gateway.get_order, record.provider_order_id)
                )
            if (
                record.kind == "order"
                and record.provider is ProviderName.ROAMIFY
                and order.state is OrderState.COMPLETED
                and not order.esims_included
            ):
                start = record.request.get("startDate")
                # apply is idempotent upstream (applied eSIMs come back as they are),
                # so it is retried like a read; the purchase itself never is
                order = await self.providers.read(
                    record.provider,
                    functools.partial(
                        gateway.fulfil_order,
                        order,
                        start_date=date.fromisoformat(start) if start else None,
                    ),
                )
            if order.state.is_final and (
                order.esims_included
                or order.state is not OrderState.COMPLETED
                or record.kind == "topup"
            ):
                return PurchaseOutcome(await self._settle(record, order))
            if order.state is not record.state or order.provider_status != record.provider_status:
                record = await self.ledger.update(
                    record.id, state=order.state, provider_status=order.provider_status
                )
            if loop.time() + delay > give_up_at:
                return PurchaseOutcome(record)
            await asyncio.sleep(delay)
            # keep the lease while following; if another worker took it, it drives now
            if not await self.ledger.acquire_lease(record.id, self.holder, self.lease_seconds):
                return PurchaseOutcome(record)
            delay = min(delay * 2, self.poll_max)
            order = None

    async def _settle(self, record: OrderRecord, order: ProviderOrder) -> OrderRecord:
        iccids: Sequence[str] = [e.iccid for e in order.esims if e.iccid]
        if record.kind == "topup":
            iccids = [str(record.request["iccid"])]
        await self.ledger.record_esims(record, iccids)
        return await self.ledger.update(
            record.id,
            step=Step.SETTLED,
            state=order.state,
            provider_status=order.provider_status,
            failure_reason=order.failure_reason,
            total_amount=order.total.amount if order.total else record.total_amount,
            currency=order.total.currency if order.total else record.currency,
            note="settled",
        )
