# ruff: noqa: E501  (the seed page's samples are kept verbatim, one line each)
"""Roamify wire models, client and gateway mapping, over `httpx.MockTransport`.

The seed samples are those of Roamify's Orders documentation page, verbatim; the
catalog, eSIM, usage and error shapes follow its API documentation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
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
from esim_gateway.providers._http import Timeouts, send_json
from esim_gateway.providers.base import ProviderGateway
from esim_gateway.providers.roamify import (
    ROAMIFY_CAPABILITIES,
    RoamifyClient,
    RoamifyGateway,
    parse_roamify_error,
)
from esim_gateway.providers.roamify.gateway import STATES, install_links, is_daily, order_state
from esim_gateway.providers.roamify.models import (
    UNLIMITED_DATA,
    RoamifyBalance,
    RoamifyCountry,
    RoamifyEsim,
    RoamifyHealth,
    RoamifyOrder,
    RoamifyPackage,
    RoamifyPackagePage,
    RoamifyTopupPackage,
    RoamifyUsage,
    WireFormatError,
    data_in_mb,
    unix_time,
)

# -- the seed page's samples, verbatim -------------------------------------------------

SEED_CREATE_TEXT = """{ "status": "success", "data": { "id": "67bbabb7-e893-410a-b0a8-4fa62d347b6c", "referenceId": "ref-123456", "orderType": "api", "status": "COMPLETED", "total": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539, "items": [ { "esimId": "b06036c5-eadc-4f88-aa31-8c207fec91ec", "packageId": "esim-cambodia-7days-1gb-all", "package": "1 GB - 7 Days", "type": "esim", "price": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539 } ] } }"""
SEED_TOPUP_TEXT = """{ "status": "success", "data": { "id": "0501aef3-7cf1-4b4c-a293-c03a6bd7a8ab", "referenceId": "ref-123456", "orderType": "api", "status": "COMPLETED", "total": 5, "currency": "USD", "createdAt": 1731838277, "updatedAt": 1731838280, "items": [ { "esimId": "22dcdb84-968b-415c-bb70-79e2f3ffc296", "packageId": "esim-cambodia-7days-1gb-all", "package": "1 GB - 7 Days", "type": "esim", "price": 5, "currency": "USD", "createdAt": 1731838277, "updatedAt": 1731838280 } ] } }"""
SEED_INSTANT_TEXT = """{ "status": "success", "data": { "id": "67bbabb7-e893-410a-b0a8-4fa62d347b6c", "referenceId": "ref-123456", "orderType": "api", "status": "COMPLETED", "total": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539, "esims": [ { "id": "b06036c5-eadc-4f88-aa31-8c207fec91ec", "iccid": "894000000000029365", "status": "READY", "activation": "first-use", "withTopUp": true, "withHotspot": true, "withDataRoaming": true, "withDestinationInstall": false, "withUsageCheck": true, "esim": { "lpaCode": "LPA:1$lpa.roamify.com$TEST", "smdpAddress": "lpa.roamify.com", "activationCode": "TEST", "qrCodeUrl": "https://imagedelivery.net/uUE6LNs_ci8SFBH4_n66dQ/partners/b06036c5-eadc-4f88-aa31-8c207fec91ec/iccid/public", "pin": "", "puk": "", "number": "", "iosQuickInstall": "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA:1$lpa.roamify.com$TEST", "androidQuickInstall": "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=LPA:1$lpa.roamify.com$TEST" }, "apn": { "apnAutomatic": true, "apnName": "", "apnUsername": "", "apnPassword": "" }, "data": { "isUnlimited": false }, "call": { "withCall": false, "callType": "all" }, "sms": { "withSMS": false, "smsType": "all" }, "notes": [], "createdAt": 1731837539, "updatedAt": 1731837987, "expiredAt": 1763373985 } ] } }"""
SEED_GET_TEXT = """{ "status": "success", "data": { "id": "67bbabb7-e893-410a-b0a8-4fa62d347b6c", "referenceId": "ref-123456", "orderType": "api", "status": "COMPLETED", "total": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539, "items": [ { "esimId": "b06036c5-eadc-4f88-aa31-8c207fec91ec", "packageId": "esim-cambodia-7days-1gb-all", "package": "1 GB - 7 Days", "type": "esim", "price": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539 } ] } }"""
SEED_LIST_TEXT = """{ "status": "success", "data": { "orders": [ { "id": "67bbabb7-e893-410a-b0a8-4fa62d347b6c", "referenceId": "ref-123456", "orderType": "api", "status": "COMPLETED", "total": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539, "items": [ { "esimId": "b06036c5-eadc-4f88-aa31-8c207fec91ec", "packageId": "esim-cambodia-7days-1gb-all", "package": "1 GB - 7 Days", "type": "esim", "price": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539 } ] } ] } }"""

SEED_CREATE = json.loads(SEED_CREATE_TEXT)
SEED_TOPUP = json.loads(SEED_TOPUP_TEXT)
SEED_INSTANT = json.loads(SEED_INSTANT_TEXT)
SEED_GET = json.loads(SEED_GET_TEXT)
SEED_LIST = json.loads(SEED_LIST_TEXT)

TOKEN = "unit-test-token-9f8e7d6c5b4a"
ACTIVATION = "A1B2C3D4E5F60718293A4B5C"
SMDP = "lpa.roamify.com"
LPA = f"LPA:1${SMDP}${ACTIVATION}"
SECRETS = (TOKEN, ACTIVATION, LPA)
BASE_URL = "https://api.getroamify.com"


def secrets_in(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


# -- catalog shapes (providers.md 1.4) ------------------------------------------------

PACKAGE: dict[str, Any] = {
    "packageId": "esim-cambodia-7days-1gb-all",
    "package": "1 GB - 7 Days",
    "plan": "data-only",
    "activation": "first-use",
    "day": 7,
    "price": 4.99,
    "isUnlimited": False,
    "isAPNAutomatic": True,
    "apn": "",
    "dataAmount": 1024,
    "dataUnit": "MB",
    "callType": "all",
    "callAmount": -1,
    "callUnit": "minutes",
    "smsType": "all",
    "smsAmount": -1,
    "smsUnit": "sms",
    "withSMS": False,
    "withCall": False,
    "withHotspot": True,
    "withDataRoaming": True,
    "withDestinationInstall": False,
    "withUsageCheck": True,
    "withThrottle": False,
    "throttle": {
        "throttleSpeed": None,
        "throttleSpeedUnit": None,
        "throttleThreshold": None,
        "throttleThresholdUnit": None,
    },
    "notes": [],
}
UNLIMITED_PACKAGE: dict[str, Any] = {
    **PACKAGE,
    "packageId": "esim-cambodia-7days-unlimited-all",
    "package": "Unlimited - 7 Days",
    "price": 19.9,
    "isUnlimited": True,
    "dataAmount": UNLIMITED_DATA,
    "withThrottle": True,
    "withTopUp": True,
    "throttle": {
        "throttleSpeed": 512,
        "throttleSpeedUnit": "Kbps",
        "throttleThreshold": 2,
        "throttleThresholdUnit": "GB",
    },
    "notes": ["Speed reduced to 512 Kbps after 2 GB per day."],
}
GB_PACKAGE: dict[str, Any] = {
    **PACKAGE,
    "packageId": "esim-cambodia-30days-5gb-all",
    "package": "5 GB - 30 Days",
    "day": 30,
    "price": 12.5,
    "dataAmount": 5,
    "dataUnit": "GB",
    "withCall": True,
    "callAmount": 30,
    "withSMS": True,
    "smsAmount": 20,
    "withUsageCheck": False,
    "requirements": {"travelDate": True},
}
CAMBODIA: dict[str, Any] = {
    "id": "cambodia-esims",
    "countryName": "Cambodia",
    "countryCode": "KH",
    "countrySlug": "cambodia",
    "region": "Asia",
    "geography": "local",
    "minPrice": 4.99,
    "maxPrice": 19.9,
    "image": "https://static.example/flags/kh.png",
    "signals": [{"code": "KH", "name": "Cambodia", "networks": ["4G"], "carriers": ["Smart"]}],
    "packages": [PACKAGE, UNLIMITED_PACKAGE, GB_PACKAGE],
}
DAILY_PACKAGE: dict[str, Any] = {
    **PACKAGE,
    "packageId": "esim-europe-10days-1gb-day",
    "package": "1 GB/Day - 10 Days",
    "day": 10,
    "price": 15,
}
EUROPE: dict[str, Any] = {
    "id": "europe-esims",
    "countryName": "Europe",
    "countryCode": "EU",
    "countrySlug": "europe",
    "region": "Europe",
    "geography": "regional",
    "signals": [
        {"code": "FR", "name": "France", "networks": ["5G"], "carriers": ["Orange"]},
        {"code": "de", "name": "Germany", "networks": ["4G"], "carriers": ["Vodafone"]},
        {"code": "FR", "name": "France", "networks": ["4G"], "carriers": ["SFR"]},
    ],
    "packages": [DAILY_PACKAGE],
}


def flat(package: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    """The paginated shape: a package carrying its group's country fields."""
    keys = ("countryCode", "countryName", "geography", "region", "signals")
    return {**package, **{k: group[k] for k in keys}}


