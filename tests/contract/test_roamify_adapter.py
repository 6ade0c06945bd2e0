"""The Roamify client and gateway against the Roamify simulator, in process.

Every client method and every gateway method is exercised over `SandboxTransport`, with
the simulator's knobs (install, consume) and faults (500, 429, hang, drop after commit)
standing in for the real API's behaviour.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from esim_gateway.domain import (
    DestinationKind,
    OrderLineRequest,
    OrderState,
    PlaceOrder,
    ProviderName,
    ProviderOrder,
    TopupRequest,
)
from esim_gateway.errors import NotFound, ProviderError, ProviderUnavailable, UnsupportedOperation
from esim_gateway.providers._http import Timeouts
from esim_gateway.providers.base import ProviderGateway
from esim_gateway.providers.roamify import RoamifyClient, RoamifyGateway
from esim_gateway.providers.roamify.models import RoamifyEsim
from esim_gateway.sandbox.roamify import RoamifySandbox, create_roamify_sandbox
from esim_gateway.sandbox.transport import SandboxTransport

BASE_URL = "http://roamify.sandbox"
TOKEN = "sandbox-roamify-token"
ORDER = "/api/esim/order"
DOWN = {"message": "Unknown error", "status": "failed"}


@dataclass
class Rig:
    sandbox: RoamifySandbox
    http: httpx.AsyncClient

    def client(self, timeouts: Timeouts | None = None, token: str = TOKEN) -> RoamifyClient:
        return RoamifyClient(self.http, token=token, timeouts=timeouts or Timeouts())

    def gateway(self, timeouts: Timeouts | None = None) -> RoamifyGateway:
        return RoamifyGateway(self.client(timeouts))

    def calls(self, method: str | None = None, path: str | None = None) -> int:
        return self.sandbox.control.calls.count(method, path)

    def package(self, predicate: Callable[[dict[str, Any]], bool] = lambda _: True) -> str:
        """A package id of the simulator's catalog (never one needing a travel date)."""
        return next(
            package_id
            for package_id, (package, _) in self.sandbox.state.catalog.packages.items()
            if "requirements" not in package and predicate(package)
        )


@asynccontextmanager
async def open_rig(packages_per_country: int | None = 3) -> AsyncIterator[Rig]:
    sandbox = create_roamify_sandbox(packages_per_country=packages_per_country)
    http = httpx.AsyncClient(transport=SandboxTransport(sandbox.app), base_url=BASE_URL)
    try:
        yield Rig(sandbox, http)
    finally:
        await http.aclose()
        await sandbox.aclose()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with open_rig() as opened:
        yield opened


def reference() -> str:
    return f"eg-{uuid.uuid4().hex[:12]}"


def usable(package: dict[str, Any]) -> bool:
    return bool(package["withUsageCheck"] and package["withTopUp"] and not package["isUnlimited"])


async def a_fulfilled_order(rig: Rig, quantity: int = 2) -> ProviderOrder:
    gateway = rig.gateway()
    placed = await gateway.submit_order(
        PlaceOrder(reference(), (OrderLineRequest(rig.package(usable), quantity),))
    )
    return await gateway.fulfil_order(placed)


# -- catalog -----------------------------------------------------------------------------


async def test_countries_are_the_simulators_with_their_geography(rig: Rig) -> None:
    client = rig.client()
    everything = await client.countries()
    assert [(c.code, c.name, c.geography) for c in everything] == [
        (c["code"], c["name"], c["geography"]) for c in rig.sandbox.state.catalog.countries
    ]
    regional = await client.countries(geography="regional")
    assert regional and all(c.geography == "regional" for c in regional)
    assert {"EU", "AFR"} <= {c.code for c in regional}


async def test_a_package_page_is_flat_and_the_unpaged_answer_is_grouped(rig: Rig) -> None:
    client = rig.client()
    page = await client.packages(page=2, page_size=10)
    assert page.item_count == 10 and not page.grouped and len(page.packages) == 10
    assert all(p.country_code and p.geography and p.covered_codes for p in page.packages)
    grouped = await client.packages(country_code="JP")
    assert grouped.grouped and grouped.item_count == 1
    assert grouped.packages and all(p.country_code == "JP" for p in grouped.packages)
    assert all(p.group_id == "japan-esims" for p in grouped.packages)
    one = await client.packages(package_id=page.packages[0].package_id, page=1, page_size=5)
    assert [p.package_id for p in one.packages] == [page.packages[0].package_id]


