"""Placing orders and top-ups exactly once, and following them until they settle.

A purchase is driven by `PurchaseDriver.drive()` through the ledger's steps:

    NEW --mark SUBMITTING, send--> SUBMITTED --fulfil/poll--> SETTLED
      \\                       \\
       \\                       +-- refused by the provider (4xx) --> REJECTED
        +-- outcome unknown (timeout, reset, 5xx, unreadable 2xx): stays SUBMITTING,
            looked up by reference until found, or sent again, or ABANDONED

Rules that make it exactly-once:

* the step is set to SUBMITTING (and committed) *before* the request is sent;
* the reference never changes (it is derived from the idempotency key), and a
  SUBMITTING order is looked up by it before anything else: found -> adopt it;
* a lookup that finds nothing is *not* proof that nothing was bought: the first request
  may still commit (a provider that hangs, then commits), and a provider's reads may lag
  its writes. So a purchase is sent again only where the provider itself refuses a
  second order with the same reference (`Capabilities.unique_reference`: a refusal then
  means "already placed", and the order is looked up, with patience, until it shows),
  or after the provider's quiet period since the last send, with `min_lookups` lookups
  in a row finding nothing;
* an order is FAILED only when nothing can still be bought: a definite refusal, or every
  send's outcome unknown and the quiet period over with nothing found (ABANDONED);
* after a resend or after giving up, the reference stays watched (`watch_for`, 24 h):
  a purchase found later revives the order, and a second order under one reference is
  recorded, counted, logged at ERROR and cancelled where the provider allows;
* Roamify's second step (`apply`) is retried on its own, never the purchase;
* one driver per order at a time: an in-process task map, plus a lease in the ledger
  that also holds across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import os
import random
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from esim_gateway.errors import (
    DuplicateReference,
    NotFound,
    ProviderError,
    ProviderFailure,
    ProviderUnavailable,
)
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

#: "not now", not "no": they never reject a purchase for good
_NOT_REJECTIONS = frozenset({408, 409, 425, 429})

#: quiet periods when none is configured (seconds): longer than the slowest documented
#: processing (Roamify: 60-90 s); SimplifyTrip refuses a repeated trackId, so there it
#: only decides when to give up
DEFAULT_QUIET_PERIODS: Mapping[ProviderName, float] = {
    ProviderName.ROAMIFY: 180.0,
    ProviderName.SIMPLIFYTRIP: 120.0,
}


@dataclass(frozen=True, slots=True)
class PurchaseOutcome:
    record: OrderRecord
    #: the provider failure that stopped this attempt, if any (the order may still settle)
    failure: ProviderFailure | None = None


def _is_rejection(exc: ProviderFailure) -> bool:
    return (
        isinstance(exc, ProviderError)
        and not isinstance(exc, DuplicateReference)
        and 400 <= exc.status < 500
        and exc.status not in _NOT_REJECTIONS
    )


def _never_accepted(exc: ProviderFailure) -> bool:
    """The provider certainly did not take the purchase: it never left (connect failure,
    open circuit), or the provider's rate limiter turned it away (429)."""
    if isinstance(exc, ProviderUnavailable):
        return not exc.sent
    return isinstance(exc, ProviderError) and exc.status == 429


def _now() -> datetime:
    return datetime.now(UTC)