TOPUP_PACKAGE: dict[str, Any] = {
    "packageId": "esim-cambodia-7days-3gb-all",
    "package": "3 GB - 7 Days",
    "plan": "data-only",
    "activation": "first-use",
    "day": 7,
    "price": 8.25,
    "withHotspot": True,
    "withDataRoaming": True,
    "withDestinationInstall": False,
    "withUsageCheck": True,
    "apn": {"apnAutomatic": False, "apnName": "cellcard", "apnUsername": "", "apnPassword": ""},
    "data": {"isUnlimited": False, "dataAmount": 3, "dataUnit": "GB"},
    "call": {"withCall": False, "callType": "all", "callAmount": -1, "callUnit": "minutes"},
    "sms": {"withSMS": True, "smsType": "all", "smsAmount": 10, "smsUnit": "sms"},
    "notes": ["Top-up adds to the current plan."],
}

# -- eSIMs, orders, usage ---------------------------------------------------------------

ESIM_A = "b06036c5-eadc-4f88-aa31-8c207fec91ec"
ESIM_B = "22dcdb84-968b-415c-bb70-79e2f3ffc296"
ESIM_C = "7f0c1c58-0b7e-4a39-9d51-3c1a3e0e6a11"


def esim_json(
    esim_id: str,
    iccid: str = "894000000000029365",
    *,
    applied: bool = True,
    links: bool = True,
) -> dict[str, Any]:
    """An eSIM object as /apply answers it (providers.md 1.5); empty strings until applied."""
    lpa = LPA if applied else ""
    return {
        "id": esim_id,
        "iccid": iccid if applied else "",
        "status": "READY" if applied else "NEW",
        "activation": "first-use",
        "withTopUp": True,
        "withHotspot": True,
        "withDataRoaming": True,
        "withDestinationInstall": False,
        "withUsageCheck": True,
        "esim": {
            "lpaCode": lpa,
            "smdpAddress": SMDP if applied else "",
            "activationCode": ACTIVATION if applied else "",
            "qrCodeUrl": f"https://qr.example/{esim_id}" if applied else "",
            "pin": "1234" if applied else "",
            "puk": "12345678" if applied else "",
            "number": "",
            "iosQuickInstall": (
                f"https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={lpa}"
                if applied and links
                else ""
            ),
            "androidQuickInstall": (
                f"https://esimsetup.android.com/esim_qrcode_provisioning?carddata={lpa}"
                if applied and links
                else ""
            ),
        },
        "apn": {"apnAutomatic": True, "apnName": "", "apnUsername": "", "apnPassword": ""},
        "data": {"isUnlimited": False},
        "call": {"withCall": False, "callType": "all"},
        "sms": {"withSMS": False, "smsType": "all"},
        "notes": [],
        "createdAt": 1731837539,
        "updatedAt": 1731837987,
        "expiredAt": 1763373985,
    }


def order_json(
    items: list[tuple[str, str]], reference: str | None = "ref-1", status: str = "COMPLETED"
) -> dict[str, Any]:
    """An order with one item per (esimId, packageId)."""
    prices = {PACKAGE["packageId"]: 4.99, GB_PACKAGE["packageId"]: 12.5}
    return {
        "id": "67bbabb7-e893-410a-b0a8-4fa62d347b6c",
        "referenceId": reference,
        "orderType": "api",
        "status": status,
        "total": round(sum(prices[p] for _, p in items), 2),
        "currency": "USD",
        "createdAt": 1731837535,
        "updatedAt": 1731837539,
        "items": [
            {
                "esimId": esim_id,
                "packageId": package_id,
                "package": "1 GB - 7 Days" if package_id == PACKAGE["packageId"] else "5 GB",
                "type": "esim",
                "price": prices[package_id],
                "currency": "USD",
                "createdAt": 1731837535,
                "updatedAt": 1731837539,
            }
            for esim_id, package_id in items
        ],
    }


THREE_ESIMS = [
    (ESIM_A, PACKAGE["packageId"]),
    (ESIM_B, GB_PACKAGE["packageId"]),
    (ESIM_C, PACKAGE["packageId"]),
]
USAGE: dict[str, Any] = {
    "id": ESIM_A,
    "iccid": "894000000000029365",
    "status": "INSTALLED",
    "startedAt": 1731837539,
    "expiredAt": 1763373985,
    "allowedData": 1024,
    "remainingData": 924,
    "allowedSms": -1,
    "remainingSms": -1,
    "allowedVoice": 30,
    "remainingVoice": 12.5,
}
USAGE_DETAILS: dict[str, Any] = {
    **USAGE,
    "dataUsages": [
        {"date": "20250102", "usage": 60, "location": "KH"},
        {"date": "2025-01-03", "usage": 40.5, "location": None},
    ],
}


def ok(data: Any) -> dict[str, Any]:
    return {"status": "success", "data": data}


# -- a scripted upstream -------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