@pytest.mark.parametrize("page_size", [7, 48, 200])
async def test_all_packages_pages_until_a_short_page(rig: Rig, page_size: int) -> None:
    packages = await rig.client().all_packages(page_size=page_size)
    expected = rig.sandbox.state.catalog.packages
    assert [p.package_id for p in packages] == list(expected)
    pages = len(expected) // page_size + 1  # a short (possibly empty) page ends it
    assert rig.calls("GET", "/api/esim/packages") == pages


async def test_the_catalog_is_every_package_with_iso_countries_and_usd_prices(rig: Rig) -> None:
    gateway = rig.gateway()
    assert isinstance(gateway, ProviderGateway)
    packages = await gateway.catalog()
    catalog = rig.sandbox.state.catalog.packages
    assert [p.package_id for p in packages] == list(catalog)
    assert all(p.provider is ProviderName.ROAMIFY for p in packages)
    assert all(p.price.currency == "USD" and p.price.amount > 0 for p in packages)
    assert all(p.country_codes and all(len(c) == 2 for c in p.country_codes) for p in packages)
    kinds = {p.destination for p in packages}
    assert kinds == {DestinationKind.LOCAL, DestinationKind.REGIONAL, DestinationKind.GLOBAL}
    by_id = {p.package_id: p for p in packages}
    for package_id, (raw, group) in catalog.items():
        mapped = by_id[package_id]
        assert mapped.price.amount == Decimal(str(raw["price"]))
        assert mapped.days == raw["day"] and mapped.unlimited is raw["isUnlimited"]
        assert mapped.topup is raw["withTopUp"] and mapped.usage_check is raw["withUsageCheck"]
        assert mapped.requires_travel_date is bool(raw.get("requirements"))
        if raw["isUnlimited"]:
            assert mapped.data_mb is None
        else:
            scale = 1024 if raw["dataUnit"] == "GB" else 1
            assert mapped.data_mb == round(raw["dataAmount"] * scale)
        if group["geography"] == "local":
            assert mapped.country_codes == (group["countryCode"],)
        else:
            assert mapped.country_codes == tuple(s["code"] for s in group["signals"])
            assert mapped.region_code == group["countryCode"]
    assert rig.calls("GET", "/api/esim/packages") == 1  # 144 packages, pages of 200


# -- orders and profiles ---------------------------------------------------------------------


async def test_an_order_has_one_item_per_esim_and_reads_back_by_id_and_reference(
    rig: Rig,
) -> None:
    client = rig.client()
    package_id, ref = rig.package(), reference()
    before = rig.sandbox.state.balance
    order = await client.create_order([(package_id, 3)], ref)
    assert order.status == "COMPLETED" and order.reference_id == ref
    assert len(order.items) == 3 and len(set(order.esim_ids)) == 3
    assert all(i.package_id == package_id and i.type == "esim" for i in order.items)
    assert order.total == sum((i.price for i in order.items), Decimal(0))
    assert rig.sandbox.state.balance == before - order.total
    assert await client.get_order(order_id=order.id) == order
    assert await client.get_order(reference_id=ref) == order
    assert await client.list_orders(reference_id=ref) == [order]
    newest = await client.list_orders(status="COMPLETED", limit=1)
    assert [o.id for o in newest] == [order.id]
    assert await client.list_orders(status="REFUNDED") == []


async def test_apply_generates_one_profile_by_esim_id_or_all_by_reference(rig: Rig) -> None:
    client = rig.client()
    ref = reference()
    order = await client.create_order([(rig.package(), 2)], ref)
    unapplied = await client.list_esims(reference_id=ref)
    assert len(unapplied) == 2 and not any(e.has_profile for e in unapplied)
    first = await client.apply(esim_id=order.esim_ids[0])
    assert isinstance(first, RoamifyEsim) and first.has_profile and first.status == "READY"
    assert first.lpa is not None and first.activation_code is not None
    assert first.lpa == f"LPA:1${first.credentials.smdp_address}${first.activation_code}"
    both = await client.apply(reference_id=ref)
    assert [e.id for e in both] == list(order.esim_ids)
    assert both[0].iccid == first.iccid  # applying again changes nothing
    assert all(e.has_profile for e in both)
    assert await client.get_esim(iccid=both[1].iccid or "") == both[1]
    assert await client.get_esim(esim_id=both[1].id) == both[1]
    listed = await client.list_esims(reference_id=ref)
    assert {e.id for e in listed} == set(order.esim_ids)
    ready = await client.list_esims(status="READY", limit=1)
    assert len(ready) == 1 and ready[0].status == "READY"


