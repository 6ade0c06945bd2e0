"""map_in_slices: the same list as a comprehension, with the event loop let in between."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given
from hypothesis import strategies as st

from esim_gateway.ops.slices import map_in_slices


@given(st.lists(st.integers()), st.integers(1, 7))
def test_it_maps_like_a_comprehension(items: list[int], size: int) -> None:
    mapped = asyncio.run(map_in_slices(lambda n: n * 2 + 1, items, size=size))
    assert mapped == [n * 2 + 1 for n in items]


async def test_other_tasks_run_between_slices() -> None:
    ran_between: list[int] = []
    done = 0

    def work(n: int) -> int:
        nonlocal done
        done += 1
        return n

    async def other_request() -> None:
        while done < 1000:
            ran_between.append(done)
            await asyncio.sleep(0)

    other = asyncio.create_task(other_request())
    await asyncio.sleep(0)  # the other task is waiting for its turn, as a request would
    assert await map_in_slices(work, range(1000), size=100) == list(range(1000))
    await other
    # it got a turn after each slice: never more than one slice went by without it
    assert ran_between[0] == 0 and len(ran_between) >= 10
    assert all(b - a <= 100 for a, b in itertools.pairwise(ran_between))