class Upstream:
    """Answers by (method, path); records every request; 404 for anything unknown."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, data: Any, status: int = 200) -> None:
        body = ok(data) if status < 400 else data
        self.routes[(method, path)] = lambda _: httpx.Response(status, json=body)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx.Response(404, json={"message": "Not found", "status": "failed"})
        return route(request)

    def client(self, timeouts: Timeouts | None = None) -> RoamifyClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.handler), base_url=BASE_URL)
        return RoamifyClient(http, token=TOKEN, timeouts=timeouts or Timeouts())

    def gateway(self) -> RoamifyGateway:
        return RoamifyGateway(self.client())

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


# -- the seed samples --------------------------------------------------------------------


def test_the_seed_create_order_answer_parses() -> None:
    order = RoamifyOrder.from_json(SEED_CREATE["data"])
    assert order.id == "67bbabb7-e893-410a-b0a8-4fa62d347b6c"
    assert order.reference_id == "ref-123456" and order.order_type == "api"
    assert order.status == "COMPLETED" and order.currency == "USD"
    assert order.total == Decimal(5) and isinstance(order.total, Decimal)
    assert order.created_at == datetime(2024, 11, 17, 9, 58, 55, tzinfo=UTC)
    assert order.updated_at == datetime.fromtimestamp(1731837539, UTC)
    assert order.esims == ()
    (item,) = order.items
    assert item.esim_id == "b06036c5-eadc-4f88-aa31-8c207fec91ec"
    assert item.package_id == "esim-cambodia-7days-1gb-all" and item.name == "1 GB - 7 Days"
    assert item.type == "esim" and item.price == Decimal(5) and item.currency == "USD"
    assert order.esim_ids == ("b06036c5-eadc-4f88-aa31-8c207fec91ec",)


def test_the_seed_topup_order_answer_parses() -> None:
    order = RoamifyOrder.from_json(SEED_TOPUP["data"])
    assert order.id == "0501aef3-7cf1-4b4c-a293-c03a6bd7a8ab" and order.status == "COMPLETED"
    assert order.items[0].esim_id == "22dcdb84-968b-415c-bb70-79e2f3ffc296"
    assert order.created_at is not None and order.created_at.tzinfo is UTC


def test_the_seed_instant_order_carries_full_esims_with_empty_credentials_as_none() -> None:
    order = RoamifyOrder.from_json(SEED_INSTANT["data"])
    assert order.items == ()
    (esim,) = order.esims
    assert esim.id == "b06036c5-eadc-4f88-aa31-8c207fec91ec"
    assert esim.iccid == "894000000000029365" and esim.status == "READY"
    assert esim.activation == "first-use"
    assert esim.with_topup and esim.with_hotspot and esim.with_data_roaming
    assert not esim.with_destination_install and esim.with_usage_check
    creds = esim.credentials
    assert esim.lpa == creds.lpa == "LPA:1$lpa.roamify.com$TEST"
    assert creds.smdp_address == "lpa.roamify.com" and creds.activation_code == "TEST"
    assert creds.qr_code_url is not None and creds.qr_code_url.startswith("https://imagedelivery")
    assert creds.pin is None and creds.puk is None and creds.number is None  # "" -> None
    assert creds.ios_install_url == (
        "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA:1$lpa.roamify.com$TEST"
    )
    assert creds.android_install_url is not None
    assert esim.apn.automatic is True and esim.apn.name is None and esim.apn.password is None
    assert not esim.unlimited and not esim.call.included and esim.call.type == "all"
    assert not esim.sms.included and esim.notes == ()
    assert esim.expired_at == datetime.fromtimestamp(1763373985, UTC)
    assert esim.has_profile
    assert "TEST" not in repr(esim) and "LPA" not in repr(esim.credentials)


def test_the_seed_get_and_list_answers_parse_to_the_same_order() -> None:
    single = RoamifyOrder.from_json(SEED_GET["data"])
    (listed,) = [RoamifyOrder.from_json(o) for o in SEED_LIST["data"]["orders"]]
    assert single == listed == RoamifyOrder.from_json(SEED_CREATE["data"])


async def test_the_client_reads_every_seed_answer_through_its_envelope(upstream: Upstream) -> None:
    upstream.routes[("POST", "/api/esim/order")] = lambda _: httpx.Response(200, json=SEED_CREATE)
    upstream.routes[("POST", "/api/esim/order/topup")] = lambda _: httpx.Response(
        200, json=SEED_TOPUP
    )
    upstream.routes[("POST", "/api/esim/order/instant")] = lambda _: httpx.Response(
        200, json=SEED_INSTANT
    )
    upstream.routes[("GET", "/api/esim/order")] = lambda _: httpx.Response(200, json=SEED_GET)
    upstream.routes[("GET", "/api/esim/orders")] = lambda _: httpx.Response(200, json=SEED_LIST)
    client = upstream.client()
    created = await client.create_order([("esim-cambodia-7days-1gb-all", 1)], "ref-123456")
    topup = await client.create_topup_order("894000000000029365", "esim-cambodia-7days-1gb-all")
    instant = await client.create_instant_order([("esim-cambodia-7days-1gb-all", 1)])
    got = await client.get_order(order_id=created.id)
    listed = await client.list_orders(status="PENDING", limit=10)
    assert created.items[0].esim_id and topup.items[0].esim_id != created.items[0].esim_id
    assert instant.esims[0].iccid == "894000000000029365"
    assert got == created and listed == [created]
    assert body_of(upstream.requests[0]) == {
        "items": [{"packageId": "esim-cambodia-7days-1gb-all", "quantity": 1}],
        "referenceId": "ref-123456",
    }
    assert body_of(upstream.requests[1]) == {
        "iccid": "894000000000029365",
        "packageId": "esim-cambodia-7days-1gb-all",
    }
    assert dict(upstream.requests[4].url.params) == {"status": "PENDING", "limit": "10"}


# -- tolerant parsing ----------------------------------------------------------------------


def test_the_grouped_catalog_is_flattened_with_the_groups_country_fields() -> None:
    packages = RoamifyPackage.many_from_json([CAMBODIA, EUROPE])
    assert [p.package_id for p in packages] == [
        PACKAGE["packageId"],
        UNLIMITED_PACKAGE["packageId"],
        GB_PACKAGE["packageId"],
        DAILY_PACKAGE["packageId"],
    ]
    basic, unlimited, big, daily = packages
    assert (basic.country_code, basic.country_name, basic.geography, basic.region) == (
        "KH",
        "Cambodia",
        "local",
        "Asia",
    )
    assert basic.group_id == "cambodia-esims" and basic.covered_codes == ("KH",)
    assert basic.price == Decimal("4.99") and basic.days == 7 and basic.data_mb == 1024
    assert basic.call.amount is None and basic.sms.amount is None  # -1
    assert basic.apn is None and basic.apn_automatic is True and basic.throttle is None
    assert not basic.with_topup and not basic.requires_travel_date
    assert unlimited.unlimited and unlimited.data_mb is None and unlimited.with_topup
    assert unlimited.throttle is not None
    assert unlimited.throttle.describe() == "512 Kbps after 2 GB"
    assert (
        big.data_mb == 5 * 1024 and big.call.amount == 30 and big.call.included and big.sms.included
    )
    assert big.requires_travel_date and not big.with_usage_check
    assert daily.country_code == "EU" and daily.geography == "regional"
    assert daily.covered_codes == ("FR", "DE")  # upper case, de-duplicated, in order


def test_the_flat_paginated_shape_parses_to_the_same_packages() -> None:
    grouped = RoamifyPackage.many_from_json([CAMBODIA, EUROPE])
    flattened = RoamifyPackage.many_from_json(
        [flat(p, CAMBODIA) for p in CAMBODIA["packages"]] + [flat(DAILY_PACKAGE, EUROPE)]
    )
    # a flat package has no group id; everything else is the same
    assert [p.group_id for p in flattened] == [None] * 4
    assert [p.package_id for p in flattened] == [p.package_id for p in grouped]
    for a, b in zip(grouped, flattened, strict=True):
        assert (a.country_code, a.geography, a.region, a.covered_codes, a.price, a.data_mb) == (
            b.country_code,
            b.geography,
            b.region,
            b.covered_codes,
            b.price,
            b.data_mb,
        )
    page = RoamifyPackagePage.from_json({"packages": [flat(PACKAGE, CAMBODIA)], "total": 1})
    assert page.item_count == 1 and not page.grouped and page.total == 1
    grouped_page = RoamifyPackagePage.from_json({"packages": [CAMBODIA]})
    assert grouped_page.grouped and grouped_page.item_count == 1
    assert len(grouped_page.packages) == 3 and grouped_page.total is None


@pytest.mark.parametrize(
    ("amount", "unit", "unlimited_flag", "expected"),
    [
        (1024, "MB", False, (Decimal(1024), False)),
        (5, "GB", None, (Decimal(5120), False)),
        (0.5, "gb", None, (Decimal(512), False)),
        (512, "KB", None, (Decimal("0.5"), False)),
        (2048, None, None, (Decimal(2048), False)),
        (UNLIMITED_DATA, "MB", False, (None, True)),
        (1024, "MB", True, (None, True)),
        (None, "MB", None, (None, False)),
    ],
)
def test_data_amounts_are_normalised_to_mb_and_unlimited_is_recognised(
    amount: Any, unit: Any, unlimited_flag: Any, expected: tuple[Decimal | None, bool]
) -> None:
    assert data_in_mb(amount, unit, unlimited_flag) == expected


def test_an_is_unlimited_flag_alone_makes_a_package_unlimited() -> None:
    package = RoamifyPackage.from_json({**PACKAGE, "isUnlimited": True}, CAMBODIA)
    assert package.unlimited and package.data_mb is None


def test_money_is_made_from_the_numbers_text_not_float_arithmetic() -> None:
    package = RoamifyPackage.from_json({**PACKAGE, "price": 0.1 + 0.2}, CAMBODIA)
    assert package.price == Decimal(str(0.1 + 0.2))
    assert RoamifyPackage.from_json({**PACKAGE, "price": 4.99}).price == Decimal("4.99")
    assert RoamifyBalance.from_json({"balance": 1234.56, "currency": "USD"}).balance == Decimal(
        "1234.56"
    )
    with pytest.raises(WireFormatError):
        RoamifyPackage.from_json({**PACKAGE, "price": "cheap"})


def test_timestamps_are_aware_utc_and_tolerate_milliseconds_strings_and_gaps() -> None:
    expected = datetime(2024, 11, 17, 9, 58, 55, tzinfo=UTC)
    assert unix_time(1731837535) == expected
    assert unix_time(1731837535000) == expected
    assert unix_time("1731837535") == expected
    assert unix_time("2024-11-17T09:58:55Z") == expected
    assert unix_time(None) is None and unix_time("") is None and unix_time("soon") is None


def test_missing_optional_keys_are_none_and_missing_ids_are_wire_format_errors() -> None:
    bare = RoamifyOrder.from_json({"id": "o-1", "status": "pending"})
    assert bare.reference_id is None and bare.created_at is None and bare.items == ()
    assert bare.status == "PENDING" and bare.total == Decimal(0) and bare.currency == "USD"
    esim = RoamifyEsim.from_json({"id": "e-1"})
    assert esim.iccid is None and esim.lpa is None and esim.apn.name is None
    assert esim.status == "UNKNOWN" and not esim.has_profile and esim.expired_at is None
    for parse, data in [
        (RoamifyOrder.from_json, {"status": "COMPLETED"}),
        (RoamifyOrder.from_json, [1, 2]),
        (RoamifyEsim.from_json, {"iccid": "8940"}),
        (RoamifyPackage.from_json, {"package": "no id"}),
        (RoamifyCountry.from_json, {"name": "Nowhere"}),
        (RoamifyUsage.from_json, {"allowedData": 1}),
        (RoamifyBalance.from_json, {"currency": "USD"}),
    ]:
        with pytest.raises(WireFormatError):
            parse(data)


def test_an_unapplied_esim_has_no_credentials_at_all() -> None:
    esim = RoamifyEsim.from_json(esim_json(ESIM_A, applied=False))
    creds = esim.credentials
    assert esim.iccid is None and esim.status == "NEW" and not esim.has_profile
    assert (creds.lpa, creds.smdp_address, creds.activation_code, creds.qr_code_url) == (
        None,
        None,
        None,
        None,
    )
    assert (creds.pin, creds.puk, creds.ios_install_url, creds.android_install_url) == (
        None,
        None,
        None,
        None,
    )


def test_the_nested_topup_package_shape_parses() -> None:
    package = RoamifyTopupPackage.from_json(TOPUP_PACKAGE)
    assert package.package_id == "esim-cambodia-7days-3gb-all" and package.days == 7
    assert package.price == Decimal("8.25") and package.data_mb == 3072 and not package.unlimited
    assert package.apn.name == "cellcard" and package.apn.automatic is False
    assert package.apn.username is None and package.call.amount is None
    assert package.sms.included and package.sms.amount == 10 and not package.call.included
    assert package.notes == ("Top-up adds to the current plan.",)
    unlimited = RoamifyTopupPackage.from_json(
        {**TOPUP_PACKAGE, "data": {"isUnlimited": False, "dataAmount": UNLIMITED_DATA}}
    )
    assert unlimited.unlimited and unlimited.data_mb is None


def test_usage_and_its_daily_breakdown_parse_with_both_date_formats() -> None:
    summary = RoamifyUsage.from_json(USAGE)
    assert summary.iccid == "894000000000029365" and summary.status == "INSTALLED"
    assert summary.allowed_data == 1024 and summary.remaining_data == 924
    assert summary.allowed_sms is None and summary.remaining_sms is None  # -1
    assert summary.allowed_voice == 30 and summary.remaining_voice == Decimal("12.5")
    assert summary.data_usages is None and not summary.unlimited_data
    assert summary.started_at == datetime.fromtimestamp(1731837539, UTC)
    details = RoamifyUsage.from_json(USAGE_DETAILS)
    assert details.data_usages is not None
    first, second = details.data_usages
    assert (first.date, first.raw_date, first.usage, first.location) == (
        date(2025, 1, 2),
        "20250102",
        Decimal(60),
        "KH",
    )
    assert second.date == date(2025, 1, 3) and second.usage == Decimal("40.5")
    assert second.location is None
    for allowed in (-1, UNLIMITED_DATA):
        unlimited = RoamifyUsage.from_json({**USAGE, "allowedData": allowed, "remainingData": -1})
        assert unlimited.unlimited_data and unlimited.allowed_data is None
        assert unlimited.remaining_data is None


def test_countries_balance_and_health_parse() -> None:
    africa = RoamifyCountry.from_json({"code": "AFR", "name": "Africa", "geography": "regional"})
    assert (africa.code, africa.name, africa.geography) == ("AFR", "Africa", "regional")
    assert RoamifyCountry.from_json({"code": "KH", "name": "Cambodia"}).geography is None
    assert RoamifyBalance.from_json({"balance": 10}) == RoamifyBalance(Decimal(10), "USD")
    assert RoamifyHealth.from_json(ok({"status": "ok"})) == RoamifyHealth(True, "ok")
    assert RoamifyHealth.from_json({"status": "success"}).healthy
    assert RoamifyHealth.from_json(None).healthy
    assert not RoamifyHealth.from_json({"status": "down"}).healthy


# -- error bodies, through send_json ------------------------------------------------------


async def _failure(status: int, **response: Any) -> ProviderError:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **response)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url=BASE_URL) as http:
        with pytest.raises(ProviderError) as caught:
            await send_json(
                http, "roamify", "POST", "/api/esim/order", parse_error=parse_roamify_error
            )
    return caught.value


async def test_a_body_with_a_code_gives_that_code_and_its_message() -> None:
    error = await _failure(
        422,
        json={
            "message": "Insufficient balance",
            "status": "failed",
            "code": "INSUFFICIENT_BALANCE",
        },
    )
    assert (error.status, error.error_code, error.message) == (
        422,
        "INSUFFICIENT_BALANCE",
        "Insufficient balance",
    )
    assert not error.retryable and type(error) is ProviderError


async def test_the_observed_joi_error_body_gives_the_status_code_and_the_text() -> None:
    error = await _failure(400, json={"error": '"items" is required'})
    assert (error.error_code, error.message) == ("HTTP_400", '"items" is required')
    assert not error.retryable


async def test_the_observed_failed_body_without_a_code_is_a_retryable_500() -> None:
    error = await _failure(500, json={"message": "Unknown error", "status": "failed"})
    assert (error.error_code, error.message, error.retryable) == ("HTTP_500", "Unknown error", True)


async def test_an_html_error_page_gives_its_text_and_an_empty_body_the_reason_phrase() -> None:
    html_page = "<html><head><title>502</title></head><body><h1>Bad  Gateway</h1></body></html>"
    error = await _failure(502, text=html_page, headers={"content-type": "text/html"})
    assert error.error_code == "HTTP_502" and error.message == "502 Bad Gateway"
    assert error.retryable
    empty = await _failure(503)
    assert (empty.error_code, empty.message) == ("HTTP_503", "Service Unavailable")


@pytest.mark.parametrize(
    ("body", "text", "expected"),
    [
        ({"message": "m", "status": "failed", "code": 42}, "", ("42", "m")),
        ({"code": "X_ONLY"}, "", ("X_ONLY", "Conflict")),
        ({"error": {"message": "nested"}}, "", ("HTTP_409", "nested")),
        ({"message": "only a message"}, "", ("HTTP_409", "only a message")),
        ({"detail": "other"}, '{"detail": "other"}', ("HTTP_409", '{"detail": "other"}')),
        (["a list"], "[]", ("HTTP_409", "[]")),
        (None, "", ("HTTP_409", "Conflict")),
    ],
)
def test_parse_roamify_error_handles_every_shape(
    body: Any, text: str, expected: tuple[str, str]
) -> None:
    assert parse_roamify_error(409, body, text) == expected


def test_an_unknown_status_without_a_body_still_has_a_message() -> None:
    assert parse_roamify_error(599, None, "") == ("HTTP_599", "HTTP 599")


async def test_a_404_is_not_found(upstream: Upstream) -> None:
    with pytest.raises(NotFound) as caught:
        await upstream.client().get_order(order_id="missing")
    assert caught.value.status == 404 and caught.value.message == "Not found"
    assert not caught.value.retryable


async def test_a_429_carries_retry_after(upstream: Upstream) -> None:
    upstream.routes[("GET", "/api/balance")] = lambda _: httpx.Response(
        429, headers={"retry-after": "7"}, json={"message": "Too many requests", "status": "failed"}
    )
    with pytest.raises(ProviderError) as caught:
        await upstream.client().balance()
    assert caught.value.retryable and caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("failure", "sent"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.ReadTimeout("slow read"), True),
        (httpx.RemoteProtocolError("dropped"), True),
    ],
)
async def test_transport_failures_are_provider_unavailable(
    upstream: Upstream, failure: httpx.TransportError, sent: bool
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    upstream.routes[("POST", "/api/esim/order")] = fail
    with pytest.raises(ProviderUnavailable) as caught:
        await upstream.client().create_order([("p", 1)], "ref-1")
    assert caught.value.sent is sent and caught.value.provider == "roamify"


async def test_a_success_that_is_not_json_or_not_the_documented_shape_is_unavailable(
    upstream: Upstream,
) -> None:
    upstream.routes[("GET", "/api/balance")] = lambda _: httpx.Response(200, text="<html>")
    with pytest.raises(ProviderUnavailable):
        await upstream.client().balance()
    upstream.on("GET", "/api/esim", {"esim": {"lpaCode": LPA, "activationCode": ACTIVATION}})
    with pytest.raises(ProviderUnavailable) as caught:
        await upstream.client().get_esim(iccid="894000000000029365")
    assert secrets_in(str(caught.value)) == [] and secrets_in(repr(caught.value)) == []
    upstream.on("GET", "/api/esim/orders", {"orders": [{"status": "COMPLETED"}]})
    with pytest.raises(ProviderUnavailable):
        await upstream.client().list_orders()


async def test_a_2xx_that_says_failed_is_a_provider_error(upstream: Upstream) -> None:
    upstream.routes[("POST", "/api/esim/order")] = lambda _: httpx.Response(
        200, json={"status": "failed", "message": "Package is not available", "code": "PKG_OFF"}
    )
    with pytest.raises(ProviderError) as caught:
        await upstream.client().create_order([("p", 1)], "ref-1")
    assert caught.value.error_code == "PKG_OFF" and not caught.value.retryable


async def test_no_message_or_repr_carries_the_token_or_an_activation_code(
    upstream: Upstream,
) -> None:
    upstream.on(
        "POST",
        "/api/esim/apply",
        {
            "message": f"token {TOKEN} rejected; Bearer {TOKEN}; profile {LPA}; code {ACTIVATION}",
            "status": "failed",
            "code": "REJECTED",
        },
        status=401,
    )
    client = upstream.client()
    with pytest.raises(ProviderError) as caught:
        await client.apply(esim_id=ESIM_A)
    assert caught.value.error_code == "REJECTED"
    assert secrets_in(str(caught.value)) == [] and secrets_in(repr(caught.value)) == []
    assert secrets_in(caught.value.message) == []
    assert secrets_in(repr(client)) == [] and secrets_in(repr(RoamifyGateway(client))) == []
    esim = RoamifyEsim.from_json(esim_json(ESIM_A))
    assert secrets_in(repr(esim)) == [] and secrets_in(repr(esim.credentials)) == []
    profile = await _gateway_profile(upstream)
    assert secrets_in(repr(profile)) == []


async def _gateway_profile(upstream: Upstream) -> Any:
    upstream.on("GET", "/api/esim", esim_json(ESIM_A))
    return await upstream.gateway().get_esim("894000000000029365")


# -- requests as sent ----------------------------------------------------------------------


async def test_every_request_carries_the_bearer_token_and_json_bodies(upstream: Upstream) -> None:
    upstream.on("GET", "/api/balance", {"balance": 10, "currency": "USD"})
    upstream.on("POST", "/api/esim/apply", esim_json(ESIM_A))
    client = upstream.client()
    await client.balance()
    await client.apply(esim_id=ESIM_A, start_date=date(2026, 12, 24))
    get, post = upstream.requests
    assert get.headers["authorization"] == post.headers["authorization"] == f"Bearer {TOKEN}"
    assert get.content == b"" and "content-type" not in get.headers
    assert post.headers["content-type"] == "application/json"
    assert body_of(post) == {"esimId": ESIM_A, "startDate": "2026-12-24"}


async def test_reads_writes_and_profile_generation_use_their_own_timeouts(
    upstream: Upstream,
) -> None:
    upstream.on("GET", "/api/balance", {"balance": 10})
    upstream.on("POST", "/api/esim/order", order_json(THREE_ESIMS))
    upstream.on("POST", "/api/esim/order/instant", SEED_INSTANT["data"])
    upstream.on("POST", "/api/esim/apply", [esim_json(ESIM_A)])
    client = upstream.client(Timeouts(read=1.0, write=2.0, fulfil=95.0, connect=0.5))
    await client.balance()
    await client.create_order([("p", 1)], "ref-1")
    await client.create_instant_order([("p", 1)], "ref-2")
    await client.apply(reference_id="ref-1")
    reads = [r.extensions["timeout"]["read"] for r in upstream.requests]
    assert reads == [1.0, 2.0, 95.0, 95.0]
    assert all(r.extensions["timeout"]["connect"] == 0.5 for r in upstream.requests)
    assert Timeouts().fulfil >= 90


async def test_apply_answers_one_esim_by_id_and_a_list_by_reference(upstream: Upstream) -> None:
    client = upstream.client()
    upstream.on("POST", "/api/esim/apply", esim_json(ESIM_A))
    one = await client.apply(esim_id=ESIM_A)
    assert isinstance(one, RoamifyEsim) and one.id == ESIM_A
    upstream.on("POST", "/api/esim/apply", [esim_json(ESIM_A), esim_json(ESIM_B, "8940002")])
    many = await client.apply(
        reference_id="ref-1", start_date=datetime(2026, 12, 24, 8, tzinfo=UTC)
    )
    assert [e.id for e in many] == [ESIM_A, ESIM_B]
    assert body_of(upstream.requests[-1]) == {
        "referenceId": "ref-1",
        "startDate": "2026-12-24T08:00:00+00:00",
    }
    upstream.on("POST", "/api/esim/apply", esim_json(ESIM_A))
    assert [e.id for e in await client.apply(reference_id="ref-1")] == [ESIM_A]


async def test_lookups_need_exactly_one_key(upstream: Upstream) -> None:
    client = upstream.client()
    with pytest.raises(ValueError, match="exactly one"):
        await client.get_order()
    with pytest.raises(ValueError, match="exactly one"):
        await client.get_order(order_id="o", reference_id="r")
    with pytest.raises(ValueError, match="exactly one"):
        await client.get_esim()
    with pytest.raises(ValueError, match="exactly one"):
        await client.apply()  # type: ignore[call-overload]  # deliberately no key
    with pytest.raises(ValueError, match="at least one item"):
        await client.create_order([], "ref-1")
    assert upstream.requests == []


async def test_optional_query_parameters_are_sent_only_when_given(upstream: Upstream) -> None:
    upstream.on("GET", "/api/esim/packages", {"packages": []})
    upstream.on("GET", "/api/esims", [])
    upstream.on("GET", "/api/esim/topup/packages", [TOPUP_PACKAGE])
    upstream.on("GET", "/api/esim/countries", {"countries": []})
    client = upstream.client()
    await client.packages(country_code="KH", is_unlimited=True, gbs=1.5, page=2, page_size=50)
    await client.list_esims(reference_id="ref-1")
    await client.topup_packages("8940001", days=7)
    await client.countries(geography="regional")
    params = [dict(r.url.params) for r in upstream.requests]
    assert params == [
        {"countryCode": "KH", "gbs": "1.5", "isUnlimited": "true", "page": "2", "pageSize": "50"},
        {"referenceId": "ref-1"},
        {"iccid": "8940001", "days": "7"},
        {"geography": "regional"},
    ]


async def test_every_read_endpoint_parses_its_answer(upstream: Upstream) -> None:
    upstream.on("GET", "/api/esim/countries", {"countries": [{"code": "KH", "name": "Cambodia"}]})
    upstream.on("GET", "/api/esim", esim_json(ESIM_A))
    upstream.on("GET", "/api/esims", [esim_json(ESIM_A), esim_json(ESIM_B, applied=False)])
    upstream.on("GET", "/api/esim/usage", USAGE)
    upstream.on("GET", "/api/esim/usage/details", USAGE_DETAILS)
    upstream.on("GET", "/api/esim/topup/packages", [TOPUP_PACKAGE])
    upstream.on("GET", "/api/balance", {"balance": 99.5, "currency": "USD"})
    upstream.on("GET", "/api/health", {"status": "ok"})
    upstream.on("GET", "/api/rates", {"source": "USD", "target": "VND", "rate": 25400})
    client = upstream.client()
    assert [c.code for c in await client.countries()] == ["KH"]
    assert (await client.get_esim(esim_id=ESIM_A)).iccid == "894000000000029365"
    assert [e.iccid for e in await client.list_esims()] == ["894000000000029365", None]
    assert (await client.usage("8940")).data_usages is None
    details = await client.usage_details("8940")
    assert details.data_usages is not None and len(details.data_usages) == 2
    assert [p.package_id for p in await client.topup_packages("8940")] == [
        TOPUP_PACKAGE["packageId"]
    ]
    assert await client.balance() == RoamifyBalance(Decimal("99.5"), "USD")
    assert await client.health() == RoamifyHealth(True, "ok")
    assert await client.usd_rate("vnd") == Decimal(25400)


async def test_an_empty_lookup_answer_is_not_found(upstream: Upstream) -> None:
    upstream.on("GET", "/api/esim/order", None)
    upstream.on("GET", "/api/esim", {})
    with pytest.raises(NotFound):
        await upstream.client().get_order(reference_id="ref-1")
    with pytest.raises(NotFound):
        await upstream.client().get_esim(iccid="8940")


# -- paging ----------------------------------------------------------------------------------


def _paged(packages: list[dict[str, Any]]) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        size = int(request.url.params["pageSize"])
        return httpx.Response(200, json=ok({"packages": packages[(page - 1) * size : page * size]}))

    return answer


def _many(count: int) -> list[dict[str, Any]]:
    return [flat({**PACKAGE, "packageId": f"pkg-{i}"}, CAMBODIA) for i in range(count)]


async def test_all_packages_pages_until_a_short_page(upstream: Upstream) -> None:
    upstream.routes[("GET", "/api/esim/packages")] = _paged(_many(5))
    packages = await upstream.client().all_packages(page_size=2)
    assert [p.package_id for p in packages] == [f"pkg-{i}" for i in range(5)]
    assert [r.url.params["page"] for r in upstream.requests] == ["1", "2", "3"]


async def test_all_packages_asks_once_more_after_an_exactly_full_last_page(
    upstream: Upstream,
) -> None:
    upstream.routes[("GET", "/api/esim/packages")] = _paged(_many(4))
    assert len(await upstream.client().all_packages(page_size=2)) == 4
    assert len(upstream.requests) == 3  # the third page is empty


async def test_all_packages_stops_at_an_announced_total(upstream: Upstream) -> None:
    upstream.on("GET", "/api/esim/packages", {"packages": _many(2), "total": 2})
    assert len(await upstream.client().all_packages(page_size=2)) == 2
    assert len(upstream.requests) == 1


async def test_all_packages_accepts_the_older_grouped_answer_that_ignores_paging(
    upstream: Upstream,
) -> None:
    groups = [CAMBODIA, EUROPE]
    upstream.on("GET", "/api/esim/packages", {"packages": groups})
    packages = await upstream.client().all_packages(page_size=200)
    assert len(packages) == 4 and len(upstream.requests) == 1
    assert {p.country_code for p in packages} == {"KH", "EU"}
    upstream.requests.clear()
    # as many groups as the page size: the same answer again brings nothing new -> stop
    again = await upstream.client().all_packages(page_size=2)
    assert [p.package_id for p in again] == [p.package_id for p in packages]
    assert len(upstream.requests) == 2


# -- gateway mapping -------------------------------------------------------------------


def test_the_gateway_implements_the_protocol_with_roamifys_capabilities() -> None:
    gateway = Upstream().gateway()
    assert isinstance(gateway, ProviderGateway)
    assert gateway.name is ProviderName.ROAMIFY
    assert gateway.capabilities is ROAMIFY_CAPABILITIES
    assert ROAMIFY_CAPABILITIES.topup and ROAMIFY_CAPABILITIES.usage
    assert ROAMIFY_CAPABILITIES.instant_fulfilment and ROAMIFY_CAPABILITIES.order_listing
    assert not ROAMIFY_CAPABILITIES.cancel and not ROAMIFY_CAPABILITIES.refund


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("PENDING", OrderState.PENDING),
        ("COMPLETED", OrderState.COMPLETED),
        ("CANCELLED", OrderState.CANCELLED),
        ("REFUNDED", OrderState.REFUNDED),
        ("REQUIRE_ACTION", OrderState.ACTION_REQUIRED),
        ("ARCHIVED", OrderState.ARCHIVED),
        ("PARTIALLY_SHIPPED", OrderState.PROCESSING),
    ],
)
async def test_order_statuses_map_as_design_says_and_the_raw_value_is_kept(
    upstream: Upstream, raw: str, state: OrderState
) -> None:
    upstream.on("GET", "/api/esim/order", order_json(THREE_ESIMS, status=raw))
    order = await upstream.gateway().get_order("67bbabb7-e893-410a-b0a8-4fa62d347b6c")
    assert order.state is state and order.provider_status == raw
    assert all(line.state is state and line.provider_status == raw for line in order.lines)
    assert order_state(raw.lower()) is state


def test_the_status_table_is_exactly_the_designed_one() -> None:
    assert set(STATES) == {
        "PENDING",
        "COMPLETED",
        "CANCELLED",
        "REFUNDED",
        "REQUIRE_ACTION",
        "ARCHIVED",
    }


async def test_catalog_packages_map_every_field(upstream: Upstream) -> None:
    global_group = {
        **EUROPE,
        "id": "global-esims",
        "countryCode": "GLOBAL",
        "countryName": "Global",
        "geography": "global",
        "packages": [{**PACKAGE, "packageId": "esim-global-7days-1gb-all"}],
    }
    upstream.on("GET", "/api/esim/packages", {"packages": [CAMBODIA, EUROPE, global_group]})
    packages = {p.package_id: p for p in await upstream.gateway().catalog()}
    basic = packages[PACKAGE["packageId"]]
    assert basic.provider is ProviderName.ROAMIFY and basic.name == "1 GB - 7 Days"
    assert basic.destination is DestinationKind.LOCAL and basic.country_codes == ("KH",)
    assert basic.region_code is None and basic.region_name is None
    assert basic.days == 7 and basic.data_mb == 1024 and not basic.unlimited
    assert basic.price.amount == Decimal("4.99") and basic.price.currency == "USD"
    assert not basic.daily and basic.throttle is None and basic.hotspot and not basic.topup
    assert not basic.voice and not basic.sms and basic.activation == "first-use"
    assert basic.usage_check and not basic.requires_travel_date
    unlimited = packages[UNLIMITED_PACKAGE["packageId"]]
    assert unlimited.unlimited and unlimited.data_mb is None and unlimited.topup
    assert not unlimited.daily  # a per-day fair-use note does not make the plan daily
    assert unlimited.throttle == "512 Kbps after 2 GB"
    assert unlimited.notes == ("Speed reduced to 512 Kbps after 2 GB per day.",)
    big = packages[GB_PACKAGE["packageId"]]
    assert big.data_mb == 5120 and big.voice and big.sms
    assert big.requires_travel_date and not big.usage_check
    daily = packages[DAILY_PACKAGE["packageId"]]
    assert daily.daily and daily.data_mb == 1024
    assert daily.destination is DestinationKind.REGIONAL and daily.country_codes == ("FR", "DE")
    assert (daily.region_code, daily.region_name) == ("EU", "Europe")
    world = packages["esim-global-7days-1gb-all"]
    assert world.destination is DestinationKind.GLOBAL and world.region_code == "GLOBAL"


@pytest.mark.parametrize(
    ("name", "plan", "daily"),
    [
        ("1 GB/Day - 7 Days", "data-only", True),
        ("500MB / day", None, True),
        ("Daily 2 GB - 5 Days", None, True),
        ("2 GB per day", None, True),
        ("1 GB - 7 Days", "daily", True),
        ("1 GB - 7 Days", "data-only", False),
        ("Unlimited - 30 Days", None, False),
        ("Holiday 3 GB", None, False),
    ],
)
def test_the_daily_heuristic_reads_the_label_and_plan(
    name: str, plan: str | None, daily: bool
) -> None:
    assert is_daily(name, plan) is daily


async def test_submitting_groups_one_item_per_esim_into_lines_per_package(
    upstream: Upstream,
) -> None:
    upstream.on("POST", "/api/esim/order", order_json(THREE_ESIMS))
    order = await upstream.gateway().submit_order(
        PlaceOrder(
            "ref-1",
            (
                OrderLineRequest(PACKAGE["packageId"], 2),
                OrderLineRequest(GB_PACKAGE["packageId"], 1),
            ),
        )
    )
    assert body_of(upstream.requests[0]) == {
        "items": [
            {"packageId": PACKAGE["packageId"], "quantity": 2},
            {"packageId": GB_PACKAGE["packageId"], "quantity": 1},
        ],
        "referenceId": "ref-1",
    }
    assert order.reference == "ref-1" and order.state is OrderState.COMPLETED
    assert order.total is not None and order.total.amount == Decimal("22.48")
    assert not order.esims_included and order.esims == ()
    first, second = order.lines
    assert (first.package_id, first.quantity, first.esim_ids) == (
        PACKAGE["packageId"],
        2,
        (ESIM_A, ESIM_C),
    )
    assert first.unit_price is not None and first.unit_price.amount == Decimal("4.99")
    assert first.package_name == "1 GB - 7 Days"
    assert (second.package_id, second.quantity, second.esim_ids) == (
        GB_PACKAGE["packageId"],
        1,
        (ESIM_B,),
    )
    assert len({first.line_id, second.line_id}) == 2


async def test_fulfilling_applies_by_reference_once_and_fills_each_line(
    upstream: Upstream,
) -> None:
    upstream.on("POST", "/api/esim/order", order_json(THREE_ESIMS))
    upstream.on(
        "POST",
        "/api/esim/apply",
        [esim_json(ESIM_C, "8940003"), esim_json(ESIM_A, "8940001"), esim_json(ESIM_B, "8940002")],
    )
    gateway = upstream.gateway()
    placed = await gateway.submit_order(
        PlaceOrder("ref-1", (OrderLineRequest(PACKAGE["packageId"], 2),))
    )
    fulfilled = await gateway.fulfil_order(placed, start_date=date(2026, 12, 24))
    assert len(upstream.sent("POST", "/api/esim/apply")) == 1
    assert body_of(upstream.sent("POST", "/api/esim/apply")[0]) == {
        "referenceId": "ref-1",
        "startDate": "2026-12-24",
    }
    assert fulfilled.esims_included
    first, second = fulfilled.lines
    assert [e.iccid for e in first.esims] == ["8940001", "8940003"]
    assert [e.iccid for e in second.esims] == ["8940002"]
    esim = first.esims[0]
    assert esim.esim_id == ESIM_A and esim.package_id == PACKAGE["packageId"]
    assert esim.order_id == placed.order_id and esim.order_reference == "ref-1"
    assert esim.lpa == LPA and esim.activation_code == ACTIVATION and esim.smdp_address == SMDP
    assert esim.pin == "1234" and esim.puk == "12345678" and esim.apn is None
    assert esim.ios_install_url is not None and esim.ios_install_url.endswith(LPA)
    assert esim.status == "READY" and esim.topup_allowed
    assert esim.expires_at == datetime.fromtimestamp(1763373985, UTC)
    assert await gateway.fulfil_order(fulfilled) is fulfilled  # nothing left to do


async def test_fulfilling_applies_each_esim_missing_from_the_reference_answer(
    upstream: Upstream,
) -> None:
    upstream.on("POST", "/api/esim/order", order_json(THREE_ESIMS[:2], reference=None))

    def apply(request: httpx.Request) -> httpx.Response:
        body = body_of(request)
        if "referenceId" in body:
            return httpx.Response(200, json=ok([esim_json(ESIM_A, "8940001")]))
        return httpx.Response(200, json=ok(esim_json(body["esimId"], "8940009")))

    upstream.routes[("POST", "/api/esim/apply")] = apply
    gateway = upstream.gateway()
    placed = await gateway.submit_order(PlaceOrder("ref-9", (OrderLineRequest("x", 2),)))
    assert placed.reference is None
    fulfilled = await gateway.fulfil_order(placed)
    sent = [body_of(r) for r in upstream.sent("POST", "/api/esim/apply")]
    assert sent == [{"esimId": ESIM_A}, {"esimId": ESIM_B}]
    assert fulfilled.esims_included and len(fulfilled.esims) == 2
    with_reference = await gateway.fulfil_order(_with_reference(placed, "ref-1"))
    sent = [body_of(r) for r in upstream.sent("POST", "/api/esim/apply")][2:]
    assert sent == [{"referenceId": "ref-1"}, {"esimId": ESIM_B}]
    assert with_reference.esims_included


def _with_reference(order: ProviderOrder, reference: str) -> ProviderOrder:
    return replace(order, reference=reference)


async def test_an_esim_still_without_its_profile_leaves_the_order_incomplete(
    upstream: Upstream,
) -> None:
    upstream.on("POST", "/api/esim/order", order_json(THREE_ESIMS[:2]))
    upstream.on("POST", "/api/esim/apply", [esim_json(ESIM_A), esim_json(ESIM_B, applied=False)])
    gateway = upstream.gateway()
    placed = await gateway.submit_order(PlaceOrder("ref-1", (OrderLineRequest("x", 2),)))
    fulfilled = await gateway.fulfil_order(placed)
    assert not fulfilled.esims_included and [e.esim_id for e in fulfilled.esims] == [ESIM_A]


async def test_order_esims_is_one_list_call_with_install_links_built_from_the_lpa(
    upstream: Upstream,
) -> None:
    upstream.on("GET", "/api/esim/order", order_json(THREE_ESIMS))
    upstream.on(
        "GET",
        "/api/esims",
        [
            esim_json(ESIM_C, "8940003", links=False),
            esim_json(ESIM_B, "8940002"),
            esim_json(ESIM_A, applied=False),
            esim_json("other-order-esim", "8940099"),
        ],
    )
    gateway = upstream.gateway()
    order = await gateway.get_order("67bbabb7-e893-410a-b0a8-4fa62d347b6c")
    esims = await gateway.order_esims(order)
    assert len(upstream.sent("GET", "/api/esims")) == 1
    assert dict(upstream.sent("GET", "/api/esims")[0].url.params) == {
        "referenceId": "ref-1",
        "limit": "50",
    }
    # the unapplied eSIM and the other order's eSIM are left out; order of the lines kept
    assert [e.iccid for e in esims] == ["8940003", "8940002"]
    built = esims[0]
    assert (
        built.ios_install_url
        == install_links(LPA)[0]
        == (f"https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={LPA}")
    )
    assert built.android_install_url == (
        f"https://esimsetup.android.com/esim_qrcode_provisioning?carddata={LPA}"
    )
    assert (
        built.package_id == PACKAGE["packageId"] and esims[1].package_id == GB_PACKAGE["packageId"]
    )
    assert install_links(None) == (None, None)


async def test_order_esims_reads_each_esim_without_a_reference_or_when_the_list_misses_it(
    upstream: Upstream,
) -> None:
    upstream.on("GET", "/api/esim/order", order_json(THREE_ESIMS[:2], reference=None))

    def one(request: httpx.Request) -> httpx.Response:
        esim_id = request.url.params["esimId"]
        return httpx.Response(200, json=ok(esim_json(esim_id, f"iccid-{esim_id[:4]}")))

    upstream.routes[("GET", "/api/esim")] = one
    gateway = upstream.gateway()
    order = await gateway.get_order("o")
    esims = await gateway.order_esims(order)
    assert [e.esim_id for e in esims] == [ESIM_A, ESIM_B]
    assert upstream.sent("GET", "/api/esims") == [] and len(upstream.sent("GET", "/api/esim")) == 2
    upstream.on("GET", "/api/esims", [esim_json(ESIM_A)])
    esims = await gateway.order_esims(_with_reference(order, "ref-1"))
    assert [e.esim_id for e in esims] == [ESIM_A, ESIM_B]
    assert len(upstream.sent("GET", "/api/esim")) == 3  # only ESIM_B read alone


async def test_an_instant_order_maps_its_esims_to_the_requested_lines(upstream: Upstream) -> None:
    instant = {
        **{k: v for k, v in order_json(THREE_ESIMS).items() if k != "items"},
        "esims": [
            esim_json(ESIM_A, "8940001"),
            esim_json(ESIM_B, "8940002"),
            esim_json(ESIM_C, "8940003"),
        ],
    }
    upstream.on("POST", "/api/esim/order/instant", instant)
    gateway = upstream.gateway()
    order = await gateway.submit_instant_order(
        PlaceOrder("ref-1", (OrderLineRequest("pkg-a", 2), OrderLineRequest("pkg-b", 1)))
    )
    assert order.esims_included and upstream.sent("POST", "/api/esim/apply") == []
    assert [(line.package_id, line.quantity) for line in order.lines] == [
        ("pkg-a", 2),
        ("pkg-b", 1),
    ]
    assert [e.iccid for e in order.lines[0].esims] == ["8940001", "8940002"]
    assert order.lines[1].esims[0].package_id == "pkg-b"
    assert order.lines[1].esim_ids == (ESIM_C,)
    # read back without the request, the eSIMs form one line of unknown package
    upstream.on("GET", "/api/esim/order", instant)
    again = await gateway.get_order(order.order_id)
    (line,) = again.lines
    assert line.quantity == 3 and line.package_id == "" and again.esims_included


async def test_find_order_is_none_when_the_reference_is_unknown(upstream: Upstream) -> None:
    gateway = upstream.gateway()
    assert await gateway.find_order("never-sent") is None
    assert dict(upstream.requests[0].url.params) == {"referenceId": "never-sent"}
    upstream.on("GET", "/api/esim/order", order_json(THREE_ESIMS))
    found = await gateway.find_order("ref-1")
    assert found is not None and found.reference == "ref-1"


async def test_usage_is_in_mb_and_minutes(upstream: Upstream) -> None:
    upstream.on("GET", "/api/esim/usage", USAGE)
    usage = await upstream.gateway().usage("894000000000029365")
    assert usage.provider is ProviderName.ROAMIFY and usage.status == "INSTALLED"
    assert (usage.data_allowed_mb, usage.data_used_mb, usage.data_remaining_mb) == (
        Decimal(1024),
        Decimal(100),
        Decimal(924),
    )
    assert usage.sms_allowed is None and usage.sms_used is None and not usage.unlimited
    assert usage.voice_allowed_minutes == 30 and usage.voice_used_minutes == Decimal("17.5")
    assert usage.plan_start == datetime.fromtimestamp(1731837539, UTC)
    assert usage.plan_end == datetime.fromtimestamp(1763373985, UTC)
    upstream.on("GET", "/api/esim/usage", {**USAGE_DETAILS, "allowedData": -1, "remainingData": -1})
    unlimited = await upstream.gateway().usage("894000000000029365")
    assert unlimited.unlimited and unlimited.data_allowed_mb is None
    assert unlimited.data_used_mb == Decimal("100.5")  # from the daily breakdown


async def test_usage_on_a_package_without_usage_check_is_the_providers_refusal(
    upstream: Upstream,
) -> None:
    upstream.on(
        "GET",
        "/api/esim/usage",
        {"message": "Usage check is not available", "status": "failed", "code": "NO_USAGE"},
        status=422,
    )
    with pytest.raises(ProviderError) as caught:
        await upstream.gateway().usage("8940")
    assert caught.value.error_code == "NO_USAGE"


async def test_balances_topups_and_cancel_map_to_neutral_models(upstream: Upstream) -> None:
    upstream.on("GET", "/api/balance", {"balance": 1234.56, "currency": "USD"})
    upstream.on("GET", "/api/esim/topup/packages", [TOPUP_PACKAGE])
    upstream.on("POST", "/api/esim/order/topup", SEED_TOPUP["data"])
    gateway = upstream.gateway()
    (balance,) = await gateway.balances()
    assert (balance.provider, balance.account_id, balance.kind) == (
        ProviderName.ROAMIFY,
        "main",
        "PREPAID",
    )
    assert balance.balance.amount == Decimal("1234.56") and balance.balance.currency == "USD"
    (offer,) = await gateway.topup_packages("894000000000029365")
    assert offer.topup and offer.package_id == TOPUP_PACKAGE["packageId"]
    assert offer.data_mb == 3072 and offer.days == 7 and offer.sms and not offer.voice
    assert offer.price.amount == Decimal("8.25") and offer.country_codes == ()
    topup = await gateway.submit_topup(
        TopupRequest("top-1", "894000000000029365", TOPUP_PACKAGE["packageId"])
    )
    assert body_of(upstream.sent("POST", "/api/esim/order/topup")[0]) == {
        "iccid": "894000000000029365",
        "packageId": TOPUP_PACKAGE["packageId"],
        "referenceId": "top-1",
    }
    assert topup.state is OrderState.COMPLETED and topup.lines[0].quantity == 1
    with pytest.raises(UnsupportedOperation) as refused:
        await gateway.cancel_order(topup.order_id, "changed my mind")
    assert (refused.value.provider, refused.value.operation) == ("roamify", "cancel")
    assert [r.url.path for r in upstream.requests].count("/api/esim/order") == 0