async def test_an_instant_order_carries_its_profiles_and_needs_no_apply(rig: Rig) -> None:
    client = rig.client()
    order = await client.create_instant_order([(rig.package(), 2)], reference())
    assert order.items == () and len(order.esims) == 2
    assert all(e.has_profile and e.credentials.ios_install_url for e in order.esims)
    gateway = rig.gateway()
    placed = await gateway.submit_instant_order(
        PlaceOrder(reference(), (OrderLineRequest(rig.package(), 1),))
    )
    assert placed.esims_included and len(placed.esims) == 1
    assert placed.lines[0].package_id == rig.package()
    assert rig.calls("POST", "/api/esim/apply") == 0


async def test_a_travel_date_package_needs_a_start_date_to_apply() -> None:
    async with open_rig(packages_per_country=None) as big:
        dated = next(
            package_id
            for package_id, (package, _) in big.sandbox.state.catalog.packages.items()
            if package.get("requirements", {}).get("travelDate")
        )
        gateway = big.gateway()
        placed = await gateway.submit_order(PlaceOrder(reference(), (OrderLineRequest(dated, 1),)))
        with pytest.raises(ProviderError) as refused:
            await gateway.fulfil_order(placed)
        assert refused.value.status == 400 and refused.value.error_code == "TRAVEL_DATE_REQUIRED"
        fulfilled = await gateway.fulfil_order(placed, start_date=date(2026, 12, 24))
        assert fulfilled.esims_included and len(fulfilled.esims) == 1
        catalog = {p.package_id: p for p in await gateway.catalog()}
        assert catalog[dated].requires_travel_date


async def test_submit_then_fulfil_groups_lines_and_fills_them_from_one_apply(rig: Rig) -> None:
    gateway = rig.gateway()
    first = rig.package()
    second = rig.package(lambda p: p["packageId"] != first)
    ref = reference()
    placed = await gateway.submit_order(
        PlaceOrder(ref, (OrderLineRequest(first, 2), OrderLineRequest(second, 1)))
    )
    assert placed.state is OrderState.COMPLETED and placed.provider_status == "COMPLETED"
    assert placed.reference == ref and not placed.esims_included
    assert [(line.package_id, line.quantity) for line in placed.lines] == [(first, 2), (second, 1)]
    assert all(len(line.esim_ids) == line.quantity for line in placed.lines)
    assert all(line.unit_price and line.unit_price.currency == "USD" for line in placed.lines)
    fulfilled = await gateway.fulfil_order(placed)
    assert rig.calls("POST", "/api/esim/apply") == 1
    assert fulfilled.esims_included and len(fulfilled.esims) == 3
    for line in fulfilled.lines:
        assert [e.esim_id for e in line.esims] == list(line.esim_ids)
        assert all(e.package_id == line.package_id for e in line.esims)
    for esim in fulfilled.esims:
        assert esim.iccid and esim.lpa and esim.activation_code and esim.pin and esim.puk
        assert esim.ios_install_url and esim.ios_install_url.endswith(esim.lpa)
        assert esim.android_install_url and esim.android_install_url.endswith(esim.lpa)
        assert esim.order_id == placed.order_id and esim.order_reference == ref
    assert await gateway.fulfil_order(fulfilled) is fulfilled
    assert rig.calls("POST", "/api/esim/apply") == 1


async def test_order_esims_is_one_list_call_per_order(rig: Rig) -> None:
    fulfilled = await a_fulfilled_order(rig, quantity=3)
    gateway = rig.gateway()
    rig.sandbox.control.calls.clear()
    read = await gateway.get_order(fulfilled.order_id)
    assert read.state is OrderState.COMPLETED and not read.esims_included
    assert read.lines == tuple(replace(line, esims=()) for line in fulfilled.lines)
    esims = await gateway.order_esims(read)
    assert rig.calls("GET", "/api/esims") == 1 and rig.calls("GET", "/api/esim") == 0
    assert sorted(e.iccid for e in esims) == sorted(e.iccid for e in fulfilled.esims)
    assert all(e.lpa and e.order_id == read.order_id for e in esims)
    assert await gateway.order_esims(fulfilled) == fulfilled.esims  # nothing to fetch
    assert rig.calls() == 2


async def test_order_esims_is_empty_until_the_profiles_exist(rig: Rig) -> None:
    gateway = rig.gateway()
    placed = await gateway.submit_order(
        PlaceOrder(reference(), (OrderLineRequest(rig.package(), 2),))
    )
    assert await gateway.order_esims(placed) == []
    assert rig.calls("GET", "/api/esim") == 0  # the list had them, without profiles


