"""The simulators answer with the same keys and JSON types, at every level, as the sample
responses of the providers' published API documentation, and the adapters parse those
samples verbatim."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from esim_gateway.providers.roamify.client import RoamifyClient
from esim_gateway.providers.roamify.gateway import RoamifyGateway
from esim_gateway.providers.roamify.models import RoamifyOrder
from esim_gateway.providers.simplifytrip.models import STOrder
from esim_gateway.sandbox.roamify import RoamifySandbox, create_roamify_sandbox
from esim_gateway.sandbox.simplifytrip import SimplifyTripSandbox, create_simplifytrip_sandbox
from esim_gateway.sandbox.transport import SandboxTransport
from esim_gateway.signatures import simplifytrip_signature
from tests.unit.test_roamify_models import SEED_CREATE, SEED_INSTANT, SEED_LIST
from tests.unit.test_simplifytrip_models import SEED_CANCEL, SEED_CREATE_200, SEED_DETAILS

# The seed pages' sample responses, verbatim, kept once in the models' unit tests.
ROAMIFY_ORDER = SEED_CREATE
ROAMIFY_INSTANT = SEED_INSTANT
ROAMIFY_ORDERS = SEED_LIST
ST_CREATED = SEED_CREATE_200
ST_CANCELLED = SEED_CANCEL
ST_ORDER = SEED_DETAILS


def shape(value: Any) -> Any:
    """Keys and JSON types at every level (numbers are one type; null matches anything)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


