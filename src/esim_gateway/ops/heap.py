"""The cyclic garbage collector in a server process that hosts one gateway app.

A full collection walks every tracked object. With a catalog snapshot (~10^5 objects) in
the heap that is a pause of up to ~100 ms every few thousand requests, which is what the
P6 tail-latency benchmark measured. So the server freezes (`gc.freeze`, as Instagram does)
what lives for the life of the process: everything after start-up, and each catalog
snapshot once installed. Reference counting still frees a replaced snapshot.

Freezing has a cost of its own: CPython runs a full collection when the objects promoted
since the last one exceed a quarter of the long-lived ones, and frozen objects do not
count, so full collections come often. Cheap in steady state (little is unfrozen), but
while a new snapshot is being fetched and built each one walks all of it: 50-100 ms
pauses, many times, for the seconds a refresh takes. `ServerHeap.building()` defers full
collections for that time; young collections go on as usual.

The young generation's threshold goes up too (700 -> `YOUNG_THRESHOLD` allocations). A
request leaves nothing in reference cycles (tests/api/test_request_garbage.py), yet the
young generation was still collected every ~6-15 requests at concurrency 10: its count
rises with allocations and falls with deallocations but never below zero, so the objects
of requests in flight at one collection, freed after it, are never counted off, and ten
requests' worth of live objects reach 700 on their own. Each such collection walks the
in-flight requests' objects and finds nothing: ~15-20 us of CPU a request. At 5,000 they
come ~200x less often; what they walk is still bounded by what is in flight.

Only for a process that hosts the app alone (`esim-gateway serve`, `esim-gateway
sandbox`): frozen cyclic garbage is never collected, which a test process that builds
hundreds of apps could not afford.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["YOUNG_THRESHOLD", "ServerHeap", "freeze_long_lived"]

#: collections of the middle generation before a full one is considered, while building
DEFERRED = 1_000_000

#: net allocations between young collections in a server process (CPython's default: 700)
YOUNG_THRESHOLD = 5_000


def freeze_long_lived() -> None:
    """Collects, then takes every object alive now out of the collector's reach; the
    young generation collected less often (see the module docs)."""
    gc.collect()
    gc.freeze()
    young, middle, full = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, full)


class ServerHeap:
    """What rebuilding a large long-lived structure (a catalog snapshot) asks of the GC."""

    def __init__(self) -> None:
        self._builds = 0
        self._thresholds: tuple[int, int, int] | None = None

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """No full collection until the last of the overlapping builds ends."""
        if self._builds == 0:
            young, middle, full = gc.get_threshold()
            self._thresholds = (young, middle, full)
            gc.set_threshold(young, middle, DEFERRED)
        self._builds += 1
        try:
            yield
        finally:
            self._builds -= 1
            if self._builds == 0 and self._thresholds is not None:
                gc.set_threshold(*self._thresholds)
                self._thresholds = None

    def built(self) -> None:
        """The structure is in place for good: out of the collector's reach."""
        gc.freeze()