async def test_find_order_and_get_order_and_get_esim(rig: Rig) -> None:
    gateway = rig.gateway()
    fulfilled = await a_fulfilled_order(rig)
    found = await gateway.find_order(fulfilled.reference or "")
    assert found is not None and found.order_id == fulfilled.order_id
    assert await gateway.find_order("no-such-reference") is None
    with pytest.raises(NotFound):
        await gateway.get_order("00000000-0000-0000-0000-000000000000")
    esim = fulfilled.esims[0]
    read = await gateway.get_esim(esim.iccid)
    assert (read.iccid, read.esim_id, read.lpa, read.status) == (
        esim.iccid,
        esim.esim_id,
        esim.lpa,
        "READY",
    )
    assert read.topup_allowed
    with pytest.raises(NotFound):
        await gateway.get_esim("8999999999999999999")


# -- after the sale --------------------------------------------------------------------------


async def test_usage_follows_what_the_traveller_used(rig: Rig) -> None:
    fulfilled = await a_fulfilled_order(rig, quantity=1)
    iccid = fulfilled.esims[0].iccid
    rig.sandbox.state.consume(iccid, 100)
    client = rig.client()
    summary = await client.usage(iccid)
    assert summary.iccid == iccid and summary.data_usages is None
    details = await client.usage_details(iccid)
    assert details.data_usages is not None and details.data_usages[0].usage == Decimal(100)
    usage = await rig.gateway().usage(iccid)
    assert usage.data_used_mb == Decimal(100) and not usage.unlimited
    assert usage.data_allowed_mb is not None and usage.data_remaining_mb is not None
    assert usage.data_allowed_mb - usage.data_remaining_mb == Decimal(100)


async def test_usage_on_a_package_without_usage_check_is_refused_upstream(rig: Rig) -> None:
    gateway = rig.gateway()
    blind = rig.package(lambda p: not p["withUsageCheck"])
    placed = await gateway.submit_order(PlaceOrder(reference(), (OrderLineRequest(blind, 1),)))
    fulfilled = await gateway.fulfil_order(placed)
    with pytest.raises(ProviderError) as refused:
        await gateway.usage(fulfilled.esims[0].iccid)
    assert refused.value.status == 422 and not refused.value.retryable


async def test_a_topup_uses_a_compatible_package_and_is_charged(rig: Rig) -> None:
    fulfilled = await a_fulfilled_order(rig, quantity=1)
    iccid = fulfilled.esims[0].iccid
    gateway = rig.gateway()
    offers = await gateway.topup_packages(iccid)
    assert offers and all(o.topup and o.price.currency == "USD" for o in offers)
    raw = await rig.client().topup_packages(iccid, days=offers[0].days)
    assert raw and all(p.days == offers[0].days for p in raw)
    (before,) = await gateway.balances()
    topup = await gateway.submit_topup(TopupRequest(reference(), iccid, offers[0].package_id))
    assert topup.state is OrderState.COMPLETED
    assert [line.package_id for line in topup.lines] == [offers[0].package_id]
    (after,) = await gateway.balances()
    assert before.balance.amount - after.balance.amount == offers[0].price.amount
    with pytest.raises(ProviderError) as refused:
        await gateway.submit_topup(TopupRequest(reference(), iccid, "not-a-topup-package"))
    assert refused.value.status == 400 and refused.value.error_code == "HTTP_400"


async def test_balance_health_and_cancel(rig: Rig) -> None:
    gateway = rig.gateway()
    (balance,) = await gateway.balances()
    assert balance.kind == "PREPAID" and balance.account_id == "main"
    assert balance.balance.amount == rig.sandbox.state.balance
    assert balance.balance.currency == "USD"
    health = await rig.client().health()
    assert health.healthy
    with pytest.raises(UnsupportedOperation):
        await gateway.cancel_order("any", None)
    rates = await gateway.usd_rates(["USD", "VND", "vnd"])
    assert rates == {"VND": Decimal(25400)}


# -- refusals and faults -----------------------------------------------------------------------


async def test_validation_and_business_refusals_carry_the_providers_words(rig: Rig) -> None:
    client = rig.client()
    with pytest.raises(ProviderError) as unknown:
        await client.create_order([("no-such-package", 1)], reference())
    assert unknown.value.status == 400 and unknown.value.error_code == "HTTP_400"
    assert "no-such-package" in unknown.value.message and not unknown.value.retryable
    with pytest.raises(NotFound) as missing:
        await client.get_order(order_id="nope")
    assert missing.value.message == "Order not found"
    rig.sandbox.state.balance = Decimal("0.10")
    with pytest.raises(ProviderError) as poor:
        await client.create_order([(rig.package(), 1)], reference())
    assert (poor.value.status, poor.value.error_code) == (422, "INSUFFICIENT_BALANCE")


