"""Placing orders and top-ups exactly once, and following them until they settle.

A purchase is driven by `PurchaseDriver.start()` through the ledger's steps (every move,
with its cause, is in the table of `states.py`):

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

The work is split by job, each part in its own module: `placing.Placer` sends a
purchase and reads each answer; `lookups.Lookups` follows an unknown outcome (lookups by
reference with backoff, resend or give up); `records.Recorder` adopts the orders found,
reports duplicates and writes every change of step (held to the table in `states.py`);
`following.Follower` follows a placed order until it settles; `watching.Watcher` watches
a reference; `pacing.Pacer` times the waits. `PurchaseDriver` runs them, one task and one
lease per order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Generic, TypeVar, cast, overload

from esim_gateway.domain import ProviderName
from esim_gateway.errors import ProviderFailure
from esim_gateway.ledger.orders import OrderRecord, Step
from esim_gateway.ledger.repository import Ledger
from esim_gateway.providers.registry import Providers
from esim_gateway.purchasing.following import Follower
from esim_gateway.purchasing.lookups import Lookups
from esim_gateway.purchasing.pacing import DEFAULT_QUIET_PERIODS, Pacer, Tuning
from esim_gateway.purchasing.placing import Placer
from esim_gateway.purchasing.records import PurchaseOutcome, Recorder
from esim_gateway.purchasing.watching import Watcher

__all__ = ["DEFAULT_QUIET_PERIODS", "PurchaseDriver", "PurchaseOutcome"]

log = logging.getLogger("esim_gateway.purchasing")

V = TypeVar("V")


class _Tuned(Generic[V]):
    """A driver setting kept in its shared `Tuning`, where its parts read it: set on
    the driver (tests shorten the waits), it takes effect at once."""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, driver: None, owner: type[Any]) -> _Tuned[V]: ...
    @overload
    def __get__(self, driver: PurchaseDriver, owner: type[Any]) -> V: ...
    def __get__(self, driver: PurchaseDriver | None, owner: type[Any]) -> _Tuned[V] | V:
        if driver is None:
            return self
        return cast(V, getattr(driver.tuning, self._name))

    def __set__(self, driver: PurchaseDriver, value: V) -> None:
        setattr(driver.tuning, self._name, value)


class PurchaseDriver:
    """Drives purchases; shared by the API, the background followers and the reconciler."""

    submit_attempts = _Tuned[int]()
    lease_seconds = _Tuned[float]()
    follow_for = _Tuned[float]()
    poll_initial = _Tuned[float]()
    poll_max = _Tuned[float]()
    quiet_periods = _Tuned[dict[ProviderName, float]]()
    min_lookups = _Tuned[int]()
    watch_for = _Tuned[float]()
    watch_initial = _Tuned[float]()
    watch_max = _Tuned[float]()

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
        self.tuning = Tuning(
            submit_attempts=submit_attempts,
            lease_seconds=lease_seconds,
            follow_for=follow_for,
            poll_initial=poll_initial,
            poll_max=poll_max,
            quiet_periods={**DEFAULT_QUIET_PERIODS, **(quiet_periods or {})},
            min_lookups=min_lookups,
            watch_for=watch_for,
            watch_initial=watch_initial,
            watch_max=watch_max,
        )
        self.holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.pacer = Pacer(ledger, self.tuning, self.holder)
        records = Recorder(ledger, providers, self.tuning, on_duplicate)
        lookups = Lookups(ledger, providers, self.tuning, self.pacer, records)
        self.placer = Placer(ledger, providers, self.tuning, records, lookups)
        self.follower = Follower(ledger, providers, self.tuning, self.pacer, records)
        self.watcher = Watcher(ledger, self.tuning, records, self.follower)
        self._tasks: dict[str, asyncio.Task[PurchaseOutcome]] = {}

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
        current = await self.ledger.orders.get(record.id)
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
                self.pacer.nudge(record.id)
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
        return await self.ledger.orders.update(
            record.id,
            state=order.state,
            provider_status=order.provider_status,
            note="updated by the provider",
        )

    async def shutdown(self, grace: float = 10.0) -> None:
        """Let in-flight purchases finish (up to `grace` s), then cancel what is left.
        Drivers that are only waiting (a quiet period, a provider's slow fulfilment) stop
        at once; the ledger says when their order is next due, for any replica."""
        self.pacer.stop()
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
            self.pacer.forget(order_id)
        if not task.cancelled() and task.exception() is not None:
            log.error("purchase driver for order %s crashed", order_id, exc_info=task.exception())

    # -- the driver ----------------------------------------------------------------------

    async def _run(self, order_id: str) -> PurchaseOutcome:
        return await self._leased(order_id, self._advance, _drivable)

    async def _leased(
        self,
        order_id: str,
        work: Callable[[OrderRecord], Awaitable[PurchaseOutcome]],
        ready: Callable[[OrderRecord], bool],
    ) -> PurchaseOutcome:
        """`work` on the order under this driver's lease, if the order is `ready` for it.

        The lease is taken before the order is read, and the work starts from that read:
        read first, another driver could drive the order on and let go of it before the
        lease (settle it, say), and working from the earlier read would move it back
        (adopt a settled order again, or send a purchase made already).
        """
        # Acquiring inside the try: a cancellation (a shutdown) can land after the lease
        # is committed but before the call returns, and must still give it back; releasing
        # a lease this holder does not hold changes nothing.
        try:
            if not await self.ledger.orders.acquire_lease(
                order_id, self.holder, self.lease_seconds
            ):
                return await self._wait_for_other_driver(order_id, work, ready)
            return await self._work_on(order_id, work, ready)
        finally:
            with contextlib.suppress(Exception):
                await self.ledger.orders.release_lease(order_id, self.holder)

    async def _work_on(
        self,
        order_id: str,
        work: Callable[[OrderRecord], Awaitable[PurchaseOutcome]],
        ready: Callable[[OrderRecord], bool],
    ) -> PurchaseOutcome:
        record = await self._read(order_id)
        if not ready(record):
            return PurchaseOutcome(record)
        return await work(record)

    async def _read(self, order_id: str) -> OrderRecord:
        record = await self.ledger.orders.get(order_id)
        if record is None:
            raise KeyError(order_id)
        return record

    async def _wait_for_other_driver(
        self,
        order_id: str,
        work: Callable[[OrderRecord], Awaitable[PurchaseOutcome]],
        ready: Callable[[OrderRecord], bool],
    ) -> PurchaseOutcome:
        """Another replica holds the lease: report its progress as the ledger shows it."""
        record = await self._read(order_id)
        if not ready(record):
            return PurchaseOutcome(record)
        delay = self.poll_initial
        for _ in range(40):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            current = await self.ledger.orders.get(order_id)
            if current is None or current.step.is_terminal:
                return PurchaseOutcome(current or record)
            if await self.ledger.orders.acquire_lease(order_id, self.holder, self.lease_seconds):
                try:
                    return await self._work_on(order_id, work, ready)
                finally:
                    with contextlib.suppress(Exception):
                        await self.ledger.orders.release_lease(order_id, self.holder)
        current = await self.ledger.orders.get(order_id)
        return PurchaseOutcome(current or record)

    async def _advance(self, record: OrderRecord) -> PurchaseOutcome:
        try:
            if record.step in (Step.NEW, Step.SUBMITTING):
                record, placed = await self.placer.place(record)
                if placed is None:
                    return PurchaseOutcome(record)
            else:
                placed = None
            return await self.follower.follow(record, placed)
        except ProviderFailure as exc:
            log.warning("order %s paused at %s: %s", record.id, record.step, exc.message)
            current = await self.ledger.orders.get(record.id)
            return PurchaseOutcome(current or record, exc)

    # -- watching a finished order's reference --------------------------------------------

    async def _watch(self, order_id: str) -> PurchaseOutcome:
        return await self._leased(order_id, self.watcher.watch_once, _watched)


def _drivable(record: OrderRecord) -> bool:
    """Not finished, and not waiting for its time (the scheduler starts it then)."""
    return not record.step.is_terminal and record.step is not Step.SCHEDULED


def _watched(record: OrderRecord) -> bool:
    """Finished, with its reference still watched."""
    return record.step.is_terminal and record.watch_until is not None
