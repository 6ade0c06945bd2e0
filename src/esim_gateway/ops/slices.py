"""CPU-bound work over long lists without holding the event loop.

Normalising a provider's catalog (thousands of plans) in one go blocked every request
on the process for 100-200 ms: the P6 benchmark's tail, every catalog refresh. Done in
slices, with the loop free to serve requests between them, a refresh delays a request
by one slice at most (a few milliseconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = ["SLICE", "map_in_slices"]

T = TypeVar("T")
R = TypeVar("R")

#: items per slice: about a millisecond of normalising plans on a slow core
SLICE = 100


async def map_in_slices(
    function: Callable[[T], R], items: Iterable[T], *, size: int = SLICE
) -> list[R]:
    """`[function(item) for item in items]`, yielding to the event loop every `size`."""
    results: list[R] = []
    for count, item in enumerate(items, 1):
        results.append(function(item))
        if count % size == 0:
            await asyncio.sleep(0)
    return results