class _Next(enum.Enum):
    SEND = "send"
    WAIT = "wait"
    GIVE_UP = "give up"


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
        quiet_periods: Mapping[ProviderName, float] | None = None,
        min_lookups: int = 3,
        watch_for: float = 86_400.0,
        watch_initial: float = 60.0,
        watch_max: float = 3_600.0,
        on_duplicate: Callable[[ProviderName], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.providers = providers
        #: sends of one purchase at most (each after its quiet period or a refusal)
        self.submit_attempts = submit_attempts
        self.lease_seconds = lease_seconds
        self.follow_for = follow_for
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.quiet_periods = {**DEFAULT_QUIET_PERIODS, **(quiet_periods or {})}
        self.min_lookups = min_lookups
        self.watch_for = watch_for
        self.watch_initial = watch_initial
        self.watch_max = watch_max
        self.on_duplicate = on_duplicate
        self.holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._tasks: dict[str, asyncio.Task[PurchaseOutcome]] = {}
        #: set at shutdown: drivers that are only waiting hand their order back at once
        self._stopping = asyncio.Event()
        #: per order being driven here: set by a webhook about it, to look again at once
        self._nudges: dict[str, asyncio.Event] = {}

    # -- entry points ----------------------------------------------------------------

    def start(self, record: OrderRecord) -> asyncio.Task[PurchaseOutcome]:
        """The one driver task of this order in this process (started when absent)."""
        return self._task(record.id, self._run)

    def watch(self, record: OrderRecord) -> asyncio.Task[PurchaseOutcome]:
        """One watch pass over a finished order's reference (late or duplicate purchases)."""
        return self._task(record.id, self._watch)

    def _task(
        self, order_id: str, work: Callable[[str], Coroutine[Any, Any, PurchaseOutcome]]
    ) -> asyncio.Task[PurchaseOutcome]:
        task = self._tasks.get(order_id)
        if task is None or task.done():
            task = asyncio.create_task(work(order_id), name=f"purchase-{order_id}")
            self._tasks[order_id] = task
            task.add_done_callback(functools.partial(self._forget, order_id))
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
            running = self._tasks.get(record.id)
            if running is not None and not running.done():
                # its driver is here, maybe waiting for the next poll: it reads now
                self._nudges.setdefault(record.id, asyncio.Event()).set()
            self.start(record)
            return record
        if record.provider_order_id is None:
            if record.watch_until is not None:
                # the provider speaks of an order we gave up: the purchase went through
                self.watch(record)
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
        """Let in-flight purchases finish (up to `grace` s), then cancel what is left.
        Drivers that are only waiting (a quiet period, a provider's slow fulfilment) stop
        at once; the ledger says when their order is next due, for any replica."""
        self._stopping.set()
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
            self._nudges.pop(order_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("purchase driver for order %s crashed", order_id, exc_info=task.exception())

    # -- the driver ----------------------------------------------------------------------

    async def _run(self, order_id: str) -> PurchaseOutcome:
        record = await self.ledger.get(order_id)
        if record is None:
            raise KeyError(order_id)
        if record.step.is_terminal or record.step is Step.SCHEDULED:  # the scheduler starts it
            return PurchaseOutcome(record)
        return await self._leased(record, self._advance)

    async def _leased(
        self,
        record: OrderRecord,
        work: Callable[[OrderRecord], Awaitable[PurchaseOutcome]],
    ) -> PurchaseOutcome:
        # Acquiring inside the try: a cancellation (a shutdown) can land after the lease
        # is committed but before the call returns, and must still give it back; releasing
        # a lease this holder does not hold changes nothing.
        try:
            if not await self.ledger.acquire_lease(record.id, self.holder, self.lease_seconds):
                return await self._wait_for_other_driver(record)
            return await work(record)
        finally:
            with contextlib.suppress(Exception):
                await self.ledger.release_lease(record.id, self.holder)

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

    # -- sending, looking up, waiting ----------------------------------------------------

    async def _submit(self, record: OrderRecord) -> tuple[OrderRecord, ProviderOrder | None]:
        """Send the purchase, or find it, or wait for the provider; never send twice while
        an earlier send may still commit."""
        loop = asyncio.get_running_loop()
        patience_ends = loop.time() + self.follow_for
        delay = self.poll_initial
        refused_for_now = 0
        while True:
            if record.step is Step.SUBMITTING:
                found = await self._look_up(record)
                if found is not None:
                    return await self._adopt(record, found, "found by reference"), found
                record = await self.ledger.update(record.id, lookups=record.lookups + 1)
                step = self._next_step(record)
                if step is _Next.GIVE_UP:
                    return await self._abandon(record), None
                if step is _Next.WAIT:
                    record = await self._note_waiting(record)
                    wait = self._wait_time(record, delay)
                    if loop.time() + wait > patience_ends:
                        # the reconciler takes it from here, at the right moment
                        record = await self.ledger.update(
                            record.id, next_check_at=_now() + timedelta(seconds=wait)
                        )
                        return record, None
                    if not await self._nap(wait, record.id):
                        record = await self.ledger.update(
                            record.id, next_check_at=_now() + timedelta(seconds=wait)
                        )
                        return record, None
                    if not await self.ledger.acquire_lease(
                        record.id, self.holder, self.lease_seconds
                    ):
                        return record, None  # another worker drives it now
                    delay = min(delay * 2, self.poll_max)
                    continue
            record, placed, failure = await self._send_once(record)
            delay = self.poll_initial  # each send's outcome is looked for afresh
            if placed is not None:
                return record, placed
            if failure is None:
                continue  # the provider has the reference already: look it up
            if _never_accepted(failure):
                refused_for_now += 1
                if refused_for_now >= self.submit_attempts:
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
        record = await self.ledger.update(
            record.id,
            step=Step.SUBMITTING,
            attempts=sends,
            last_sent_at=_now(),
            lookups=0,
            next_check_at=None,
            note=f"submit attempt {sends}" if sends == 1 else f"sent again (attempt {sends})",
        )
        try:
            placed = await self.providers.write(
                record.provider, functools.partial(self._send, record)
            )
        except DuplicateReference:
            record = await self.ledger.update(
                record.id,
                reference_taken_at=_now(),
                note=(
                    f"{record.provider.value} already has this reference: an earlier send"
                    " was placed; looking it up"
                ),
            )
            return record, None, None
        except ProviderFailure as exc:
            if _is_rejection(exc):
                assert isinstance(exc, ProviderError)
                await self._reject(record, exc)
                raise
            if _never_accepted(exc):
                # this send did not count: the order stands where it stood before it
                record = await self.ledger.update(
                    record.id,
                    step=before.step,
                    attempts=before.attempts,
                    last_sent_at=before.last_sent_at,
                    note=f"not taken by {record.provider.value}: {exc.message}",
                )
            else:
                # the quiet period runs from the last moment the request may have been
                # in the provider's hands: when its answer failed, not when it left
                record = await self.ledger.update(
                    record.id,
                    last_sent_at=_now(),
                    note=f"outcome unknown ({exc.message}): looking it up before anything else",
                )
            return record, None, exc
        record = await self._adopt(record, placed, "placed")
        if sends > 1:
            record = await self._watch_from_now(record)
        return record, placed, None

    async def _look_up(self, record: OrderRecord) -> ProviderOrder | None:
        """The oldest provider order under the reference; the others are duplicates."""
        gateway = self.providers.get(record.provider)
        found = await self.providers.read(
            record.provider, functools.partial(gateway.find_orders, record.reference)
        )
        if not found:
            return None
        for duplicate in found[1:]:
            await self._report_duplicate(record, duplicate)
        return found[0]

    def _next_step(self, record: OrderRecord) -> _Next:
        """After a lookup that found nothing: send again, wait, or give up."""
        if record.reference_taken_at is not None:
            return _Next.WAIT  # placed for sure: only a matter of reading it
        quiet_over = self._quiet_left(record) <= 0 and record.lookups >= self.min_lookups
        if record.attempts < self.submit_attempts and (
            quiet_over or self.providers.get(record.provider).capabilities.unique_reference
        ):
            return _Next.SEND
        return _Next.GIVE_UP if quiet_over else _Next.WAIT

    def _quiet_left(self, record: OrderRecord) -> float:
        sent = record.last_sent_at or record.updated_at
        quiet = self.quiet_periods[record.provider]
        return quiet - (_now() - sent).total_seconds()

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
            quiet = self.quiet_periods[record.provider]
            note = (
                f"not found at {record.provider.value} yet; it may still commit, so nothing is"
                f" sent again before its quiet period ({quiet:g} s) has passed"
            )
        return await self.ledger.update(record.id, note=note)

    async def _nap(self, seconds: float, order_id: str) -> bool:
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

    def _backoff(self, attempt: int, exc: ProviderFailure) -> float:
        retry_after = exc.retry_after if isinstance(exc, ProviderError) else None
        base: float = min(self.poll_initial * 2.0**attempt, self.poll_max)
        if retry_after is not None:
            return min(retry_after, self.poll_max)
        return base * (0.5 + random.random())

    async def _reject(self, record: OrderRecord, exc: ProviderError) -> OrderRecord:
        record = await self.ledger.update(
            record.id,
            step=Step.REJECTED,
            state=OrderState.FAILED,
            failure_reason=exc.message,
            error_code=exc.error_code,
            error_status=exc.status,
            note=f"rejected by {record.provider.value} ({exc.status})",
        )
        if record.attempts > 1:
            # an earlier send's outcome was unknown: watch for it committing after all
            record = await self._watch_from_now(record)
        return record

    async def _abandon(self, record: OrderRecord) -> OrderRecord:
        quiet = self.quiet_periods[record.provider]
        record = await self.ledger.update(
            record.id,
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
        return await self._watch_from_now(record)

    async def _watch_from_now(self, record: OrderRecord) -> OrderRecord:
        return await self.ledger.update(
            record.id,
            watch_until=_now() + timedelta(seconds=self.watch_for),
            next_check_at=_now() + timedelta(seconds=self.watch_initial),
        )

    # -- watching a finished order's reference --------------------------------------------

    async def _watch(self, order_id: str) -> PurchaseOutcome:
        record = await self.ledger.get(order_id)
        if record is None:
            raise KeyError(order_id)
        if not record.step.is_terminal or record.watch_until is None:
            return PurchaseOutcome(record)
        return await self._leased(record, self._watch_once)

    async def _watch_once(self, record: OrderRecord) -> PurchaseOutcome:
        """Look at everything under the reference: a purchase found after the order was
        given up revives it; any other order under it is a duplicate."""
        try:
            gateway = self.providers.get(record.provider)
            found = await self.providers.read(
                record.provider, functools.partial(gateway.find_orders, record.reference)
            )
        except ProviderFailure as exc:
            log.warning("watching order %s: %s", record.id, exc.message)
            return PurchaseOutcome(await self._next_watch(record), exc)
        outcome = PurchaseOutcome(record)
        if record.provider_order_id is None and found:
            revived = await self.ledger.update(
                record.id,
                step=Step.SUBMITTED,
                state=found[0].state
                if found[0].state is not OrderState.COMPLETED
                else OrderState.PROCESSING,
                provider_order_id=found[0].order_id,
                provider_status=found[0].provider_status,
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
                outcome = await self._follow(revived, found[0])
            except ProviderFailure as exc:
                outcome = PurchaseOutcome(await self.ledger.get(record.id) or revived, exc)
            record = outcome.record
        for other in found:
            if other.order_id != record.provider_order_id:
                await self._report_duplicate(record, other)
        return PurchaseOutcome(await self._next_watch(record), outcome.failure)

    async def _next_watch(self, record: OrderRecord) -> OrderRecord:
        """Back off: look again after a quarter of the time watched so far, within bounds."""
        assert record.watch_until is not None
        started = record.watch_until - timedelta(seconds=self.watch_for)
        watched = max(0.0, (_now() - started).total_seconds())
        wait = min(self.watch_max, max(self.watch_initial, watched / 4))
        return await self.ledger.update(record.id, next_check_at=_now() + timedelta(seconds=wait))

    async def _report_duplicate(self, record: OrderRecord, duplicate: ProviderOrder) -> None:
        known = {d.provider_order_id for d in await self.ledger.duplicates(record.id)}
        if duplicate.order_id in known:
            return
        gateway = self.providers.get(record.provider)
        action = "reported (the provider has no cancellation for it)"
        if gateway.capabilities.cancel:
            try:
                await self.providers.write(
                    record.provider,
                    functools.partial(
                        gateway.cancel_order, duplicate.order_id, "duplicate purchase"
                    ),
                )
                action = "cancelled"
            except ProviderFailure as exc:
                action = f"reported (cancellation refused: {exc.message})"
        if not await self.ledger.record_duplicate(record.id, duplicate.order_id, action):
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
                try:
                    order = await self.providers.read(
                        record.provider,
                        functools.partial(gateway.get_order, record.provider_order_id),
                    )
                except NotFound:
                    # placed (we hold its id), so this is the provider's reads lagging
                    # its writes: look again later, never treat it as gone
                    order = None
            if order is None:
                if loop.time() + delay > give_up_at:
                    return PurchaseOutcome(record)
                if not await self._nap(delay, record.id) or not await self.ledger.acquire_lease(
                    record.id, self.holder, self.lease_seconds
                ):
                    return PurchaseOutcome(record)
                delay = min(delay * 2, self.poll_max)
                continue
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
            if not await self._nap(delay, record.id):
                return PurchaseOutcome(record)
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