async def test_a_wrong_token_is_a_401_that_does_not_echo_it(rig: Rig) -> None:
    wrong = "wrong-token-4b1d9e"
    with pytest.raises(ProviderError) as refused:
        await rig.client(token=wrong).balance()
    assert refused.value.status == 401 and not refused.value.retryable
    assert wrong not in str(refused.value) and wrong not in repr(refused.value)
    assert TOKEN not in repr(rig.client())


async def test_a_500_is_a_retryable_provider_error_with_the_providers_message(rig: Rig) -> None:
    rig.sandbox.control.faults.arm("POST", ORDER, status=500, body=DOWN)
    with pytest.raises(ProviderError) as failed:
        await rig.gateway().submit_order(
            PlaceOrder(reference(), (OrderLineRequest(rig.package(), 1),))
        )
    assert failed.value.status == 500 and failed.value.retryable
    assert (failed.value.error_code, failed.value.message) == ("HTTP_500", "Unknown error")
    assert rig.sandbox.state.orders == {}  # the fault answered instead of the handler


async def test_a_coded_error_body_keeps_its_code(rig: Rig) -> None:
    rig.sandbox.control.faults.arm(
        "GET",
        "/api/balance",
        status=503,
        body={"message": "Maintenance", "status": "failed", "code": "MAINTENANCE"},
    )
    with pytest.raises(ProviderError) as failed:
        await rig.gateway().balances()
    assert (failed.value.error_code, failed.value.message) == ("MAINTENANCE", "Maintenance")
    assert failed.value.retryable


async def test_an_html_error_page_is_an_http_coded_error(rig: Rig) -> None:
    rig.sandbox.control.faults.arm(
        "GET", "/api/esim/packages", status=502, body="<html><h1>Bad Gateway</h1></html>"
    )
    with pytest.raises(ProviderError) as failed:
        await rig.gateway().catalog()
    assert (failed.value.error_code, failed.value.message) == ("HTTP_502", "Bad Gateway")


async def test_a_429_carries_retry_after(rig: Rig) -> None:
    rig.sandbox.control.faults.arm("GET", "/api/esim/order", status=429, retry_after=3, body=DOWN)
    with pytest.raises(ProviderError) as limited:
        await rig.gateway().find_order("any")
    assert limited.value.status == 429 and limited.value.retryable
    assert limited.value.retry_after == 3.0


async def test_a_hang_past_the_read_timeout_is_provider_unavailable(rig: Rig) -> None:
    rig.sandbox.control.faults.arm("GET", "/api/balance", hang=True)
    gateway = rig.gateway(Timeouts(read=0.05))
    with pytest.raises(ProviderUnavailable) as hung:
        await gateway.balances()
    assert hung.value.sent and "in time" in hung.value.message
    assert await gateway.balances()  # the fault fired once


async def test_apply_waits_for_the_fulfil_timeout_not_the_write_timeout(rig: Rig) -> None:
    gateway = rig.gateway(Timeouts(read=0.05, write=0.05, fulfil=0.3))
    placed = await gateway.submit_order(
        PlaceOrder(reference(), (OrderLineRequest(rig.package(), 1),))
    )
    rig.sandbox.control.faults.arm("POST", "/api/esim/apply", latency=0.1)
    fulfilled = await gateway.fulfil_order(placed)  # slower than write, within fulfil
    assert fulfilled.esims_included
    rig.sandbox.control.faults.arm("POST", "/api/esim/apply", hang=True)
    with pytest.raises(ProviderUnavailable):
        await gateway.fulfil_order(placed)


async def test_a_response_dropped_after_commit_is_unavailable_and_found_by_reference(
    rig: Rig,
) -> None:
    rig.sandbox.control.faults.arm("POST", ORDER, drop_after_commit=True)
    gateway = rig.gateway()
    ref = reference()
    request = PlaceOrder(ref, (OrderLineRequest(rig.package(), 2),))
    with pytest.raises(ProviderUnavailable) as lost:
        await gateway.submit_order(request)
    assert lost.value.sent  # the outcome is unknown: it may exist upstream
    assert len(rig.sandbox.state.orders) == 1  # and it does
    found = await gateway.find_order(ref)
    assert found is not None and found.reference == ref
    assert found.state is OrderState.COMPLETED
    assert [(line.package_id, line.quantity) for line in found.lines] == [
        (request.lines[0].package_id, 2)
    ]
    fulfilled = await gateway.fulfil_order(found)
    assert fulfilled.esims_included and len(fulfilled.esims) == 2
    assert rig.calls("POST", ORDER) == 1  # never bought twice
