"""Single flight: identical reads in flight at the same moment share one run."""

from __future__ import annotations

import asyncio

import pytest

from esim_gateway.errors import ProviderError
from esim_gateway.providers.registry import SingleFlight


class Upstream:
    """A call that waits for `release`, counting how often it was started."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self.cancelled = 0
        self.failure: Exception | None = None

    async def __call__(self) -> str:
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.failure is not None:
            raise self.failure
        return f"answer {self.started}"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_callers_of_one_key_share_one_call_and_its_answer() -> None:
    flights, upstream = SingleFlight(), Upstream()
    callers = [asyncio.create_task(flights.run("k", upstream)) for _ in range(100)]
    await settle()
    upstream.release.set()
    assert await asyncio.gather(*callers) == ["answer 1"] * 100
    assert upstream.started == 1 and len(flights) == 0


async def test_different_keys_are_not_shared_and_nothing_is_kept_afterwards() -> None:
    flights, upstream = SingleFlight(), Upstream()
    upstream.release.set()
    both = await asyncio.gather(flights.run("a", upstream), flights.run("b", upstream))
    assert list(both) == ["answer 1", "answer 2"]
    assert await flights.run("a", upstream) == "answer 3"  # not a cache


async def test_a_failure_reaches_every_caller() -> None:
    flights, upstream = SingleFlight(), Upstream()
    upstream.failure = ProviderError("roamify", 503, "HTTP_503", "down", retryable=True)
    callers = [asyncio.create_task(flights.run("k", upstream)) for _ in range(3)]
    await settle()
    upstream.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(r is upstream.failure for r in results) and upstream.started == 1


async def test_a_caller_giving_up_leaves_the_others_their_answer() -> None:
    flights, upstream = SingleFlight(), Upstream()
    first = asyncio.create_task(flights.run("k", upstream))
    second = asyncio.create_task(flights.run("k", upstream))
    await settle()
    first.cancel()  # the caller that started the call
    await settle()
    upstream.release.set()
    assert await second == "answer 1"
    assert first.cancelled() and upstream.cancelled == 0


async def test_the_call_is_cancelled_when_its_last_caller_gives_up() -> None:
    flights, upstream = SingleFlight(), Upstream()
    callers = [asyncio.create_task(flights.run("k", upstream)) for _ in range(2)]
    await settle()
    for caller in callers:
        caller.cancel()
    await settle()
    assert upstream.cancelled == 1 and len(flights) == 0
    for caller in callers:
        with pytest.raises(asyncio.CancelledError):
            await caller


async def test_after_forget_new_callers_start_afresh() -> None:
    flights, upstream = SingleFlight(), Upstream()
    before = asyncio.create_task(flights.run("k", upstream))
    await settle()
    flights.forget()  # e.g. a write to the provider happened meanwhile
    after = asyncio.create_task(flights.run("k", upstream))
    await settle()
    upstream.release.set()
    assert list(await asyncio.gather(before, after)) == ["answer 2", "answer 2"]
    assert upstream.started == 2
