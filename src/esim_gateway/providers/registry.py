"""The providers this process talks to, and the one retry/breaker policy for calling them.

Every upstream call goes through `Providers.read()` or `Providers.write()`:

* both run under the provider's concurrency limit and its circuit breaker: after
  `failure_threshold` consecutive failures (no answer, 5xx, 429) the provider is skipped
  for `reset_after` seconds (calls fail fast with `ProviderUnavailable(sent=False)`),
  then one probe call decides whether it closes again. 4xx answers never trip it, so
  one provider being down never slows the other;
* `read()` retries connection failures, timeouts, 5xx and 429 (honouring Retry-After)
  with jittered exponential backoff inside `read_budget` seconds (stamina);
* `write()` never retries: whether a purchase may be repeated is for the purchase
  driver to decide, after looking the order up by its reference;
* `read(..., shared_as=key)` joins an identical read already in flight, from any
  request, instead of sending another (single flight): a hundred concurrent `order(id)`
  for one order make one upstream call. Only what every caller may see is shared: the
  callers' ownership checks come before their reads, and the result is the provider's
  answer, not a view of it. A write to a provider ends the sharing of the reads already
  in flight to it, so what is read after a write is read after it.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import stamina

from esim_gateway.domain import ProviderName
from esim_gateway.errors import ProviderError, ProviderFailure, ProviderUnavailable
from esim_gateway.providers.base import ProviderGateway

__all__ = ["BreakerState", "CircuitBreaker", "Providers", "RetryPolicy", "SingleFlight"]

T = TypeVar("T")


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    provider: str
    failure_threshold: int = 5
    reset_after: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _probing: bool = False

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.reset_after:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def before_call(self) -> None:
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return
        raise ProviderUnavailable(
            self.provider,
            f"{self.provider} is failing; calls are paused (circuit open)",
            sent=False,
        )

    def record(self, failure: BaseException | None) -> None:
        if failure is None or not _counts_as_outage(failure):
            self.failures = 0
            self.opened_at = None
            self._probing = False
            return
        self.failures += 1
        self._probing = False
        if self.failures >= self.failure_threshold or self.opened_at is not None:
            self.opened_at = self.clock()


def _counts_as_outage(exc: BaseException) -> bool:
    if isinstance(exc, ProviderUnavailable):
        return exc.sent or "circuit open" not in exc.message
    return isinstance(exc, ProviderError) and (exc.status >= 500 or exc.status == 429)


def _retry_hook(exc: Exception) -> bool | float:
    """stamina's backoff hook: retry outages; wait what Retry-After asks for."""
    if isinstance(exc, ProviderUnavailable):
        return "circuit open" not in exc.message
    if isinstance(exc, ProviderError) and exc.retryable:
        return exc.retry_after if exc.retry_after is not None else True
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    #: every read, retries included, ends within this many seconds
    read_budget: float = 10.0
    wait_initial: float = 0.05
    wait_max: float = 2.0
    wait_jitter: float = 0.1


@dataclass(slots=True)
class _Flight:
    task: asyncio.Task[Any]
    waiters: int = 0


class SingleFlight:
    """Identical calls in flight at the same moment share one run.

    The call runs in a task of its own, so a caller that gives up (its deadline, a
    client gone) leaves the others their answer; the task is cancelled when the last
    of its callers has gone. Nothing is kept once the call ends: this is not a cache.
    """

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        flight = self._flights.get(key)
        if flight is None:
            flight = _Flight(asyncio.ensure_future(call()))
            self._flights[key] = flight
            flight.task.add_done_callback(functools.partial(self._land, key, flight))
        flight.waiters += 1
        try:
            result: T = await asyncio.shield(flight.task)
            return result
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()

    def _land(self, key: Hashable, flight: _Flight, task: asyncio.Task[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody awaited any more is no warning

    def forget(self) -> None:
        """Calls from now on start afresh; those in flight finish for their callers."""
        self._flights = {}


@dataclass
class Providers:
    """Enabled provider gateways. A provider without credentials in live mode is absent:
    calls to it raise `ProviderUnavailable` rather than crash."""

    gateways: Mapping[ProviderName, ProviderGateway]
    concurrency: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    failure_threshold: int = 5
    reset_after: float = 30.0
    _limits: dict[ProviderName, asyncio.Semaphore] = field(default_factory=dict, init=False)
    breakers: dict[ProviderName, CircuitBreaker] = field(default_factory=dict, init=False)
    _shared: dict[ProviderName, SingleFlight] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._limits = {name: asyncio.Semaphore(self.concurrency) for name in self.gateways}
        self._shared = {name: SingleFlight() for name in self.gateways}
        self.breakers = {
            name: CircuitBreaker(name.value, self.failure_threshold, self.reset_after)
            for name in self.gateways
        }

    def get(self, name: ProviderName) -> ProviderGateway:
        gateway = self.gateways.get(name)
        if gateway is None:
            raise ProviderUnavailable(
                name.value, f"{name.value} is not configured on this gateway", sent=False
            )
        return gateway

    def enabled(self) -> Iterator[ProviderName]:
        return iter(self.gateways)

    async def _once(self, name: ProviderName, call: Callable[[], Awaitable[T]]) -> T:
        self.get(name)
        breaker = self.breakers[name]
        breaker.before_call()
        try:
            async with self._limits[name]:
                result = await call()
        except ProviderFailure as exc:
            breaker.record(exc)
            raise
        breaker.record(None)
        return result

    async def read(
        self,
        name: ProviderName,
        call: Callable[[], Awaitable[T]],
        *,
        shared_as: Hashable | None = None,
    ) -> T:
        """A call that is safe to repeat: retried on outages within the read budget.

        With `shared_as`, callers asking the same key while a read is in flight share
        that read (retries included): the key must name everything the answer depends on.
        """
        if shared_as is not None and name in self._shared:
            return await self._shared[name].run(shared_as, lambda: self._read(name, call))
        return await self._read(name, call)

    async def _read(self, name: ProviderName, call: Callable[[], Awaitable[T]]) -> T:
        # The first attempt runs bare: a stamina retry context costs ~100 us to build
        # (budget line "provider registry"), and most reads succeed the first time.
        # A failure worth retrying hands over to stamina, replayed as its first attempt,
        # so backoff, Retry-After and the budget apply exactly as they always did.
        started = time.monotonic()
        try:
            return await self._once(name, call)
        except Exception as exc:
            budget = self.retry.read_budget - (time.monotonic() - started)
            if self.retry.attempts <= 1 or budget <= 0 or not _retry_hook(exc):
                raise
            failure: Exception | None = exc
        policy = self.retry
        async for attempt in stamina.retry_context(
            on=_retry_hook,
            attempts=policy.attempts,
            timeout=budget,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                if failure is not None:
                    replayed, failure = failure, None
                    raise replayed
                return await self._once(name, call)
        raise AssertionError("unreachable")  # pragma: no cover

    async def write(self, name: ProviderName, call: Callable[[], Awaitable[T]]) -> T:
        """A call with side effects upstream: sent at most once here."""
        try:
            return await self._once(name, call)
        finally:
            if name in self._shared:
                self._shared[name].forget()
