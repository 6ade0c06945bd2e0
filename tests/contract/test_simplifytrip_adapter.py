"""The SimplifyTrip client and gateway against the SimplifyTrip simulator, in process.

Every client method and every gateway method is exercised over `SandboxTransport`, with
the simulator's knobs (failure, install, consume, returns) and faults (500, 429, hang,
drop after commit) standing in for the real API's behaviour.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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
from esim_gateway.errors import NotFound, ProviderError, ProviderUnavailable
from esim_gateway.providers._http import Timeouts
from esim_gateway.providers.base import ProviderGateway
from esim_gateway.providers.simplifytrip import SimplifyTripClient, SimplifyTripGateway
from esim_gateway.sandbox.simplifytrip import (
    RECHARGE_ICCIDS,
    SimplifyTripSandbox,
    create_simplifytrip_sandbox,
)
from esim_gateway.sandbox.transport import SandboxTransport

BASE_URL = "http://simplifytrip.sandbox"
API_KEY = "pk_test_sandbox"
SECRET_KEY = "sk_test_sandbox"
CHECKSUM_KEY = "ck_test_sandbox"
ORDERS = "/api/v1/orders"
INITIAL_WALLET = Decimal(500_000_000)


@dataclass
class Rig:
    sandbox: SimplifyTripSandbox
    http: httpx.AsyncClient

    def client(self, **overrides: Any) -> SimplifyTripClient:
        values: dict[str, Any] = {
            "api_key": API_KEY,
            "secret_key": SECRET_KEY,
            "checksum_key": CHECKSUM_KEY,
        }
        values.update(overrides)
        return SimplifyTripClient(self.http, **values)

    def gateway(self, **overrides: Any) -> SimplifyTripGateway:
        return SimplifyTripGateway(self.client(**overrides))

    def posts(self, path: str = ORDERS) -> int:
        return self.sandbox.control.calls.count("POST", path)


@asynccontextmanager
async def open_rig(fulfil_delay: float = 0.0) -> AsyncIterator[Rig]:
    sandbox = create_simplifytrip_sandbox(fulfil_delay=fulfil_delay, products_per_country=2)
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


async def an_esim_sku(rig: Rig, country: str = "JP") -> str:
    page = await rig.client().products(type="eSIM", country_id=country, take=1)
    return page.items[0].variations[0].sku


async def a_completed_order(rig: Rig, quantity: int = 2) -> tuple[str, ProviderOrder]:
    gateway = rig.gateway()
    ref = reference()
    sku = await an_esim_sku(rig)
    placed = await gateway.submit_order(PlaceOrder(ref, (OrderLineRequest(sku, quantity),)))
    await rig.sandbox.settle()
    return ref, await gateway.get_order(placed.order_id)


# -- catalog -----------------------------------------------------------------------------


async def test_the_catalog_is_every_esim_variation_priced_in_vnd(rig: Rig) -> None:
    gateway = rig.gateway()
    assert isinstance(gateway, ProviderGateway)
    packages = await gateway.catalog()
    catalog = rig.sandbox.state.catalog
    esim_skus = {
        v["sku"] for p in catalog.products.values() if p["type"] == "eSIM" for v in p["variations"]
    }
    assert {p.package_id for p in packages} == esim_skus
    assert len(packages) == len(esim_skus)
    assert all(p.provider is ProviderName.SIMPLIFYTRIP for p in packages)
    assert all(p.price.currency == "VND" and p.price.amount > 0 for p in packages)
    assert all(p.country_codes and all(len(c) == 2 for c in p.country_codes) for p in packages)
    assert all(p.product_type == "eSIM" and not p.topup for p in packages)
    kinds = {p.destination for p in packages}
    assert kinds == {DestinationKind.LOCAL, DestinationKind.REGIONAL, DestinationKind.GLOBAL}
    japan = [p for p in packages if p.country_codes == ("JP",)]
    assert japan and all(p.destination is DestinationKind.LOCAL for p in japan)
    assert all(p.days > 0 and (p.unlimited or p.data_mb) for p in packages)
    # 46 eSIM products in pages of 100: one call
    assert rig.sandbox.control.calls.count("GET", "/api/v1/products") == 1


async def test_all_products_pages_through_small_pages(rig: Rig) -> None:
    client = rig.client()
    products = await client.all_products(type="eSIM", page_size=7)
    first = await client.products(type="eSIM", take=7)
    assert len(products) == first.total == len({p.spu for p in products})
    assert rig.sandbox.control.calls.count("GET", "/api/v1/products") == -(-first.total // 7) + 1


async def test_products_filter_and_look_up_by_spu_slug_and_sku(rig: Rig) -> None:
    client = rig.client()
    japan = await client.products(type="eSIM", country_id="JP")
    assert japan.total >= 1 and all("JP" in {c.id for c in p.countries} for p in japan.items)
    recharge = await client.products(type="SIM_RECHARGE")
    # China Unicom and China Telecom recharges (providers.md 2.4: one SIM_RECHARGE per carrier).
    assert len(recharge.items) == 2 and {p.type for p in recharge.items} == {"SIM_RECHARGE"}
    searched = await client.products(query="japan", take=1, skip=0)
    assert searched.take == 1 and len(searched.items) == 1
    regional = await client.products(region_id="SIN-MYS-IDN")
    assert regional.items and regional.items[0].regions[0].id == "SIN-MYS-IDN"
    one = japan.items[0]
    assert (await client.product(one.spu)).spu == one.spu
    assert one.slug is not None and (await client.product(one.slug)).spu == one.spu
    variation = await client.variation(one.variations[0].sku)
    assert variation.spu == one.spu and variation.price == one.variations[0].price
    with pytest.raises(NotFound):
        await client.variation("NO-SUCH-SKU")


async def test_countries_and_regions_page(rig: Rig) -> None:
    client = rig.client()
    countries = await client.countries(take=5, skip=2)
    assert countries.take == 5 and countries.skip == 2 and len(countries.items) == 5
    assert countries.total > 5
    japan = await client.countries(query="Japan")
    assert [c.id for c in japan.items] == ["JP"] and japan.items[0].iso3 == "JPN"
    regions = await client.regions(query="global")
    assert [r.id for r in regions.items] == ["GLOBAL-60"]
    assert (await client.regions(take=100)).total == len(rig.sandbox.state.catalog.regions)


# -- ordering ----------------------------------------------------------------------------


async def test_an_order_is_processing_until_fulfilled_then_completed_with_esims() -> None:
    async with open_rig(fulfil_delay=60.0) as rig:
        gateway = rig.gateway()
        ref = reference()
        sku = await an_esim_sku(rig)
        placed = await gateway.submit_order(PlaceOrder(ref, (OrderLineRequest(sku, 2),)))
        assert placed.state is OrderState.PROCESSING and placed.provider_status == "PROCESSING"
        assert placed.reference == ref and placed.lines[0].sub_reference == f"{ref}-0"
        assert not placed.esims_included

        pending = await gateway.fulfil_order(placed)
        assert pending.state is OrderState.PROCESSING and not pending.esims_included
        assert await gateway.order_esims(pending) == ()

        await rig.sandbox.settle()
        done = await gateway.fulfil_order(pending)
        assert done.state is OrderState.COMPLETED and done.provider_status == "SUCCESS"
        assert done.esims_included and len(done.esims) == 2
        assert done.total is not None and done.total.currency == "VND"
        line = done.lines[0]
        assert line.unit_price is not None
        assert done.total.amount == line.unit_price.amount * 2
        for esim in done.esims:
            assert esim.lpa is not None and esim.lpa.startswith("LPA:1$")
            assert esim.lpa == f"LPA:1${esim.smdp_address}${esim.activation_code}"
            assert esim.ios_install_url == (
                f"https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={esim.lpa}"
            )
            assert esim.android_install_url is not None
            assert esim.android_install_url.endswith(esim.lpa)
            assert esim.qr_code_url and esim.pin and esim.puk and esim.apn == "plus.4g"
            assert esim.order_reference == ref and esim.package_id == sku
        calls = rig.sandbox.control.calls.count()
        assert await gateway.order_esims(done) == done.esims
        assert rig.sandbox.control.calls.count() == calls
        assert await gateway.order_esims(placed) == done.esims  # re-read once
        assert rig.posts() == 1


async def test_find_order_and_get_order_read_by_reference_and_id(rig: Rig) -> None:
    ref, order = await a_completed_order(rig)
    gateway = rig.gateway()
    found = await gateway.find_order(ref)
    assert found is not None and found.order_id == order.order_id
    assert found.state is OrderState.COMPLETED
    assert (await gateway.get_order(ref)).order_id == order.order_id
    assert await gateway.find_order("eg-never-sent") is None
    with pytest.raises(NotFound) as caught:
        await gateway.get_order("000000000000000")
    assert caught.value.error_code == "NOT_FOUND"


async def test_a_failed_fulfilment_is_failed_with_the_reason(rig: Rig) -> None:
    rig.sandbox.state.fail_next_order("Supplier is out of stock")
    gateway = rig.gateway()
    placed = await gateway.submit_order(
        PlaceOrder(reference(), (OrderLineRequest(await an_esim_sku(rig), 1),))
    )
    await rig.sandbox.settle()
    failed = await gateway.get_order(placed.order_id)
    assert failed.state is OrderState.FAILED and failed.provider_status == "ERROR"
    assert failed.failure_reason == "Supplier is out of stock"
    assert failed.esims == ()
    balances = await gateway.balances()
    assert balances[0].balance.amount == INITIAL_WALLET  # a failed order is not charged


async def test_a_duplicate_track_id_is_rejected_with_400(rig: Rig) -> None:
    gateway = rig.gateway()
    request = PlaceOrder(reference(), (OrderLineRequest(await an_esim_sku(rig), 1),))
    await gateway.submit_order(request)
    with pytest.raises(ProviderError) as caught:
        await gateway.submit_order(request)
    assert caught.value.status == 400 and caught.value.error_code == "BAD_REQUEST"
    assert "already exists" in caught.value.message and not caught.value.retryable


async def test_an_unknown_sku_is_not_found(rig: Rig) -> None:
    with pytest.raises(NotFound):
        await rig.gateway().submit_order(PlaceOrder(reference(), (OrderLineRequest("NOPE", 1),)))


async def test_the_older_200_create_answer_is_accepted(rig: Rig) -> None:
    rig.sandbox.state.legacy_create_status = True
    placed = await rig.gateway().submit_order(
        PlaceOrder(reference(), (OrderLineRequest(await an_esim_sku(rig), 1),))
    )
    assert placed.state is OrderState.PROCESSING and placed.provider_status == "PROCESSING"
    assert placed.lines[0].provider_status == "PROCESSING"


async def test_the_wallet_pays_for_orders(rig: Rig) -> None:
    _, order = await a_completed_order(rig, quantity=3)
    (account,) = await rig.client().accounts()
    assert account.type == "TOP_UP" and account.currency == "VND" and account.is_default
    (balance,) = await rig.gateway().balances()
    assert balance.kind == "TOP_UP" and balance.account_id == account.id
    assert order.total is not None
    assert balance.balance.amount == INITIAL_WALLET - order.total.amount


# -- faults ------------------------------------------------------------------------------


async def test_a_500_is_a_retryable_provider_error_with_the_providers_code(rig: Rig) -> None:
    rig.sandbox.control.faults.arm(
        "POST",
        ORDERS,
        status=500,
        body={
            "timestamp": 1,
            "statusCode": 500,
            "errorCode": "INTERNAL_SERVER_ERROR",
            "message": "Supplier gateway is down",
        },
    )
    with pytest.raises(ProviderError) as caught:
        await rig.gateway().submit_order(
            PlaceOrder(reference(), (OrderLineRequest(await an_esim_sku(rig), 1),))
        )
    assert caught.value.status == 500 and caught.value.retryable
    assert caught.value.error_code == "INTERNAL_SERVER_ERROR"
    assert caught.value.message == "Supplier gateway is down"
    assert rig.sandbox.state.orders == {}


async def test_a_429_carries_retry_after(rig: Rig) -> None:
    rig.sandbox.control.faults.arm(
        "GET",
        "/api/v1/products",
        status=429,
        retry_after=2,
        body={"statusCode": 429, "errorCode": "TOO_MANY_REQUESTS", "message": "Slow down"},
    )
    with pytest.raises(ProviderError) as caught:
        await rig.gateway().catalog()
    assert caught.value.status == 429 and caught.value.retryable
    assert caught.value.retry_after == 2.0 and caught.value.error_code == "TOO_MANY_REQUESTS"


async def test_a_hang_beyond_the_read_timeout_is_provider_unavailable(rig: Rig) -> None:
    _, order = await a_completed_order(rig)
    rig.sandbox.control.faults.arm("GET", "/api/v1/orders/{id}", hang=True)
    gateway = rig.gateway(timeouts=Timeouts(read=0.05, connect=0.05))
    with pytest.raises(ProviderUnavailable) as caught:
        await gateway.get_order(order.order_id)
    assert caught.value.sent
    assert (await gateway.get_order(order.order_id)).state is OrderState.COMPLETED


async def test_a_dropped_create_is_unavailable_and_find_order_finds_it(rig: Rig) -> None:
    rig.sandbox.control.faults.arm("POST", ORDERS, drop_after_commit=True)
    gateway = rig.gateway()
    ref = reference()
    with pytest.raises(ProviderUnavailable) as caught:
        await gateway.submit_order(PlaceOrder(ref, (OrderLineRequest(await an_esim_sku(rig), 1),)))
    assert caught.value.sent
    found = await gateway.find_order(ref)
    assert found is not None and found.reference == ref
    assert found.state in (OrderState.PROCESSING, OrderState.COMPLETED)
    assert rig.posts() == 1


async def test_a_wrong_checksum_key_is_refused_with_the_signature_error(rig: Rig) -> None:
    gateway = rig.gateway(checksum_key="ck_test_wrong")
    with pytest.raises(ProviderError) as caught:
        await gateway.submit_order(
            PlaceOrder(reference(), (OrderLineRequest(await an_esim_sku(rig), 1),))
        )
    assert caught.value.status == 400 and caught.value.error_code == "BAD_REQUEST"
    assert caught.value.message == "Invalid signature"
    assert "ck_test" not in str(caught.value) and rig.sandbox.state.orders == {}


async def test_wrong_api_keys_are_unauthorized(rig: Rig) -> None:
    for overrides in ({"api_key": "pk_test_wrong"}, {"secret_key": "sk_test_wrong"}):
        with pytest.raises(ProviderError) as caught:
            await rig.gateway(**overrides).balances()
        assert caught.value.status == 401 and caught.value.error_code == "UNAUTHORIZED"
        assert "_test_" not in str(caught.value) and "_test_" not in repr(caught.value)


# -- eSIMs, usage ------------------------------------------------------------------------


async def test_get_esim_and_usage_follow_installation_and_consumption(rig: Rig) -> None:
    ref, order = await a_completed_order(rig, quantity=1)
    (esim,) = order.esims
    gateway = rig.gateway()
    profile = await gateway.get_esim(esim.iccid)
    assert profile.iccid == esim.iccid and profile.lpa == esim.lpa
    assert profile.order_id == order.order_id and profile.order_reference == ref
    assert profile.status == "NOT_DOWNLOADED" and profile.expires_at is None

    unused = await gateway.usage(esim.iccid)
    assert unused.status == "UNUSED" and unused.data_used_mb == Decimal(0)

    rig.sandbox.state.install(esim.iccid)
    rig.sandbox.state.consume(esim.iccid, 100)
    usage = await gateway.usage(esim.iccid)
    assert usage.status == "IN_USE" and usage.data_used_mb == Decimal("100.00")
    assert usage.plan_start is not None and usage.plan_end is not None
    assert usage.plan_end > usage.plan_start
    if not usage.unlimited and usage.data_allowed_mb is not None:
        assert usage.data_remaining_mb == usage.data_allowed_mb - Decimal(100)
    installed = await gateway.get_esim(esim.iccid)
    assert installed.status == "ENABLED" and installed.expires_at == usage.plan_end

    status = await rig.client().esim_status(esim.iccid)
    assert status.order_info is not None and status.order_info.track_id == ref
    assert status.product_info is not None and status.product_info.sku == esim.package_id
    assert [log.status for log in status.activity_logs][-1] == "ENABLED"
    assert status.usage_info_list[0].usage_mb == Decimal("100.00")


async def test_a_non_ascii_signature_is_refused_as_invalid(rig: Rig) -> None:
    response = await rig.http.post(
        "/api/v1/orders/cancel",
        content=b'{"orderId":"1"}',
        headers={
            b"x-api-key": API_KEY.encode(),
            b"authorization": f"Bearer {SECRET_KEY}".encode(),
            b"content-type": b"application/json",
            b"x-signature": b"\xe9" * 64,
        },
    )
    assert response.status_code == 400


async def test_an_unknown_iccid_is_not_found(rig: Rig) -> None:
    gateway = rig.gateway()
    with pytest.raises(NotFound):
        await gateway.get_esim("89000000000000000000")
    with pytest.raises(NotFound):
        await gateway.usage("89000000000000000000")


# -- recharge (top-up) -------------------------------------------------------------------


async def test_a_sim_card_is_recharged_synchronously(rig: Rig) -> None:
    iccid = RECHARGE_ICCIDS[0]
    gateway = rig.gateway()
    packages = await gateway.topup_packages(iccid)
    assert packages and all(p.topup and p.product_type == "SIM_RECHARGE" for p in packages)
    ref = reference()
    order = await gateway.submit_topup(TopupRequest(ref, iccid, packages[0].package_id))
    assert order.state is OrderState.COMPLETED and order.provider_status == "SUCCESS"
    assert order.reference == ref and order.lines[0].sub_reference == f"{ref}-0"
    status = await rig.client().sim_status(iccid)
    assert status.product_info is not None and status.product_info.type == "SIM_RECHARGE"
    assert status.order_info is not None and status.order_info.order_id == order.order_id
    rig.sandbox.state.consume(iccid, 50)
    usage = await gateway.usage(iccid)  # no eSIM has this ICCID: the SIM status answers
    assert usage.data_used_mb == Decimal("50.00")
    details = await gateway.get_order(order.order_id)
    assert details.lines[0].esim_ids == (iccid,)


async def test_a_recharge_of_an_unknown_sim_is_not_found(rig: Rig) -> None:
    with pytest.raises(NotFound):
        await rig.client().recharge(reference(), "s-0", "RCNX05GB07DFX", ["89860000000000000000"])


# -- cancel ------------------------------------------------------------------------------


async def test_a_new_physical_sim_order_can_be_cancelled(rig: Rig) -> None:
    client = rig.client()
    ref = reference()
    created = await client.create_order(ref, [(f"{ref}-0", "SVNX05GB07DFX", 1)])
    assert created.status == "NEW"
    gateway = rig.gateway()
    assert (await gateway.get_order(created.order_id)).state is OrderState.PENDING
    cancelled = await gateway.cancel_order(ref, "Customer changed their mind")
    assert cancelled.state is OrderState.CANCELLED and cancelled.provider_status == "CANCELED"
    assert (
        cancelled.order_id == created.order_id and cancelled.lines[0].state is OrderState.CANCELLED
    )
    assert (await gateway.get_order(created.order_id)).state is OrderState.CANCELLED
    assert (await gateway.balances())[0].balance.amount == INITIAL_WALLET


async def test_an_esim_order_cannot_be_cancelled(rig: Rig) -> None:
    _, order = await a_completed_order(rig)
    with pytest.raises(NotFound):
        await rig.gateway().cancel_order(order.order_id, None)


# -- return requests -----------------------------------------------------------------------


async def test_a_return_request_is_created_read_cancelled_and_completed(rig: Rig) -> None:
    ref, order = await a_completed_order(rig, quantity=2)
    gateway = rig.gateway()
    line = order.lines[0]
    first, second = (e.iccid for e in order.esims)
    requested = await gateway.create_return("ret-1", ref, [(line.line_id, [first], None)], "Unused")
    assert requested.status == "REQUESTED" and requested.order_id == order.order_id
    assert requested.refund_fee == Decimal(15000)
    assert line.unit_price is not None
    assert requested.refund_amount == line.unit_price.amount - Decimal(15000)
    assert requested.items[0].iccids == (first,) and requested.return_type == "PARTIAL"
    assert (await gateway.get_return("ret-1")).id == requested.id
    assert (await gateway.get_return(requested.id)).return_track_id == "ret-1"

    with pytest.raises(ProviderError) as caught:
        await gateway.create_return("ret-2", ref, [(line.line_id, [second], None)])
    assert caught.value.status == 400  # one active request per order

    cancelled = await gateway.cancel_return(requested.id)
    assert cancelled.status == "CANCELED" and cancelled.canceled_at is not None

    again = await gateway.create_return(
        "ret-3", order.order_id, [(f"{ref}-0", [first, second], None)]
    )
    rig.sandbox.state.advance_return(again.id, "COMPLETED")
    completed = await gateway.get_return("ret-3")
    assert completed.status == "COMPLETED" and completed.return_type == "FULL"
    details = await rig.client().get_order(order.order_id)
    assert details.return_status == "FULL" and details.refund_amount == completed.refund_amount
    assert [r.return_track_id for r in details.returns] == ["ret-3", "ret-1"]
    assert (await gateway.get_order(order.order_id)).state is OrderState.COMPLETED


async def test_a_return_for_an_unfinished_order_is_not_found() -> None:
    async with open_rig(fulfil_delay=60.0) as rig:
        ref = reference()
        placed = await rig.gateway().submit_order(
            PlaceOrder(ref, (OrderLineRequest(await an_esim_sku(rig), 1),))
        )
        with pytest.raises(NotFound):
            await rig.gateway().create_return(
                "ret-x", ref, [(placed.lines[0].line_id, ["1"], None)]
            )
        with pytest.raises(NotFound):
            await rig.gateway().get_return("ret-x")
