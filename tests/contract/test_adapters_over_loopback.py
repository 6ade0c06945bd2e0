"""Both live adapters over a real socket with the production client stack: the app's
`_client` (ProviderClient) on the default transport (reqwest), each simulator served
by uvicorn on loopback. The in-process contract suites cover every method; these prove
the same calls, errors and timeouts survive the wire, and that a call sent as parts (the
direct path) puts the same bytes on it as one sent as httpx objects."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from esim_gateway.app import _client, _transport
from esim_gateway.config import Settings
from esim_gateway.domain import OrderLineRequest, PlaceOrder
from esim_gateway.errors import NotFound, ProviderError, ProviderUnavailable
from esim_gateway.ops.metrics import Metrics
from esim_gateway.providers._http import Timeouts
from esim_gateway.providers.instrumented import InstrumentedTransport
from esim_gateway.providers.roamify import RoamifyClient, RoamifyGateway
from esim_gateway.providers.simplifytrip import SimplifyTripClient, SimplifyTripGateway
from esim_gateway.sandbox.roamify import RoamifySandbox, create_roamify_sandbox
from esim_gateway.sandbox.simplifytrip import SimplifyTripSandbox, create_simplifytrip_sandbox
from tests.conftest import EntryPoints, serve_in_thread

DOWN = {"message": "Unknown error", "status": "failed"}
SECRET_KEY = "sk_test_sandbox"


#: seconds uvicorn lets calls in flight finish when the module's simulators stop: a call
#: that met a `hang` fault never does, and uvicorn would otherwise wait for it for ever
#: (and serve_in_thread give up on the thread only after SERVE_TIMEOUT, 10 s)
GRACE = 0.5


def reference() -> str:
    return f"eg-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def roamify() -> Iterator[tuple[RoamifySandbox, str]]:
    sandbox = create_roamify_sandbox(packages_per_country=2)
    with serve_in_thread(sandbox.app, timeout_graceful_shutdown=GRACE) as url:
        yield sandbox, url


@pytest.fixture(scope="module")
def simplifytrip() -> Iterator[tuple[SimplifyTripSandbox, str]]:
    sandbox = create_simplifytrip_sandbox(fulfil_delay=0.0, products_per_country=2)
    with serve_in_thread(sandbox.app, timeout_graceful_shutdown=GRACE) as url:
        yield sandbox, url


@pytest.fixture
async def http_for() -> AsyncIterator[list[httpx.AsyncClient]]:
    opened: list[httpx.AsyncClient] = []
    yield opened
    for client in opened:
        await client.aclose()


def production_client(url: str, opened: list[httpx.AsyncClient]) -> httpx.AsyncClient:
    client = _client(url, _transport(Settings.from_mapping({})))
    opened.append(client)
    return client


async def test_roamify_orders_reads_and_fails_over_the_wire(
    roamify: tuple[RoamifySandbox, str], http_for: list[httpx.AsyncClient]
) -> None:
    sandbox, url = roamify
    gateway = RoamifyGateway(
        RoamifyClient(production_client(url, http_for), token="sandbox-roamify-token")
    )
    packages = await gateway.catalog()
    package = next(
        p_id for p_id, (p, _) in sandbox.state.catalog.packages.items() if "requirements" not in p
    )
    assert package in {p.package_id for p in packages}
    ref = reference()
    placed = await gateway.submit_order(PlaceOrder(ref, (OrderLineRequest(package, 2),)))
    read = await gateway.get_order(placed.order_id)
    found = await gateway.find_order(ref)
    assert read.order_id == placed.order_id and found is not None
    assert found.order_id == placed.order_id

    with pytest.raises(NotFound):
        await gateway.get_order("00000000-0000-0000-0000-000000000000")
    sandbox.control.faults.arm("GET", "/api/esim/order", status=429, retry_after=3, body=DOWN)
    with pytest.raises(ProviderError) as limited:
        await gateway.find_order("any")
    assert limited.value.status == 429 and limited.value.retry_after == 3.0

    sandbox.control.faults.arm("GET", "/api/balance", hang=True)
    slow = RoamifyGateway(
        RoamifyClient(
            production_client(url, http_for),
            token="sandbox-roamify-token",
            timeouts=Timeouts(read=0.2),
        )
    )
    with pytest.raises(ProviderUnavailable) as hung:
        await slow.balances()
    assert hung.value.sent and "in time" in hung.value.message


async def test_simplifytrip_signed_orders_and_errors_over_the_wire(
    simplifytrip: tuple[SimplifyTripSandbox, str], http_for: list[httpx.AsyncClient]
) -> None:
    sandbox, url = simplifytrip

    def gateway(secret: str = SECRET_KEY) -> SimplifyTripGateway:
        return SimplifyTripGateway(
            SimplifyTripClient(
                production_client(url, http_for),
                api_key="pk_test_sandbox",
                secret_key=secret,
                checksum_key="ck_test_sandbox",
            )
        )

    packages = await gateway().catalog()
    sku = packages[0].package_id
    ref = reference()
    placed = await gateway().submit_order(PlaceOrder(ref, (OrderLineRequest(sku, 1),)))
    read = await gateway().get_order(placed.order_id)
    assert read.order_id == placed.order_id and read.reference == ref

    with pytest.raises(ProviderError) as refused:
        await gateway(secret="sk_wrong").get_order(placed.order_id)
    assert refused.value.status in (401, 403)
    assert "sk_wrong" not in str(refused.value)
    sandbox.control.faults.arm("POST", "/api/v1/orders", status=500, body={"errorCode": "E500"})
    with pytest.raises(ProviderError) as down:
        await gateway().submit_order(PlaceOrder(reference(), (OrderLineRequest(sku, 1),)))
    assert down.value.status == 500 and down.value.retryable


class Received:
    """ASGI wrapper: every HTTP request as the simulator got it (method, path, query,
    header list in the order received, body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, str, bytes, list[tuple[bytes, bytes]], bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body: list[bytes] = []

        async def receiving() -> Message:
            message = await receive()
            body.append(message.get("body", b""))
            return message

        try:
            await self.app(scope, receiving, send)
        finally:
            self.requests.append(
                (
                    scope["method"],
                    scope["path"],
                    scope["query_string"],
                    list(scope["headers"]),
                    b"".join(body),
                )
            )


@pytest.mark.parametrize("provider", ["roamify", "simplifytrip"])
async def test_a_call_sent_as_parts_puts_the_same_bytes_on_the_wire(provider: str) -> None:
    sandbox: Any = (
        create_roamify_sandbox(packages_per_country=2)
        if provider == "roamify"
        else create_simplifytrip_sandbox(fulfil_delay=0.0, products_per_country=2)
    )
    received = Received(sandbox.app)
    wire: dict[str, list[Any]] = {}
    with serve_in_thread(received) as url:
        for entry in ("httpx", "parts"):
            # the app's stack: its client, instrumented, on the default transport
            transport = InstrumentedTransport(
                _transport(Settings.from_mapping({})), provider, Metrics()
            )
            counted = EntryPoints(transport, parts=entry == "parts")
            async with _client(url, counted) as http:
                gateway: Any = (
                    RoamifyGateway(RoamifyClient(http, token="sandbox-roamify-token"))
                    if provider == "roamify"
                    else SimplifyTripGateway(
                        SimplifyTripClient(
                            http,
                            api_key="pk_test_sandbox",
                            secret_key=SECRET_KEY,
                            checksum_key="ck_test_sandbox",
                        )
                    )
                )
                package = (await gateway.catalog())[0].package_id
                received.requests.clear()
                ref = reference()  # each its own, the same length
                await gateway.submit_order(PlaceOrder(ref, (OrderLineRequest(package, 1),)))
                await gateway.find_order("eg-000000000000")
                with pytest.raises(NotFound):
                    await gateway.get_order("00000000-0000-0000-0000-000000000000")
            assert set(counted.used) == {entry}
            # the reference is each run's own, and so is SimplifyTrip's signature of a body
            # holding it
            wire[entry] = [
                (
                    m,
                    p.replace(ref, "REF"),
                    q.replace(ref.encode(), b"REF"),
                    [(k, b"SIGNED" if k == b"x-signature" else v) for k, v in h],
                    b.replace(ref.encode(), b"REF"),
                )
                for m, p, q, h, b in received.requests
            ]
    assert any(method == "POST" and body for method, _, _, _, body in wire["parts"])
    assert wire["parts"] == wire["httpx"]
