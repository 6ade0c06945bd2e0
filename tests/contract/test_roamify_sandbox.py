"""The Roamify simulator against providers.md Part 1 and the seed page's samples.

Everything runs in-process through `SandboxTransport`; time is a fake clock the tests
move, so usage growth and expiry are deterministic.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from esim_gateway.sandbox.roamify import (
    RoamifySandbox,
    app_factory,
    create_roamify_sandbox,
)
from esim_gateway.sandbox.roamify.catalog import UNLIMITED, build_catalog
from esim_gateway.sandbox.roamify.state import MB_PER_HOUR_IN_USE, RoamifyState
from esim_gateway.sandbox.transport import SandboxTransport
from esim_gateway.signatures import verify_roamify_signature

TOKEN = "sandbox-roamify-token"
SECRET = "sandbox-roamify-webhook-secret"
BASE_URL = "http://roamify.sandbox"
AUTH = {"authorization": f"Bearer {TOKEN}"}
UNAUTHORIZED = {
    "message": "Unauthorized, please make sure your have provided the correct api key",
    "status": "failed",
}
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z

# -- the sample responses of Roamify's published API documentation, verbatim

SEED_CREATE = """{ "status": "success", "data": { "id": "67bbabb7-e893-410a-b0a8-4fa62d347b6c", "referenceId": "ref-123456", "orderType": "api", "status": "COMPLETED", "total": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539, "items": [ { "esimId": "b06036c5-eadc-4f88-aa31-8c207fec91ec", "packageId": "esim-cambodia-7days-1gb-all", "package": "1 GB - 7 Days", "type": "esim", "price": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539 } ] } }"""  # noqa: E501
SEED_TOPUP = """{ "status": "success", "data": { "id": "0501aef3-7cf1-4b4c-a293-c03a6bd7a8ab", "referenceId": "ref-123456", "orderType": "api", "status": "COMPLETED", "total": 5, "currency": "USD", "createdAt": 1731838277, "updatedAt": 1731838280, "items": [ { "esimId": "22dcdb84-968b-415c-bb70-79e2f3ffc296", "packageId": "esim-cambodia-7days-1gb-all", "package": "1 GB - 7 Days", "type": "esim", "price": 5, "currency": "USD", "createdAt": 1731838277, "updatedAt": 1731838280 } ] } }"""  # noqa: E501
SEED_INSTANT = """{ "status": "success", "data": { "id": "67bbabb7-e893-410a-b0a8-4fa62d347b6c", "referenceId": "ref-123456", "orderType": "api", "status": "COMPLETED", "total": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539, "esims": [ { "id": "b06036c5-eadc-4f88-aa31-8c207fec91ec", "iccid": "894000000000029365", "status": "READY", "activation": "first-use", "withTopUp": true, "withHotspot": true, "withDataRoaming": true, "withDestinationInstall": false, "withUsageCheck": true, "esim": { "lpaCode": "LPA:1$lpa.roamify.com$TEST", "smdpAddress": "lpa.roamify.com", "activationCode": "TEST", "qrCodeUrl": "https://imagedelivery.net/uUE6LNs_ci8SFBH4_n66dQ/partners/b06036c5-eadc-4f88-aa31-8c207fec91ec/iccid/public", "pin": "", "puk": "", "number": "", "iosQuickInstall": "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA:1$lpa.roamify.com$TEST", "androidQuickInstall": "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=LPA:1$lpa.roamify.com$TEST" }, "apn": { "apnAutomatic": true, "apnName": "", "apnUsername": "", "apnPassword": "" }, "data": { "isUnlimited": false }, "call": { "withCall": false, "callType": "all" }, "sms": { "withSMS": false, "smsType": "all" }, "notes": [], "createdAt": 1731837539, "updatedAt": 1731837987, "expiredAt": 1763373985 } ] } }"""  # noqa: E501
SEED_GET = """{ "status": "success", "data": { "id": "67bbabb7-e893-410a-b0a8-4fa62d347b6c", "referenceId": "ref-123456", "orderType": "api", "status": "COMPLETED", "total": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539, "items": [ { "esimId": "b06036c5-eadc-4f88-aa31-8c207fec91ec", "packageId": "esim-cambodia-7days-1gb-all", "package": "1 GB - 7 Days", "type": "esim", "price": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539 } ] } }"""  # noqa: E501
SEED_LIST = """{ "status": "success", "data": { "orders": [ { "id": "67bbabb7-e893-410a-b0a8-4fa62d347b6c", "referenceId": "ref-123456", "orderType": "api", "status": "COMPLETED", "total": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539, "items": [ { "esimId": "b06036c5-eadc-4f88-aa31-8c207fec91ec", "packageId": "esim-cambodia-7days-1gb-all", "package": "1 GB - 7 Days", "type": "esim", "price": 5, "currency": "USD", "createdAt": 1731837535, "updatedAt": 1731837539 } ] } ] } }"""  # noqa: E501

PACKAGE_KEYS = {
    "packageId", "package", "plan", "activation", "day", "price", "isUnlimited",
    "isAPNAutomatic", "apn", "dataAmount", "dataUnit", "callType", "callAmount", "callUnit",
    "smsType", "smsAmount", "smsUnit", "withSMS", "withCall", "withHotspot", "withDataRoaming",
    "withDestinationInstall", "withUsageCheck", "withThrottle", "throttle", "notes", "withTopUp",
}  # fmt: skip
GROUP_KEYS = {
    "id", "countryName", "countryCode", "countrySlug", "region", "geography", "minPrice",
    "maxPrice", "image", "signals", "packages",
}  # fmt: skip


def shape(value: Any) -> Any:
    """The keys and JSON types of a decoded JSON value, at every level (an array's shape
    is its first element's; all numbers are one type)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    assert value is None, value
    return "null"


def as_sampled(actual: Any, sample: Any) -> Any:
    """`actual`'s shape, except where the sample's array is empty (nothing to compare)."""
    if isinstance(sample, dict) and isinstance(actual, dict):
        return {k: as_sampled(v, sample.get(k)) for k, v in actual.items()}
    if isinstance(sample, list) and isinstance(actual, list):
        return [as_sampled(actual[0], sample[0])] if sample and actual else []
    return actual


def assert_same_shape(actual: Any, sample_text: str) -> None:
    sample = shape(orjson.loads(sample_text))
    assert as_sampled(shape(actual), sample) == sample


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Rig:
    sandbox: RoamifySandbox
    http: httpx.AsyncClient
    clock: Clock

    @property
    def state(self) -> RoamifyState:
        return self.sandbox.state

    def package(
        self, predicate: Callable[[dict[str, Any]], bool] = lambda _: True, *, dated: bool = False
    ) -> str:
        """A package id; one needing a travel date only when `dated`."""
        return next(
            package_id
            for package_id, (package, _) in self.state.catalog.packages.items()
            if predicate(package) and needs_travel_date(package) == dated
        )

    def price(self, package_id: str) -> Decimal:
        return Decimal(str(self.state.catalog.packages[package_id][0]["price"]))

    async def order(
        self, package_id: str, quantity: int = 1, reference: str | None = "ref-1"
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"items": [{"packageId": package_id, "quantity": quantity}]}
        if reference is not None:
            body["referenceId"] = reference
        response = await self.http.post("/api/esim/order", json=body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def applied(self, package_id: str, reference: str = "ref-1") -> dict[str, Any]:
        order = await self.order(package_id, reference=reference)
        response = await self.http.post(
            "/api/esim/apply", json={"esimId": order["items"][0]["esimId"]}
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data


def needs_travel_date(package: dict[str, Any]) -> bool:
    return bool(package.get("requirements", {}).get("travelDate"))


def usable(package: dict[str, Any]) -> bool:
    return bool(
        package["withUsageCheck"]
        and package["withTopUp"]
        and not package["isUnlimited"]
        and package["dataAmount"] >= 1
    )


def open_rig(**options: Any) -> tuple[RoamifySandbox, httpx.AsyncClient, Clock]:
    clock = Clock()
    options.setdefault("packages_per_country", 3)
    sandbox = create_roamify_sandbox(clock=clock, **options)
    http = httpx.AsyncClient(
        transport=SandboxTransport(sandbox.app), base_url=BASE_URL, headers=AUTH
    )
    return sandbox, http, clock


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    sandbox, http, clock = open_rig()
    async with http:
        yield Rig(sandbox, http, clock)
    await sandbox.aclose()


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


# -- the catalog ---------------------------------------------------------------------------


def test_the_default_catalog_is_large_realistic_and_deterministic() -> None:
    # How fast it builds is measured in bench/, not asserted here.
    catalog = build_catalog(7)
    packages = [package for package, _ in catalog.packages.values()]
    assert len(packages) >= 2600
    by_geo = {
        geo: [c for c in catalog.countries if c["geography"] == geo]
        for geo in ("local", "regional", "global")
    }
    assert (
        len(by_geo["local"]) >= 40 and len(by_geo["regional"]) >= 5 and len(by_geo["global"]) == 1
    )
    assert all(len(c["code"]) == 2 for c in by_geo["local"])
    assert {"EU", "ASIA", "AFR"} <= {c["code"] for c in by_geo["regional"]}
    local_codes = {c["code"] for c in by_geo["local"]}
    assert not local_codes & {c["code"] for c in by_geo["regional"] + by_geo["global"]}
    assert all(set(p) - {"requirements"} == PACKAGE_KEYS for p in packages)
    assert 0 < sum(needs_travel_date(p) for p in packages) < len(packages) * 0.03
    assert {p["dataUnit"] for p in packages} == {"MB", "GB"}
    unlimited = [p for p in packages if p["isUnlimited"]]
    assert unlimited and all(p["dataAmount"] == UNLIMITED and p["withThrottle"] for p in unlimited)
    assert any(not p["withUsageCheck"] for p in packages)
    assert all(p["callAmount"] == -1 for p in packages if not p["withCall"])
    prices = {pid: package["price"] for pid, (package, _) in catalog.packages.items()}
    assert 4 <= prices["esim-japan-7days-1gb-all"] <= 6
    assert 25 <= prices["esim-japan-30days-20gb-all"] <= 40
    assert prices["esim-japan-1days-unlimited-all"] < prices["esim-japan-7days-unlimited-all"]
    assert catalog.packages["esim-japan-7days-1gb-all"][0]["package"] == "1 GB - 7 Days"
    assert build_catalog(7) == catalog and build_catalog(8) != catalog


def test_regional_groups_list_every_covered_country_in_their_signals() -> None:
    catalog = build_catalog(7, packages_per_country=1)
    names = {c["code"]: c["name"] for c in catalog.countries if c["geography"] == "local"}
    europe = next(g for g in catalog.groups if g["countryCode"] == "EU")
    covered = {s["code"] for s in europe["signals"]}
    assert {"FR", "DE", "IT", "ES"} <= covered and len(covered) == len(europe["signals"])
    for group in catalog.groups:
        assert set(group) == GROUP_KEYS
        for signal in group["signals"]:
            assert names[signal["code"]] == signal["name"]
            assert signal["networks"] and signal["carriers"]


# -- authentication --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": TOKEN},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": "Bearer"},
        {"authorization": "Bearer roamify_wrong-token-9d2"},
    ],
    ids=["missing", "no-scheme", "basic", "empty", "wrong"],
)
async def test_a_missing_malformed_or_wrong_token_is_a_401_that_echoes_nothing(
    rig: Rig, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(
        transport=SandboxTransport(rig.sandbox.app), base_url=BASE_URL, headers=headers
    ) as anonymous:
        for method, path in (("GET", "/api/balance"), ("POST", "/api/esim/order")):
            response = await anonymous.request(method, path, json={})
            assert response.status_code == 401 and response.json() == UNAUTHORIZED
            assert "wrong-token" not in response.text and TOKEN not in response.text
        assert (await anonymous.get("/_sandbox/calls")).status_code == 200
    assert rig.state.orders == {}


async def test_a_custom_token_replaces_the_default() -> None:
    sandbox = create_roamify_sandbox(token="roamify_custom", packages_per_country=1)
    async with httpx.AsyncClient(
        transport=SandboxTransport(sandbox.app), base_url=BASE_URL
    ) as http:
        assert (await http.get("/api/health", headers=AUTH)).status_code == 401
        custom = await http.get("/api/health", headers={"authorization": "Bearer roamify_custom"})
        assert custom.json() == {"status": "success", "data": {"status": "ok"}}
    await sandbox.aclose()


# -- catalog endpoints -----------------------------------------------------------------


async def test_countries_can_be_filtered_by_geography(rig: Rig) -> None:
    everything = (await rig.http.get("/api/esim/countries")).json()
    assert everything["status"] == "success"
    listed = everything["data"]["countries"]
    assert listed == rig.state.catalog.countries
    assert all(set(c) == {"code", "name", "geography"} for c in listed)
    for geography in ("local", "regional", "global"):
        found = (await rig.http.get("/api/esim/countries", params={"geography": geography})).json()
        codes = found["data"]["countries"]
        assert codes and all(c["geography"] == geography for c in codes)
    bad = await rig.http.get("/api/esim/countries", params={"geography": "continental"})
    assert bad.status_code == 400 and set(bad.json()) == {"error"}


async def test_packages_without_paging_are_country_groups(rig: Rig) -> None:
    response = await rig.http.get("/api/esim/packages")
    groups = response.json()["data"]["packages"]
    assert len(groups) == len(rig.state.catalog.groups)
    for group in groups:
        assert set(group) == GROUP_KEYS and group["id"] == f"{group['countrySlug']}-esims"
        assert group["minPrice"] == min(p["price"] for p in group["packages"])
        assert all(set(p) - {"requirements"} == PACKAGE_KEYS for p in group["packages"])
    japan = (await rig.http.get("/api/esim/packages", params={"countryCode": "JP"})).json()
    (group,) = japan["data"]["packages"]
    assert group["id"] == "japan-esims" and group["countryName"] == "Japan"
    by_name = (await rig.http.get("/api/esim/packages", params={"country": "japan"})).json()
    assert by_name["data"]["packages"] == japan["data"]["packages"]
    regional = (await rig.http.get("/api/esim/packages", params={"geography": "regional"})).json()
    assert all(g["geography"] == "regional" for g in regional["data"]["packages"])
    assert all(len(g["signals"]) > 1 for g in regional["data"]["packages"])


async def test_package_filters_narrow_and_free_text_is_refused(rig: Rig) -> None:
    async def flat(**params: str) -> list[dict[str, Any]]:
        response = await rig.http.get("/api/esim/packages", params=params)
        assert response.status_code == 200, response.text
        return [p for g in response.json()["data"]["packages"] for p in g["packages"]]

    week = await flat(days="7")
    assert week and all(p["day"] == 7 for p in week)
    unlimited = await flat(isUnlimited="true", gbs="3")  # gbs is ignored with unlimited
    assert unlimited and all(p["isUnlimited"] for p in unlimited)
    three = await flat(gbs="3")
    assert three and all(p["package"].startswith("3 GB") for p in three)
    wanted = rig.package()
    (only,) = await flat(packageId=wanted, countryCode="US")  # other filters are ignored
    assert only["packageId"] == wanted
    free_text = ({"country": "Japn"}, {"countryCode": "ZZ"}, {"days": "a week"}, {"geography": "x"})
    for params in free_text:
        refused = await rig.http.get("/api/esim/packages", params=params)
        assert refused.status_code == 400 and set(refused.json()) == {"error"}, params


async def test_paged_packages_are_flat_and_a_short_page_ends_the_listing(rig: Rig) -> None:
    seen: list[str] = []
    page = 1
    while True:
        response = await rig.http.get(
            "/api/esim/packages", params={"page": str(page), "pageSize": "50"}
        )
        items = response.json()["data"]["packages"]
        for item in items:
            assert set(item) - {"requirements"} == PACKAGE_KEYS | {
                "countryCode", "countryName", "geography", "region", "signals",
            }  # fmt: skip
            seen.append(item["packageId"])
        if len(items) < 50:
            break
        page += 1
    assert page == 4 and len(seen) == len(set(seen)) == len(rig.state.catalog.packages) == 159
    default = (await rig.http.get("/api/esim/packages", params={"page": "1"})).json()
    assert len(default["data"]["packages"]) == 50  # pageSize defaults to 50
    regional = (
        await rig.http.get(
            "/api/esim/packages", params={"pageSize": "500", "geography": "regional"}
        )
    ).json()["data"]["packages"]
    assert regional and all(p["geography"] == "regional" for p in regional)
    europe = next(p for p in regional if p["countryCode"] == "EU")
    assert {"FR", "DE"} <= {s["code"] for s in europe["signals"]}
    for params in ({"page": "0"}, {"pageSize": "x"}, {"pageSize": "501"}):
        refused = await rig.http.get("/api/esim/packages", params=params)
        assert refused.status_code == 400 and "error" in refused.json()


# -- orders and balance ----------------------------------------------------------------


async def test_an_order_has_one_item_per_esim_and_is_paid_from_the_balance(rig: Rig) -> None:
    package_id = rig.package()
    before = rig.state.balance
    order = await rig.order(package_id, quantity=3, reference="ref-abc")
    assert order["orderType"] == "api" and order["status"] == "COMPLETED"
    assert order["referenceId"] == "ref-abc" and order["currency"] == "USD"
    assert re.fullmatch(r"[0-9a-f-]{36}", order["id"])
    assert order["createdAt"] == int(START) and order["updatedAt"] == int(START)
    assert len(order["items"]) == 3 and len({i["esimId"] for i in order["items"]}) == 3
    assert all(i["packageId"] == package_id and i["type"] == "esim" for i in order["items"])
    assert Decimal(str(order["total"])) == rig.price(package_id) * 3
    assert rig.state.balance == before - rig.price(package_id) * 3
    balance = (await rig.http.get("/api/balance")).json()
    assert balance == {
        "status": "success",
        "data": {"balance": float(rig.state.balance), "currency": "USD"},
    }


async def test_an_unpayable_order_is_refused_and_creates_nothing(rig: Rig) -> None:
    rig.state.balance = Decimal("1.00")
    response = await rig.http.post(
        "/api/esim/order", json={"items": [{"packageId": rig.package(), "quantity": 1}]}
    )
    assert response.status_code == 422
    assert response.json() == {
        "message": "Insufficient balance",
        "status": "failed",
        "code": "INSUFFICIENT_BALANCE",
    }
    assert rig.state.orders == {} and rig.state.esims == {}
    assert rig.state.balance == Decimal("1.00")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, '"items" is required'),
        ({"packageId": "esim-japan-7days-1gb-all", "quantity": 1}, '"items" is required'),
        ({"items": []}, '"items" must contain at least 1 items'),
        ({"items": "x"}, '"items" must be an array'),
        ({"items": [{"quantity": 1}]}, '"items[0].packageId" is required'),
        ({"items": [{"packageId": "P"}]}, '"items[0].quantity" is required'),
        (
            {"items": [{"packageId": "P", "quantity": 0}]},
            '"items[0].quantity" must be greater than or equal to 1',
        ),
        (
            {"items": [{"packageId": "P", "quantity": 11}]},
            '"items[0].quantity" must be less than or equal to 10',
        ),
        (
            {"items": [{"packageId": "P", "quantity": 1.5}]},
            '"items[0].quantity" must be an integer',
        ),
        ({"items": [{"packageId": "P", "quantity": "2"}]}, '"items[0].quantity" must be a number'),
        (
            {"items": [{"packageId": "P", "quantity": 1}] * 11},
            '"items" must contain less than or equal to 10 items',
        ),
        (
            {"items": [{"packageId": "P", "quantity": 1}], "referenceId": 5},
            '"referenceId" must be a string',
        ),
        ({"items": [{"packageId": "P", "quantity": 1}], "coupon": "X"}, '"coupon" is not allowed'),
    ],
)
async def test_order_validation_errors_are_joi_style_400s(
    rig: Rig, body: dict[str, Any], error: str
) -> None:
    known = rig.package()
    text = orjson.dumps(body).decode().replace('"P"', f'"{known}"')
    for path in ("/api/esim/order", "/api/esim/order/instant"):
        response = await rig.http.post(
            path, content=text, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400 and response.json() == {"error": error}, path
    assert rig.state.orders == {}


async def test_an_unknown_package_or_a_non_json_body_is_a_400(rig: Rig) -> None:
    unknown = await rig.http.post(
        "/api/esim/order",
        json={"items": [{"packageId": "esim-atlantis-7days-1gb-all", "quantity": 1}]},
    )
    assert unknown.status_code == 400 and "esim-atlantis-7days-1gb-all" in unknown.json()["error"]
    for content in (b"items=1", b"[1, 2]", b"{"):
        broken = await rig.http.post(
            "/api/esim/order", content=content, headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400 and set(broken.json()) == {"error"}
    assert rig.state.orders == {}


async def test_orders_are_read_by_id_or_newest_reference_and_listed_newest_first(
    rig: Rig,
) -> None:
    package_id = rig.package()
    first = await rig.order(package_id, reference="dup")
    rig.clock.advance(5)
    second = await rig.order(package_id, reference="dup")  # references are not unique
    third = await rig.order(package_id, reference="other")
    assert first["id"] != second["id"] and len(rig.state.orders) == 3
    by_id = (await rig.http.get("/api/esim/order", params={"orderId": first["id"]})).json()
    assert by_id["data"] == first
    by_ref = (await rig.http.get("/api/esim/order", params={"referenceId": "dup"})).json()
    assert by_ref["data"]["id"] == second["id"]
    listed = (await rig.http.get("/api/esim/orders")).json()["data"]["orders"]
    assert [o["id"] for o in listed] == [third["id"], second["id"], first["id"]]
    limited = (await rig.http.get("/api/esim/orders", params={"limit": "1"})).json()
    assert [o["id"] for o in limited["data"]["orders"]] == [third["id"]]
    dup = (await rig.http.get("/api/esim/orders", params={"referenceId": "dup"})).json()
    assert [o["id"] for o in dup["data"]["orders"]] == [second["id"], first["id"]]
    pending = (await rig.http.get("/api/esim/orders", params={"status": "PENDING"})).json()
    assert pending["data"]["orders"] == []
    missing = await rig.http.get("/api/esim/order", params={"orderId": "nope"})
    assert missing.status_code == 404
    assert missing.json() == {"message": "Order not found", "status": "failed"}
    unknown_ref = await rig.http.get("/api/esim/order", params={"referenceId": "nope"})
    assert unknown_ref.status_code == 404
    neither = await rig.http.get("/api/esim/order")
    assert neither.status_code == 400 and "error" in neither.json()
    bad_limit = await rig.http.get("/api/esim/orders", params={"limit": "many"})
    assert bad_limit.status_code == 400


# -- apply and eSIMs ---------------------------------------------------------------------


async def test_an_esim_is_new_and_empty_until_applied_then_ready_with_a_profile(
    rig: Rig,
) -> None:
    order = await rig.order(rig.package())
    esim_id = order["items"][0]["esimId"]
    before = (await rig.http.get("/api/esim", params={"esimId": esim_id})).json()["data"]
    assert before["status"] == "NEW" and before["iccid"] == "" and before["expiredAt"] is None
    assert all(value == "" for value in before["esim"].values())
    applied = (await rig.http.post("/api/esim/apply", json={"esimId": esim_id})).json()["data"]
    assert applied["id"] == esim_id and applied["status"] == "READY"
    iccid = applied["iccid"]
    assert re.fullmatch(r"8940\d{15}", iccid) and luhn_ok(iccid)
    profile = applied["esim"]
    assert profile["smdpAddress"] == "lpa.sandbox.roamify.example"
    assert re.fullmatch(r"[0-9A-F]{24}", profile["activationCode"])
    lpa = f"LPA:1${profile['smdpAddress']}${profile['activationCode']}"
    assert profile["lpaCode"] == lpa
    assert profile["iosQuickInstall"] == (
        f"https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={lpa}"
    )
    assert profile["androidQuickInstall"].endswith(f"carddata={lpa}")
    assert profile["qrCodeUrl"].startswith("https://") and profile["pin"] and profile["puk"]
    assert applied["expiredAt"] > applied["createdAt"]
    again = (await rig.http.post("/api/esim/apply", json={"esimId": esim_id})).json()["data"]
    assert again == applied  # idempotent
    by_iccid = (await rig.http.get("/api/esim", params={"iccid": iccid})).json()["data"]
    assert by_iccid == applied


async def test_apply_by_reference_profiles_every_esim_of_the_newest_order(rig: Rig) -> None:
    older = await rig.order(rig.package(), quantity=1, reference="trip")
    newer = await rig.order(rig.package(), quantity=2, reference="trip")
    applied = (await rig.http.post("/api/esim/apply", json={"referenceId": "trip"})).json()
    data = applied["data"]
    assert isinstance(data, list) and [e["id"] for e in data] == [
        i["esimId"] for i in newer["items"]
    ]
    assert all(e["status"] == "READY" and e["iccid"] for e in data)
    untouched = rig.state.esims[older["items"][0]["esimId"]]
    assert untouched.status == "NEW"
    listed = (await rig.http.get("/api/esims", params={"referenceId": "trip"})).json()["data"]
    assert len(listed) == 3
    ready = (await rig.http.get("/api/esims", params={"status": "READY"})).json()["data"]
    assert {e["id"] for e in ready} == {e["id"] for e in data}
    one = (await rig.http.get("/api/esims", params={"limit": "1"})).json()["data"]
    assert len(one) == 1


async def test_apply_refusals(rig: Rig) -> None:
    neither = await rig.http.post("/api/esim/apply", json={})
    assert neither.status_code == 400 and neither.json() == {"error": '"esimId" is required'}
    unknown = await rig.http.post("/api/esim/apply", json={"esimId": "nope"})
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "eSIM not found", "status": "failed"}
    no_order = await rig.http.post("/api/esim/apply", json={"referenceId": "nope"})
    assert no_order.status_code == 404
    order = await rig.order(rig.package())
    bad_date = await rig.http.post(
        "/api/esim/apply",
        json={"esimId": order["items"][0]["esimId"], "startDate": "next tuesday"},
    )
    assert bad_date.status_code == 400 and "startDate" in bad_date.json()["error"]
    missing = await rig.http.get("/api/esim", params={"iccid": "8999999999999999999"})
    assert missing.status_code == 404
    assert (await rig.http.get("/api/esim")).status_code == 400


async def test_a_travel_date_package_needs_a_start_date_to_apply_or_order_instantly() -> None:
    sandbox, http, clock = open_rig(packages_per_country=None)
    async with http:
        rig = Rig(sandbox, http, clock)
        dated = rig.package(dated=True)
        order = await rig.order(dated)
        esim_id = order["items"][0]["esimId"]
        refused = await http.post("/api/esim/apply", json={"esimId": esim_id})
        assert refused.status_code == 400
        assert refused.json()["code"] == "TRAVEL_DATE_REQUIRED" and "startDate" in refused.text
        assert sandbox.state.esims[esim_id].status == "NEW"
        applied = await http.post(
            "/api/esim/apply", json={"esimId": esim_id, "startDate": "2026-12-24T00:00:00Z"}
        )
        assert applied.status_code == 200 and applied.json()["data"]["status"] == "READY"
        balance = sandbox.state.balance
        items = [{"packageId": dated, "quantity": 1}]
        instant = await http.post("/api/esim/order/instant", json={"items": items})
        assert instant.status_code == 400 and instant.json()["code"] == "TRAVEL_DATE_REQUIRED"
        assert sandbox.state.balance == balance and len(sandbox.state.orders) == 1
        dated_instant = await http.post(
            "/api/esim/order/instant", json={"items": items, "startDate": "2026-12-24"}
        )
        assert dated_instant.json()["data"]["esims"][0]["status"] == "READY"
    await sandbox.aclose()


async def test_an_instant_order_returns_ready_profiles_instead_of_items(rig: Rig) -> None:
    package_id = rig.package()
    before = rig.state.balance
    response = await rig.http.post(
        "/api/esim/order/instant",
        json={"items": [{"packageId": package_id, "quantity": 2}], "referenceId": "now"},
    )
    data = response.json()["data"]
    assert "items" not in data and len(data["esims"]) == 2
    assert all(e["status"] == "READY" and e["esim"]["lpaCode"] for e in data["esims"])
    assert rig.state.balance == before - rig.price(package_id) * 2
    read = (await rig.http.get("/api/esim/order", params={"orderId": data["id"]})).json()
    assert [i["esimId"] for i in read["data"]["items"]] == [e["id"] for e in data["esims"]]


# -- field-for-field fidelity with the seed page ---------------------------------------------


async def test_answers_have_the_seed_samples_keys_and_types_at_every_level(rig: Rig) -> None:
    package_id = rig.package(lambda p: bool(p["withTopUp"]) and not p["isUnlimited"])
    created = await rig.http.post(
        "/api/esim/order",
        json={"items": [{"packageId": package_id, "quantity": 1}], "referenceId": "ref-123456"},
    )
    assert_same_shape(created.json(), SEED_CREATE)
    order_id = created.json()["data"]["id"]
    got = await rig.http.get("/api/esim/order", params={"orderId": order_id})
    assert_same_shape(got.json(), SEED_GET)
    listed = await rig.http.get("/api/esim/orders", params={"limit": "10"})
    assert_same_shape(listed.json(), SEED_LIST)
    instant = await rig.http.post(
        "/api/esim/order/instant",
        json={"items": [{"packageId": package_id, "quantity": 1}], "referenceId": "ref-123456"},
    )
    assert_same_shape(instant.json(), SEED_INSTANT)
    iccid = instant.json()["data"]["esims"][0]["iccid"]
    offer = (await rig.http.get("/api/esim/topup/packages", params={"iccid": iccid})).json()
    topup = await rig.http.post(
        "/api/esim/order/topup",
        json={"iccid": iccid, "packageId": offer["data"][0]["packageId"], "referenceId": "r"},
    )
    assert_same_shape(topup.json(), SEED_TOPUP)


def test_the_shape_helper_catches_a_missing_key_and_a_wrong_type() -> None:
    sample = shape(orjson.loads(SEED_CREATE))
    good = orjson.loads(SEED_CREATE)
    assert as_sampled(shape(good), sample) == sample
    missing = orjson.loads(SEED_CREATE)
    del missing["data"]["items"][0]["esimId"]
    assert as_sampled(shape(missing), sample) != sample
    retyped = orjson.loads(SEED_CREATE)
    retyped["data"]["total"] = "5"
    assert as_sampled(shape(retyped), sample) != sample


# -- top-ups -------------------------------------------------------------------------------


async def test_a_topup_uses_an_offered_package_pays_and_extends_the_esim(rig: Rig) -> None:
    esim = await rig.applied(rig.package(usable))
    iccid = esim["iccid"]
    offers = (await rig.http.get("/api/esim/topup/packages", params={"iccid": iccid})).json()
    assert offers["data"]
    for offer in offers["data"]:
        assert set(offer["apn"]) == {"apnAutomatic", "apnName", "apnUsername", "apnPassword"}
        assert set(offer["data"]) == {"isUnlimited", "dataAmount", "dataUnit"}
        assert set(offer["call"]) == {"withCall", "callType", "callAmount", "callUnit"}
        assert set(offer["sms"]) == {"withSMS", "smsType", "smsAmount", "smsUnit"}
        assert "dataAmount" not in offer
    chosen = offers["data"][0]
    week = await rig.http.get(
        "/api/esim/topup/packages", params={"iccid": iccid, "days": str(chosen["day"])}
    )
    assert week.json()["data"] and all(o["day"] == chosen["day"] for o in week.json()["data"])
    usage_before = (await rig.http.get("/api/esim/usage", params={"iccid": iccid})).json()
    balance = rig.state.balance
    response = await rig.http.post(
        "/api/esim/order/topup",
        json={"iccid": iccid, "packageId": chosen["packageId"], "referenceId": "top-1"},
    )
    order = response.json()["data"]
    assert order["referenceId"] == "top-1" and order["status"] == "COMPLETED"
    assert [(i["esimId"], i["packageId"], i["type"]) for i in order["items"]] == [
        (esim["id"], chosen["packageId"], "esim")
    ]
    assert rig.state.balance == balance - Decimal(str(chosen["price"]))
    usage_after = (await rig.http.get("/api/esim/usage", params={"iccid": iccid})).json()
    assert usage_after["data"]["allowedData"] > usage_before["data"]["allowedData"]
    read = (await rig.http.get("/api/esim", params={"iccid": iccid})).json()["data"]
    assert read["expiredAt"] == esim["expiredAt"] + chosen["day"] * 86400
    history = (await rig.http.get("/api/esim/history", params={"iccid": iccid})).json()["data"]
    assert [h["type"] for h in history] == ["esim", "topup"]
    assert all(h["esimId"] == esim["id"] and h["currency"] == "USD" for h in history)


async def test_topup_refusals(rig: Rig) -> None:
    esim = await rig.applied(rig.package(usable))
    iccid = esim["iccid"]
    other_group = rig.package(lambda p: not p["packageId"].startswith(esim_prefix(rig, esim)))
    not_offered = await rig.http.post(
        "/api/esim/order/topup", json={"iccid": iccid, "packageId": other_group}
    )
    assert not_offered.status_code == 400 and other_group in not_offered.json()["error"]
    missing = await rig.http.post("/api/esim/order/topup", json={"packageId": other_group})
    assert missing.status_code == 400 and missing.json() == {"error": '"iccid" is required'}
    unknown = await rig.http.post(
        "/api/esim/order/topup", json={"iccid": "8940000000000000000", "packageId": "x"}
    )
    assert unknown.status_code == 404
    offer = (await rig.http.get("/api/esim/topup/packages", params={"iccid": iccid})).json()
    package_id = offer["data"][0]["packageId"]
    rig.state.balance = Decimal("0.50")
    poor = await rig.http.post(
        "/api/esim/order/topup", json={"iccid": iccid, "packageId": package_id}
    )
    assert poor.status_code == 422 and poor.json()["code"] == "INSUFFICIENT_BALANCE"
    rig.state.balance = Decimal(1000)
    rig.state.set_status(iccid, "REVOKED")
    revoked = await rig.http.post(
        "/api/esim/order/topup", json={"iccid": iccid, "packageId": package_id}
    )
    assert revoked.status_code == 422 and revoked.json()["code"] == "ESIM_NOT_ACTIVE"
    fixed = await rig.applied(rig.package(lambda p: not p["withTopUp"]), reference="no-top")
    none = await rig.http.get("/api/esim/topup/packages", params={"iccid": fixed["iccid"]})
    assert none.json()["data"] == []
    refused = await rig.http.post(
        "/api/esim/order/topup", json={"iccid": fixed["iccid"], "packageId": package_id}
    )
    assert refused.status_code == 422 and refused.json()["code"] == "TOPUP_NOT_SUPPORTED"
    assert refused.json()["status"] == "failed"
    assert len([o for o in rig.state.orders.values() if o.kind == "topup"]) == 0


def esim_prefix(rig: Rig, esim: dict[str, Any]) -> str:
    package_id: str = rig.state.esims[esim["id"]].package_id
    group = rig.state.catalog.packages[package_id][1]
    return f"esim-{group['countrySlug']}-"


# -- usage -----------------------------------------------------------------------------------


async def test_usage_grows_with_consumption_and_with_time_after_installation(rig: Rig) -> None:
    esim = await rig.applied(rig.package(usable))
    iccid = esim["iccid"]
    usage = (await rig.http.get("/api/esim/usage", params={"iccid": iccid})).json()["data"]
    assert set(usage) == {
        "id", "iccid", "status", "startedAt", "expiredAt", "allowedData", "remainingData",
        "allowedSms", "remainingSms", "allowedVoice", "remainingVoice",
    }  # fmt: skip
    allowed = usage["allowedData"]
    assert usage["remainingData"] == allowed and usage["startedAt"] is None
    rig.state.consume(iccid, 100)
    consumed = (await rig.http.get("/api/esim/usage", params={"iccid": iccid})).json()["data"]
    assert consumed["remainingData"] == allowed - 100
    rig.state.install(iccid)
    rig.clock.advance(3600 * 2)
    grown = (await rig.http.get("/api/esim/usage/details", params={"iccid": iccid})).json()
    data = grown["data"]
    assert data["status"] == "INSTALLED" and data["startedAt"] == int(START)
    expected_used = 100 + 2 * MB_PER_HOUR_IN_USE
    assert data["remainingData"] == pytest.approx(max(allowed - expected_used, 0))
    (day,) = data["dataUsages"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", day["date"]) and day["date"] == "2026-01-01"
    assert day["usage"] == pytest.approx(min(expected_used, allowed))
    assert day["location"] and "dataUsages" not in consumed


async def test_an_installed_esim_expires_when_its_plan_ends(rig: Rig) -> None:
    esim = await rig.applied(rig.package(usable))
    rig.state.install(esim["iccid"])
    days = rig.state.esims[esim["id"]].days
    rig.clock.advance(days * 86400 + 1)
    read = (await rig.http.get("/api/esim", params={"esimId": esim["id"]})).json()["data"]
    assert read["status"] == "EXPIRED"


async def test_usage_refusals_and_unlimited_plans(rig: Rig) -> None:
    blind = await rig.applied(rig.package(lambda p: not p["withUsageCheck"]), reference="b")
    refused = await rig.http.get("/api/esim/usage", params={"iccid": blind["iccid"]})
    assert refused.status_code == 422 and refused.json()["status"] == "failed"
    assert (await rig.http.get("/api/esim/usage")).status_code == 400
    missing = await rig.http.get("/api/esim/usage/details", params={"iccid": "8940"})
    assert missing.status_code == 404
    unlimited = await rig.applied(
        rig.package(lambda p: bool(p["isUnlimited"] and p["withUsageCheck"])), reference="u"
    )
    usage = (await rig.http.get("/api/esim/usage", params={"iccid": unlimited["iccid"]})).json()
    assert usage["data"]["allowedData"] == -1 and usage["data"]["remainingData"] == -1


# -- the other endpoints -----------------------------------------------------------------


async def test_history_events_link_and_sms(rig: Rig) -> None:
    esim = await rig.applied(rig.package(usable), reference="evt")
    iccid = esim["iccid"]
    rig.clock.advance(60)
    rig.state.install(iccid)
    for path in ("/api/esim/event", "/api/esim/events"):
        for params in ({"iccid": iccid}, {"esimId": esim["id"]}, {"referenceId": "evt"}):
            body = (await rig.http.get(path, params=params)).json()
            assert "status" not in body  # not wrapped
            assert (body["iccid"], body["esimId"], body["referenceId"]) == (
                iccid,
                esim["id"],
                "evt",
            )
            assert [e["status"] for e in body["events"]] == [
                "NEW", "READY", "DOWNLOADED", "INSTALLED",
            ]  # fmt: skip
            assert body["events"][-1]["timeStamp"] == int(START) + 60
            assert body["events"][0]["dateTime"].startswith("2026-01-01T00:00:00")
        assert (await rig.http.get(path)).status_code == 400
    link = (await rig.http.post("/api/esim/link", json={"iccid": iccid})).json()["data"]
    assert link["iccid"] == iccid and link["esimId"] == esim["id"]
    assert re.fullmatch(r"\d{4}", link["accessCode"]) and len(link["key"]) == 12
    assert link["link"].startswith("https://") and link["link"].endswith(link["key"])
    by_id = (await rig.http.post("/api/esim/link", json={"esimId": esim["id"]})).json()
    assert by_id["data"]["key"] == link["key"]
    assert (await rig.http.post("/api/esim/link", json={})).status_code == 400
    sent = await rig.http.post("/api/esim/sms", json={"iccid": iccid, "message": "Welcome"})
    assert sent.json()["data"]["status"] == "sent"
    assert (await rig.http.post("/api/esim/sms", json={"iccid": iccid})).status_code == 400


async def test_devices_health_currencies_and_rates(rig: Rig) -> None:
    devices = (await rig.http.get("/api/compatible-devices")).json()["data"]
    assert devices and all(
        set(d) == {"model", "deviceType", "os", "brand", "name"} for d in devices
    )
    health = await rig.http.get("/api/health")
    assert health.json() == {"status": "success", "data": {"status": "ok"}}
    currencies = (await rig.http.get("/api/currencies")).json()["data"]
    assert {"USD", "VND", "EUR", "GBP", "JPY"} <= {c["code"] for c in currencies}
    rate = (await rig.http.get("/api/rates", params={"source": "USD", "target": "VND"})).json()
    assert rate["data"]["rate"] == 25400 and rate["data"]["target"] == "VND"
    euro_yen = await rig.http.get("/api/rates", params={"source": "EUR", "target": "JPY"})
    assert euro_yen.json()["data"]["rate"] == pytest.approx(151.2 / 0.92)
    unknown = await rig.http.get("/api/rates", params={"source": "USD", "target": "XYZ"})
    assert unknown.status_code == 400 and "error" in unknown.json()


async def test_the_factory_app_and_a_mounted_sandbox_answer_under_their_paths() -> None:
    async with httpx.AsyncClient(
        transport=SandboxTransport(app_factory()), base_url=BASE_URL, headers=AUTH
    ) as http:
        assert (await http.get("/api/health")).status_code == 200
    sandbox = create_roamify_sandbox(packages_per_country=1)
    outer = Starlette(routes=[Mount("/sandbox/roamify", app=sandbox.app)])
    sandbox.control.faults.arm("GET", "/api/balance", status=503, body={"message": "down"})
    async with httpx.AsyncClient(
        transport=SandboxTransport(outer), base_url=BASE_URL, headers=AUTH
    ) as http:
        assert (await http.get("/sandbox/roamify/api/balance")).status_code == 503
        assert (await http.get("/sandbox/roamify/api/balance")).status_code == 200
    assert sandbox.control.calls.count("GET", "/api/balance") == 2
    await sandbox.aclose()


# -- faults and the call log ---------------------------------------------------------------


async def test_an_armed_500_answers_instead_of_the_handler_once(rig: Rig) -> None:
    down = {"message": "Unknown error", "status": "failed"}
    rig.sandbox.control.faults.arm("POST", "/api/esim/order", status=500, body=down)
    body = {"items": [{"packageId": rig.package(), "quantity": 1}]}
    failed = await rig.http.post("/api/esim/order", json=body)
    assert failed.status_code == 500 and failed.json() == down
    assert rig.state.orders == {}
    assert (await rig.http.post("/api/esim/order", json=body)).status_code == 200
    assert rig.sandbox.control.calls.count("POST", "/api/esim/order") == 2
    assert rig.sandbox.control.calls.matching("POST", "/api/esim/order")[0].body == body


async def test_a_429_carries_retry_after(rig: Rig) -> None:
    rig.sandbox.control.faults.arm(
        "GET", "/api/esim/packages", status=429, retry_after=2, body={"message": "Too many"}
    )
    limited = await rig.http.get("/api/esim/packages", params={"page": "1"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert (await rig.http.get("/api/esim/packages", params={"page": "1"})).status_code == 200


async def test_a_hang_becomes_a_read_timeout(rig: Rig) -> None:
    rig.sandbox.control.faults.arm("GET", "/api/balance", hang=True)
    with pytest.raises(httpx.ReadTimeout):
        await rig.http.get("/api/balance", timeout=httpx.Timeout(1.0, read=0.1))
    assert (await rig.http.get("/api/balance")).status_code == 200


async def test_a_dropped_response_after_commit_still_created_the_order(rig: Rig) -> None:
    rig.sandbox.control.faults.arm("POST", "/api/esim/order", drop_after_commit=True)
    package_id = rig.package()
    balance = rig.state.balance
    with pytest.raises(httpx.RemoteProtocolError):
        await rig.http.post(
            "/api/esim/order",
            json={"items": [{"packageId": package_id, "quantity": 1}], "referenceId": "lost"},
        )
    found = await rig.http.get("/api/esim/order", params={"referenceId": "lost"})
    assert found.status_code == 200 and found.json()["data"]["referenceId"] == "lost"
    assert rig.state.balance == balance - rig.price(package_id)


async def test_faults_and_the_call_log_are_also_driven_over_http(rig: Rig) -> None:
    armed = await rig.http.post(
        "/_sandbox/faults",
        json={"method": "GET", "path": "/api/esim", "status": 503, "body": {"m": "x"}},
    )
    assert armed.status_code == 201
    assert (await rig.http.get("/api/esim", params={"esimId": "a"})).status_code == 503
    assert (await rig.http.get("/api/esim", params={"esimId": "a"})).status_code == 404
    calls = (await rig.http.get("/_sandbox/calls")).json()
    assert [(c["method"], c["path"], c["query"]) for c in calls] == [
        ("GET", "/api/esim", {"esimId": "a"}),
        ("GET", "/api/esim", {"esimId": "a"}),
    ]
    assert (await rig.http.delete("/_sandbox/calls")).status_code == 204
    assert rig.sandbox.control.calls.count() == 0


# -- webhooks --------------------------------------------------------------------------------


@dataclass
class Receiver:
    app: Starlette
    received: list[tuple[bytes, dict[str, str]]]


def make_receiver(fail_first: int = 0) -> Receiver:
    received: list[tuple[bytes, dict[str, str]]] = []
    state = {"failures": fail_first}

    async def hook(request: Request) -> Response:
        if state["failures"] > 0:
            state["failures"] -= 1
            return JSONResponse({"code": 500}, status_code=500)
        received.append((await request.body(), dict(request.headers)))
        return JSONResponse({"code": 200, "status": "success"})

    return Receiver(Starlette(routes=[Route("/hooks", hook, methods=["POST"])]), received)


async def webhook_rig(receiver: Receiver, **options: Any) -> tuple[Rig, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app))
    sandbox, http, clock = open_rig(
        webhook_url="http://receiver.test/hooks", webhook_client=client, **options
    )
    return Rig(sandbox, http, clock), client


async def test_status_usage_and_balance_webhooks_are_signed_and_recorded() -> None:
    receiver = make_receiver()
    rig, client = await webhook_rig(receiver, initial_balance=Decimal("110"))
    async with client, rig.http:
        package_id = rig.package(lambda p: usable(p) and 10 < p["price"] < 100)
        esim = await rig.applied(package_id, reference="hook")
        rig.state.install(esim["iccid"])
        allowed = rig.state.esims[esim["id"]].allowed_mb
        rig.state.consume(esim["iccid"], allowed * 0.6)  # crosses 25 % and 50 %
        await rig.sandbox.settle()
    await rig.sandbox.aclose()
    events = []
    for raw, headers in receiver.received:
        assert verify_roamify_signature(raw, headers["x-roamify-signature"], SECRET)
        assert headers["content-type"] == "application/json"
        events.append(orjson.loads(raw))
    kinds = [(e["event_category"], e["event_type"]) for e in events]
    assert kinds.count(("esim", "status")) == 2 and kinds.count(("esim", "usage")) == 2
    assert ("partner", "low_balance") in kinds
    statuses = [e["data"] for e in events if e["event_type"] == "status"]
    assert [s["status"] for s in statuses] == ["READY", "INSTALLED"]
    installed = statuses[1]
    assert set(installed) == {
        "timestamp", "iccid", "esim_id", "reference_id", "start", "end", "status",
    }  # fmt: skip
    assert (installed["iccid"], installed["esim_id"], installed["reference_id"]) == (
        esim["iccid"], esim["id"], "hook",
    )  # fmt: skip
    assert installed["end"] - installed["start"] == rig.state.esims[esim["id"]].days * 86400
    usage = next(e["data"] for e in events if e["event_type"] == "usage")
    assert usage["data_units"] == "MB" and usage["package_id"] == package_id
    assert set(usage["usage_data"]) == {
        "isUnlimited", "allowed_data", "remaining_data", "allowed_sms", "remaining_sms",
        "allowed_voice", "remaining_voice",
    }  # fmt: skip
    assert usage["usage_list"][0]["date"] == "2026-01-01"
    low = next(e["data"] for e in events if e["event_type"] == "low_balance")
    assert low["currency"] == "USD" and low["threshold"] == 100 and low["balance"] < 100
    assert all(d["status"] == 200 for d in rig.state.webhook_deliveries)
    delivered = sorted(orjson.dumps(d["body"]) for d in rig.state.webhook_deliveries)
    assert delivered == sorted(orjson.dumps(e) for e in events)


@pytest.mark.parametrize(
    ("failures", "statuses", "received"),
    [(2, [500, 500, 200], 1), (99, [500, 500, 500], 0)],
    ids=["recovers", "gives-up"],
)
async def test_a_failed_delivery_is_retried_up_to_three_times(
    failures: int, statuses: list[int], received: int
) -> None:
    receiver = make_receiver(fail_first=failures)
    rig, client = await webhook_rig(receiver)
    async with client, rig.http:
        await rig.applied(rig.package())  # one esim/status READY event
        await rig.sandbox.settle()
    await rig.sandbox.aclose()
    assert [d["status"] for d in rig.state.webhook_deliveries] == statuses
    assert [d["attempt"] for d in rig.state.webhook_deliveries] == [1, 2, 3]
    assert len(receiver.received) == received


async def test_without_a_webhook_url_nothing_is_sent(rig: Rig) -> None:
    esim = await rig.applied(rig.package(usable))
    rig.state.install(esim["iccid"])
    await rig.sandbox.settle()
    assert rig.state.webhook_deliveries == []