def conforms(actual: Any, sample: Any, path: str = "$") -> list[str]:
    """Where `actual` lacks a key of `sample` or has another type (extra keys are fine:
    the newer docs add fields)."""
    problems: list[str] = []
    if isinstance(sample, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object"]
        for key, value in sample.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += conforms(actual[key], value, f"{path}.{key}")
        return problems
    if isinstance(sample, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list"]
        if sample and actual:
            problems += conforms(actual[0], sample[0], f"{path}[0]")
        return problems
    if sample is None or actual is None:
        return []
    if shape(actual) != shape(sample):
        return [f"{path}: {shape(actual)} instead of {shape(sample)}"]
    return problems


@pytest.fixture
async def roamify() -> AsyncIterator[tuple[RoamifySandbox, httpx.AsyncClient]]:
    sandbox = create_roamify_sandbox(packages_per_country=2)
    async with httpx.AsyncClient(
        transport=SandboxTransport(sandbox.app),
        base_url="http://roamify.sandbox",
        headers={"authorization": "Bearer sandbox-roamify-token"},
    ) as client:
        yield sandbox, client
    await sandbox.aclose()


@pytest.fixture
async def simplifytrip() -> AsyncIterator[tuple[SimplifyTripSandbox, httpx.AsyncClient]]:
    sandbox = create_simplifytrip_sandbox(fulfil_delay=0, products_per_country=2)
    async with httpx.AsyncClient(
        transport=SandboxTransport(sandbox.app),
        base_url="http://simplifytrip.sandbox",
        headers={"x-api-key": "pk_test_sandbox", "authorization": "Bearer sk_test_sandbox"},
    ) as client:
        yield sandbox, client
    await sandbox.aclose()


async def signed_post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(
        path,
        content=orjson.dumps(body),
        headers={
            "content-type": "application/json",
            "x-signature": simplifytrip_signature(body, "ck_test_sandbox"),
        },
    )


async def test_roamify_order_answers_have_the_seed_samples_shape(
    roamify: tuple[RoamifySandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = roamify
    package_id = next(
        p
        for p, (pkg, _) in sandbox.state.catalog.packages.items()
        if "requirements" not in pkg and pkg["withTopUp"]
    )
    items = [{"packageId": package_id, "quantity": 1}]
    created = (
        await client.post("/api/esim/order", json={"items": items, "referenceId": "ref-1"})
    ).json()
    assert conforms(created, ROAMIFY_ORDER) == []
    fetched = (await client.get("/api/esim/order", params={"referenceId": "ref-1"})).json()
    assert conforms(fetched, ROAMIFY_ORDER) == []
    listed = (await client.get("/api/esim/orders", params={"limit": 10})).json()
    assert conforms(listed, ROAMIFY_ORDERS) == []
    instant = (await client.post("/api/esim/order/instant", json={"items": items})).json()
    assert conforms(instant, ROAMIFY_INSTANT) == []
    iccid = instant["data"]["esims"][0]["iccid"]
    offer = (await client.get("/api/esim/topup/packages", params={"iccid": iccid})).json()
    topup = (
        await client.post(
            "/api/esim/order/topup",
            json={"iccid": iccid, "packageId": offer["data"][0]["packageId"]},
        )
    ).json()
    assert conforms(topup, ROAMIFY_ORDER) == []


async def test_simplifytrip_order_answers_have_the_seed_samples_shape(
    simplifytrip: tuple[SimplifyTripSandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = simplifytrip
    sku = next(
        s
        for s, (_, product) in sandbox.state.catalog.variations.items()
        if product["type"] == "eSIM"
    )
    body = {"trackId": "t-1", "items": [{"subTrackId": "s-1", "sku": sku, "quantity": 2}]}
    created = await signed_post(client, "/api/v1/orders", body)
    assert created.status_code == 201 and conforms(created.json(), ST_CREATED) == []
    await sandbox.settle()
    details = (await client.get("/api/v1/orders/t-1")).json()
    assert conforms(details, ST_ORDER) == []
    sim = next(
        s
        for s, (_, product) in sandbox.state.catalog.variations.items()
        if product["type"] == "SIM"
    )
    await signed_post(
        client,
        "/api/v1/orders",
        {"trackId": "t-2", "items": [{"subTrackId": "s-2", "sku": sim, "quantity": 1}]},
    )
    cancelled = await signed_post(
        client, "/api/v1/orders/cancel", {"orderId": "t-2", "reason": "Order canceled by user"}
    )
    assert cancelled.status_code == 201 and conforms(cancelled.json(), ST_CANCELLED) == []
    sandbox.state.legacy_create_status = True
    legacy = await signed_post(
        client,
        "/api/v1/orders",
        {"trackId": "t-3", "items": [{"subTrackId": "s-3", "sku": sku, "quantity": 1}]},
    )
    assert legacy.status_code == 200 and shape(legacy.json()) == shape(ST_CREATED)


def test_the_adapters_parse_the_seed_samples_verbatim() -> None:
    order = RoamifyOrder.from_json(ROAMIFY_ORDER["data"])
    assert order.total == Decimal(5) and order.items[0].esim_id
    assert order.created_at is not None and order.created_at.year == 2024
    instant = RoamifyOrder.from_json(ROAMIFY_INSTANT["data"])
    esim = instant.esims[0]
    assert esim.lpa == "LPA:1$lpa.roamify.com$TEST" and esim.pin is None  # "" -> None
    assert "TEST" not in repr(esim)
    st_order = STOrder.from_json(ST_ORDER)
    assert st_order.total == Decimal(840000)
    assert st_order.items[0].esims[0].iccid == "89812003916820397854"


async def test_the_roamify_gateway_groups_one_item_per_esim_into_lines(
    roamify: tuple[RoamifySandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = roamify
    gateway = RoamifyGateway(RoamifyClient(client, token="sandbox-roamify-token"))
    from esim_gateway.domain import OrderLineRequest, PlaceOrder

    package_id = next(
        p for p, (pkg, _) in sandbox.state.catalog.packages.items() if "requirements" not in pkg
    )
    placed = await gateway.submit_order(PlaceOrder("ref-9", (OrderLineRequest(package_id, 3),)))
    assert [(line.package_id, line.quantity) for line in placed.lines] == [(package_id, 3)]
    assert not placed.esims_included
    fulfilled = await gateway.fulfil_order(placed)
    assert fulfilled.esims_included and len(fulfilled.esims) == 3
    assert all(e.lpa and e.ios_install_url for e in fulfilled.esims)
    assert await gateway.find_order("no-such-reference") is None
