"""The server freezes long-lived objects so full GC passes stay short (P6 tail latency),
and defers full collections while a catalog snapshot is being built."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from asgi_lifespan import LifespanManager

from esim_gateway.ops.heap import DEFERRED, YOUNG_THRESHOLD, ServerHeap
from tests.conftest import GatewayFactory


@pytest.fixture
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # give the test process its heap back
        gc.set_threshold(*thresholds)


async def test_start_up_and_each_new_catalog_snapshot_freeze_the_heap(
    gateway_factory: GatewayFactory, unfrozen: None
) -> None:
    from esim_gateway.app import create_app

    assert gc.get_freeze_count() == 0
    async with gateway_factory() as gw:
        assert gc.get_freeze_count() == 0  # tests build apps without freezing
        assert gw.services.catalog.heap is None
    app = create_app(gw.services.settings, freeze_heap=True, catalog_refresh=False)
    async with LifespanManager(app):
        started = gc.get_freeze_count()
        assert started > 0
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD  # a server's young generation
        catalog = app.state.services.catalog
        assert isinstance(catalog.heap, ServerHeap)
        thresholds = gc.get_threshold()
        for provider in app.state.services.providers.enabled():
            await catalog.refresh(provider)
        # the snapshots' objects joined the permanent generation; thresholds are back
        assert gc.get_freeze_count() > started
        assert gc.get_threshold() == thresholds


def test_overlapping_builds_defer_full_collections_until_the_last_ends(unfrozen: None) -> None:
    heap = ServerHeap()
    before = gc.get_threshold()
    first, second = heap.building(), heap.building()
    first.__enter__()
    assert gc.get_threshold() == (before[0], before[1], DEFERRED)
    second.__enter__()
    first.__exit__(None, None, None)  # the first to start ends first
    assert gc.get_threshold()[2] == DEFERRED
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), heap.building():
        raise RuntimeError("a failed refresh")
    assert gc.get_threshold() == before
