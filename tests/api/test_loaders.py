"""R9: every request has loaders of its own, built only when the request uses them."""

from __future__ import annotations

from typing import Any

import pytest
from aiodataloader import DataLoader

from esim_gateway.dataloaders import loaders as loaders_module
from tests.api.test_ordering import ORDER, buy
from tests.conftest import Gateway


class RecordedLoader(DataLoader[Any, Any]):
    built: list[RecordedLoader] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.built.append(self)


async def test_each_request_builds_its_own_loaders_and_only_those_it_uses(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = await buy(gateway, "ROAMIFY")
    assert order["__typename"] == "Order"
    monkeypatch.setattr(loaders_module, "DataLoader", RecordedLoader)
    RecordedLoader.built.clear()

    assert (await gateway.execute("{ __typename }")) == {"__typename": "Query"}
    assert RecordedLoader.built == []

    first = (await gateway.execute(ORDER, id=order["id"]))["order"]
    used_by_first = list(RecordedLoader.built)
    second = (await gateway.execute(ORDER, id=order["id"]))["order"]
    used_by_second = RecordedLoader.built[len(used_by_first) :]
    assert first == second and first["__typename"] == "Order"
    # the order's record, the provider's order and its eSIMs: fewer than all five
    assert 1 <= len(used_by_first) < 5
    # the second finds the order's record fresh in the ledger's read cache: no loader
    # batches a read of it (issue 12); the provider's order still goes through one
    assert 1 <= len(used_by_second) == len(used_by_first) - 1
    # never shared: a second request (for another principal, say) starts empty
    assert not set(map(id, used_by_first)) & set(map(id, used_by_second))
