"""The server freezes long-lived objects so full GC passes stay short (P6 tail latency)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tests.conftest import GatewayFactory


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # give the test process its heap back


async def test_start_up_and_each_new_catalog_snapshot_freeze_the_heap(
    gateway_factory: GatewayFactory, unfrozen: None
) -> None:
    from esim_gateway.app import create_app

    assert gc.get_freeze_count() == 0
    async with gateway_factory() as gw:
        assert gc.get_freeze_count() == 0  # tests build apps without freezing
        assert gw.services.catalog.on_install is None
    app = create_app(gw.services.settings, freeze_heap=True, catalog_refresh=False)
    from asgi_lifespan import LifespanManager

    async with LifespanManager(app):
        started = gc.get_freeze_count()
        assert started > 0
        catalog = app.state.services.catalog
        assert catalog.on_install is gc.freeze
        for provider in app.state.services.providers.enabled():
            await catalog.refresh(provider)
        # the snapshots' objects joined the permanent generation
        assert gc.get_freeze_count() > started
