"""The simulators' state survives a restart: every kind of record, saved and read back."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from esim_gateway.sandbox.persistence import SandboxStore, ledger_file, state_for_ledger
from esim_gateway.sandbox.roamify import RoamifySandbox, create_roamify_sandbox
from esim_gateway.sandbox.roamify.state import INF
from esim_gateway.sandbox.simplifytrip import (
    RECHARGE_ICCIDS,
    SimplifyTripSandbox,
    create_simplifytrip_sandbox,
)
from esim_gateway.sandbox.transport import SandboxTransport
from esim_gateway.signatures import simplifytrip_signature

ST_HEADERS = {"x-api-key": "pk_test_sandbox", "authorization": "Bearer sk_test_sandbox"}


class Clock:
    """A clock the test moves (Unix seconds)."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


def roamify(store: SandboxStore, clock: Clock) -> RoamifySandbox:
    return create_roamify_sandbox(packages_per_country=3, clock=clock, store=store)


def simplifytrip(store: SandboxStore, clock: Clock, fulfil_delay: float) -> SimplifyTripSandbox:
    return create_simplifytrip_sandbox(
        products_per_country=2, clock=clock, fulfil_delay=fulfil_delay, store=store
    )


async def signed_post(sandbox: SimplifyTripSandbox, path: str, body: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(
        transport=SandboxTransport(sandbox.app), base_url="http://simplifytrip.sandbox"
    ) as http:
        headers = {**ST_HEADERS, "x-signature": simplifytrip_signature(body, "ck_test_sandbox")}
        response = await http.post(path, content=orjson.dumps(body), headers=headers)
        assert response.status_code in (200, 201), response.text
        return response.json()


async def get(sandbox: SimplifyTripSandbox, path: str) -> Any:
    async with httpx.AsyncClient(
        transport=SandboxTransport(sandbox.app), base_url="http://simplifytrip.sandbox"
    ) as http:
        response = await http.get(path, headers=ST_HEADERS)
        return response.json()


def skus(sandbox: SimplifyTripSandbox, kind: str) -> list[str]:
    return [sku for sku, (_, p) in sandbox.state.catalog.variations.items() if p["type"] == kind]


async def test_every_roamify_record_is_the_same_after_a_restart(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.json", Clock()
    before = roamify(SandboxStore.open(path), clock)
    state = before.state
    packages = state.catalog.packages
    topup = next(pid for pid, (p, _) in packages.items() if p["withTopUp"] and not p["isUnlimited"])
    unlimited = next(pid for pid, (p, _) in packages.items() if p["isUnlimited"])
    order = state.new_order([(topup, 2), (unlimited, 1)], "ref-1")
    first, second, third = (state.esims[i] for i in order.esim_ids)
    state.apply(first, "2026-01-02")
    state.apply(third)
    state.install(first.iccid)
    clock.now += 7200
    state.topup(first, packages[topup][0], "ref-topup")
    state.consume(first.iccid, 900.5)
    state.set_status(third.iccid, "ACTIVATED")
    state.credit(Decimal("12.34"))
    state.new_order([(topup, 1)], "ref-1")  # a repeated reference: the newest one wins
    assert third.allowed_mb == INF and first.usage_marks and second.iccid == ""
    await before.aclose()

    after = roamify(SandboxStore.open(path), clock)
    assert after.state.orders == state.orders
    assert list(after.state.orders) == list(state.orders)
    assert after.state.esims == state.esims
    assert after.state.by_iccid == state.by_iccid
    assert after.state.balance == state.balance
    assert after.state.low_balance_threshold == state.low_balance_threshold
    assert after.state._iccid_counter == state._iccid_counter
    newest = after.state.newest_order("ref-1")
    assert newest is not None and newest.id == list(state.orders)[-1]
    await after.aclose()


async def test_every_simplifytrip_record_is_the_same_after_a_restart(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.json", Clock()
    before = simplifytrip(SandboxStore.open(path), clock, fulfil_delay=0.0)
    esim_sku, sim_sku, recharge_sku = (
        skus(before, kind)[0] for kind in ("eSIM", "SIM", "SIM_RECHARGE")
    )
    esim_order = await signed_post(
        before,
        "/api/v1/orders",
        {"trackId": "t-esim", "items": [{"subTrackId": "s1", "sku": esim_sku, "quantity": 2}]},
    )
    sim_order = await signed_post(
        before,
        "/api/v1/orders",
        {"trackId": "t-sim", "items": [{"subTrackId": "s2", "sku": sim_sku, "quantity": 1}]},
    )
    before.state.advance_sim_order(sim_order["orderId"])
    recharge_iccid = RECHARGE_ICCIDS[0]
    await signed_post(
        before,
        "/api/v1/orders/recharge",
        {
            "trackId": "t-recharge",
            "items": [{"subTrackId": "s3", "sku": recharge_sku, "iccids": [recharge_iccid]}],
        },
    )
    await before.settle()
    order = before.state.orders[esim_order["orderId"]]
    iccid = order.items[0].iccids[0]
    before.state.install(iccid)
    before.state.consume(iccid, 42.0)
    before.state.consume(recharge_iccid, 7.5)
    returned = await signed_post(
        before,
        "/api/v1/return-requests",
        {
            "returnTrackId": "r-1",
            "orderId": order.id,
            "items": [{"subOrderId": order.items[0].id, "iccids": [iccid]}],
        },
    )
    before.state.advance_return(returned["id"], "REFUNDING")
    state = before.state
    assert order.status == "SUCCESS" and state.returns and state.sims[recharge_iccid]["sku"]
    await before.aclose()

    after = simplifytrip(SandboxStore.open(path), clock, fulfil_delay=0.0)
    assert after.state.orders == state.orders
    assert after.state.by_track == state.by_track
    assert after.state.esims == state.esims
    assert after.state.sims == state.sims
    assert after.state.returns == state.returns
    assert after.state.wallet == state.wallet
    assert after.state._counter == state._counter
    shown = await get(after, f"/api/v1/orders/{order.id}")
    assert [e["iccid"] for e in shown["items"][0]["eSims"]] == order.items[0].iccids
    await after.aclose()


async def test_an_order_processing_at_shutdown_is_fulfilled_after_the_restart(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "state.json", Clock()
    before = simplifytrip(SandboxStore.open(path), clock, fulfil_delay=3600.0)
    sku = skus(before, "eSIM")[0]
    created = await signed_post(
        before,
        "/api/v1/orders",
        {"trackId": "t-1", "items": [{"subTrackId": "s1", "sku": sku, "quantity": 1}]},
    )
    await before.aclose()  # its fulfilment timer is cancelled with it
    assert before.state.orders[created["orderId"]].status == "PROCESSING"

    # restarted with the due time passed: the first call re-arms the timer, which fulfils
    clock.now += 3600
    after = simplifytrip(SandboxStore.open(path), clock, fulfil_delay=3600.0)
    order = after.state.orders[created["orderId"]]
    assert order.status == "PROCESSING" and not after._timers
    await get(after, "/api/v1/accounts")
    await asyncio.wait_for(asyncio.gather(*after._timers), timeout=5)
    assert order.status == "SUCCESS" and len(order.items[0].iccids) == 1
    await after.aclose()

    # and a read after the due time sees it fulfilled even before any timer ran
    again = simplifytrip(SandboxStore.open(path), clock, fulfil_delay=3600.0)
    assert again.state.orders[created["orderId"]].status == "SUCCESS"
    await again.aclose()


async def test_a_read_of_a_restored_order_past_its_due_time_fulfils_it(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.json", Clock()
    before = simplifytrip(SandboxStore.open(path), clock, fulfil_delay=60.0)
    sku = skus(before, "eSIM")[0]
    created = await signed_post(
        before,
        "/api/v1/orders",
        {"trackId": "t-1", "items": [{"subTrackId": "s1", "sku": sku, "quantity": 1}]},
    )
    await before.aclose()
    clock.now += 61
    after = simplifytrip(SandboxStore.open(path), clock, fulfil_delay=60.0)
    shown = await get(after, f"/api/v1/orders/{created['orderId']}")
    assert shown["status"] == "SUCCESS" and len(shown["items"][0]["eSims"]) == 1
    await after.aclose()


def temporary_files(folder: Path) -> list[Path]:
    return list(folder.glob("*.tmp"))


async def test_changes_are_saved_while_running_not_only_at_shutdown(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.json", Clock()
    store = SandboxStore.open(path, delay=0.01)
    sandbox = simplifytrip(store, clock, fulfil_delay=0.0)
    sku = skus(sandbox, "eSIM")[0]
    created = await signed_post(
        sandbox,
        "/api/v1/orders",
        {"trackId": "t-1", "items": [{"subTrackId": "s1", "sku": sku, "quantity": 1}]},
    )
    saved = asyncio.Event()
    loop = asyncio.get_running_loop()

    def look() -> None:
        if path.exists() and created["orderId"].encode() in path.read_bytes():
            saved.set()
        else:
            loop.call_later(0.01, look)

    look()
    await asyncio.wait_for(saved.wait(), timeout=5)
    assert temporary_files(tmp_path) == []  # written whole, then renamed
    await sandbox.aclose()


def test_both_simulators_share_one_file_and_keep_a_section_not_running(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.json", Clock()
    store = SandboxStore.open(path)
    first = roamify(store, clock)
    first.state.credit(Decimal("1"))
    simplifytrip(store, clock, fulfil_delay=0.0)
    store.close()
    assert set(orjson.loads(path.read_bytes())) == {"version", "roamify", "simplifytrip"}
    # a run with Roamify only (SimplifyTrip live) leaves SimplifyTrip's records alone
    alone = SandboxStore.open(path)
    roamify(alone, clock)
    alone.close()
    assert set(orjson.loads(path.read_bytes())) == {"version", "roamify", "simplifytrip"}


def test_an_unreadable_state_file_is_set_aside_and_the_simulators_start_empty(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    sandbox = roamify(SandboxStore.open(path), Clock())
    assert sandbox.state.orders == {}
    assert (tmp_path / "state.json.unreadable").read_text() == "{not json"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///./esim_gateway.db", Path("esim_gateway.db")),
        ("sqlite+aiosqlite:////data/esim_gateway.db", Path("/data/esim_gateway.db")),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite://", None),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/test", None),
    ],
)
def test_the_state_lives_beside_a_sqlite_ledger_file_only(url: str, expected: Path | None) -> None:
    assert ledger_file(url) == expected


def test_a_new_ledger_drops_the_state_left_by_the_old_one(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    state = tmp_path / "ledger.sandbox.json"
    state.write_bytes(orjson.dumps({"version": 1, "roamify": {}}))
    assert state_for_ledger(f"sqlite+aiosqlite:///{ledger}", None) is not None
    assert not state.exists()
    assert state_for_ledger(f"sqlite+aiosqlite:///{ledger}", "memory") is None
