"""Outbound webhooks end to end: registered by operators over GraphQL, written to the
ledger's outbox with the order change, delivered signed by the dispatcher to a receiver
(an in-process Starlette app reached through httpx.ASGITransport), retried, replayed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from esim_gateway.app import Sandboxes
from esim_gateway.config import Settings
from esim_gateway.domain import OrderState, ProviderName
from esim_gateway.ledger.orders import OrderRecord
from esim_gateway.outbound.dispatcher import WebhookDispatcher
from esim_gateway.outbound.esim_watch import EsimWatcher
from esim_gateway.outbound.signing import verify
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from tests.api.test_ordering import a_package, buy
from tests.conftest import Gateway, GatewayFactory, _GatewayContext, make_sandboxes

KEYS = Settings.from_mapping(
    {"ESIM_GATEWAY_API_KEYS": "alice:customer:alice-key,ops:operator:ops-key"}
).api_keys
ALICE = {"authorization": "Bearer alice-key"}
OPS = {"authorization": "Bearer ops-key"}

CREATE_ENDPOINT = """mutation($url: String!, $events: [String!]!) {
  createWebhookEndpoint(url: $url, events: $events) { __typename
    ... on WebhookEndpointSecret { secret endpoint { id url events enabled createdBy } }
    ... on UnknownEventError { event } ... on UrlNotAllowedError { url reason }
    ... on ValidationError { field } ... on Error { message } } }"""
ENDPOINTS = """{ webhookEndpoints { __typename
  ... on WebhookEndpointList { endpoints { id url events enabled } } ... on Error { message } } }"""
DELIVERIES = """query($orderId: ID, $status: WebhookDeliveryStatus) {
  webhookDeliveries(orderId: $orderId, status: $status) { __typename
    ... on WebhookDeliveryList { deliveries { id webhookId eventType orderId status attempts
      nextAttemptAt lastStatusCode lastError deliveredAt payload } }
    ... on Error { message } } }"""
REDELIVER = """mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { __typename
  ... on WebhookDelivery { id status webhookId } ... on Error { message } } }"""
DISABLE = """mutation($id: ID!) { disableWebhookEndpoint(id: $id) { __typename
  ... on WebhookEndpoint { enabled } ... on Error { message } } }"""
ROTATE = """mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename
  ... on WebhookEndpointSecret { secret } ... on Error { message } } }"""

ORDER_EVENTS = ["order.completed", "order.failed", "order.refunded"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    #: the address the request was sent to (ASGI `server`)
    server: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """A reseller's backend: answers the scripted statuses in turn, then 204 (or what
    `answer` says for a request, when it says something)."""

    script: list[int] = field(default_factory=list)
    answer: Callable[[Received], int | None] = lambda received: None
    got: list[Received] = field(default_factory=list)
    #: when set, every request waits for it (a receiver that hangs)
    hold: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def receive(self, request: Request) -> Response:
        server = request.scope.get("server")
        received = Received(
            request.url.path,
            dict(request.headers),
            await request.body(),
            server[0] if server else None,
        )
        self.got.append(received)
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        chosen = self.answer(received)
        if chosen is not None:
            return Response(status_code=chosen)
        return Response(status_code=self.script.pop(0) if self.script else 204)

    def transport(self) -> httpx.ASGITransport:
        app = Starlette(routes=[Route("/{path:path}", self.receive, methods=["POST"])])
        return httpx.ASGITransport(app=app)


def hooked(
    factory: GatewayFactory, receiver: Receiver | None = None, **overrides: Any
) -> _GatewayContext:
    """A gateway with a customer (alice, the client's default) and an operator key, whose
    webhooks reach `receiver`; the delivery loop is off (tests call `run_once`) unless
    `webhook_dispatch=True`."""
    options: dict[str, Any] = {
        "api_keys": KEYS,
        "headers": ALICE,
        "webhook_dispatch": False,
        **overrides,
    }
    if receiver is not None:
        options["webhook_transport"] = receiver.transport()
    return factory(**options)


async def ops(gw: Gateway, document: str, **variables: Any) -> dict[str, Any]:
    response = await gw.post(document, variables, headers=OPS)
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def register(
    gw: Gateway, url: str = "http://localhost:8200/hooks", events: list[str] | None = None
) -> dict[str, Any]:
    data = await ops(gw, CREATE_ENDPOINT, url=url, events=events or ORDER_EVENTS)
    created: dict[str, Any] = data["createWebhookEndpoint"]
    assert created["__typename"] == "WebhookEndpointSecret", created
    return created


async def deliveries(gw: Gateway, **filters: Any) -> list[dict[str, Any]]:
    found = (await ops(gw, DELIVERIES, **filters))["webhookDeliveries"]
    assert found["__typename"] == "WebhookDeliveryList", found
    listed: list[dict[str, Any]] = found["deliveries"]
    return listed


def dispatcher(gw: Gateway) -> WebhookDispatcher:
    found: WebhookDispatcher = gw.services.webhook_dispatcher
    return found


class Clock:
    """The dispatcher's clock, moved by the test: retries become due without waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def reference_of(gw: Gateway, reference: str) -> OrderRecord:
    record = await gw.ledger.orders.by_reference(ProviderName.ROAMIFY, reference)
    assert record is not None
    return record


def assert_signed(received: Received, secret: str) -> None:
    timestamp = int(received.headers["webhook-timestamp"])
    assert (
        verify(secret, received.headers, received.body, now=timestamp)
        == (received.headers["webhook-id"])
    )


async def test_an_operator_registers_an_endpoint_and_sees_its_secret_only_then(
    gateway_factory: GatewayFactory,
) -> None:
    async with hooked(gateway_factory) as gw:
        created = await register(gw)
        assert created["secret"].startswith("whsec_")
        assert created["endpoint"]["createdBy"] == "ops" and created["endpoint"]["enabled"]
        listed = (await ops(gw, ENDPOINTS))["webhookEndpoints"]["endpoints"]
        assert [e["url"] for e in listed] == ["http://localhost:8200/hooks"]
        rotated = (await ops(gw, ROTATE, id=created["endpoint"]["id"]))["rotateWebhookSecret"]
        assert rotated["__typename"] == "WebhookEndpointSecret"
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
        disabled = (await ops(gw, DISABLE, id=created["endpoint"]["id"]))["disableWebhookEndpoint"]
        assert disabled == {"__typename": "WebhookEndpoint", "enabled": False}
        unknown = (await ops(gw, DISABLE, id="no-such-endpoint"))["disableWebhookEndpoint"]
        assert unknown["__typename"] == "NotFoundError"


async def test_customers_can_neither_manage_nor_read_webhooks(
    gateway_factory: GatewayFactory,
) -> None:
    async with hooked(gateway_factory) as gw:
        endpoint = await register(gw)
        attempts: list[tuple[str, dict[str, Any]]] = [
            (CREATE_ENDPOINT, {"url": "http://localhost/x", "events": ORDER_EVENTS}),
            (ENDPOINTS, {}),
            (DELIVERIES, {}),
            (REDELIVER, {"id": "1"}),
            (DISABLE, {"id": endpoint["endpoint"]["id"]}),
            (ROTATE, {"id": endpoint["endpoint"]["id"]}),
        ]
        for document, variables in attempts:
            result = await gw.execute(document, **variables)
            assert next(iter(result.values()))["__typename"] == "ForbiddenError"
        listed = (await ops(gw, ENDPOINTS))["webhookEndpoints"]["endpoints"]
        assert [e["enabled"] for e in listed] == [True]


@pytest.mark.parametrize(
    ("url", "events", "typename"),
    [
        ("http://localhost/x", ["order.completed", "order.shipped"], "UnknownEventError"),
        ("http://hooks.example.com/x", ["order.completed"], "UrlNotAllowedError"),
        ("not a url", ["order.completed"], "UrlNotAllowedError"),
        ("http://localhost/x", [], "ValidationError"),
    ],
)
async def test_bad_registrations_are_typed_errors_and_register_nothing(
    gateway_factory: GatewayFactory, url: str, events: list[str], typename: str
) -> None:
    async with hooked(gateway_factory) as gw:
        result = (await ops(gw, CREATE_ENDPOINT, url=url, events=events))["createWebhookEndpoint"]
        assert result["__typename"] == typename, result
        if typename == "UnknownEventError":
            assert result["event"] == "order.shipped"
        assert (await ops(gw, ENDPOINTS))["webhookEndpoints"]["endpoints"] == []


async def test_a_completed_order_is_delivered_once_signed_per_standard_webhooks(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver()
    async with hooked(gateway_factory, receiver) as gw:
        endpoint = await register(gw)
        order = await buy(gw, "ROAMIFY")
        assert order["status"] == "COMPLETED"
        upstream = await gw.upstream_calls()
        assert "outbound_webhooks_pending 1.0" in (await gw.http.get("/metrics")).text
        assert await dispatcher(gw).run_once() == 1
        assert await dispatcher(gw).run_once() == 0  # delivered: nothing is due any more
        assert await gw.upstream_calls() == upstream  # delivering never calls a provider
        assert "outbound_webhooks_pending 0.0" in (await gw.http.get("/metrics")).text
    [received] = receiver.got
    assert received.path == "/hooks"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-id"].startswith("msg_")
    assert_signed(received, endpoint["secret"])
    payload = received.payload
    assert payload["type"] == "order.completed"
    assert payload["data"]["orderId"] == order["id"]
    assert payload["data"]["status"] == "COMPLETED"
    assert payload["data"]["provider"] == "ROAMIFY"
    assert payload["data"]["owner"] == "alice"
    assert payload["data"]["reference"] == order["reference"]
    assert payload["data"]["total"]["currency"] == order["total"]["currency"] == "USD"
    assert Decimal(payload["data"]["total"]["amount"]) == Decimal(order["total"]["amount"])
    # no eSIM credential travels in a webhook
    assert "LPA:" not in received.body.decode() and "activationCode" not in payload["data"]


async def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(
    gateway_factory: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    receiver = Receiver(script=[500, 503])
    async with hooked(gateway_factory, receiver) as gw:
        endpoint = await register(gw)
        order = await buy(gw, "ROAMIFY")
        loop = dispatcher(gw)
        loop.clock = clock = Clock()  # from now: what the order enqueued is due
        schedule = loop.retry_schedule
        assert sum(schedule) >= 24 * 3600  # the default keeps trying for more than a day

        assert await loop.run_once() == 1
        [first] = await deliveries(gw, orderId=order["id"])
        assert (first["status"], first["attempts"], first["lastStatusCode"]) == (
            "PENDING",
            1,
            500,
        )
        assert datetime.fromisoformat(first["nextAttemptAt"]) == clock.now + timedelta(
            seconds=schedule[0]
        )
        clock.advance(schedule[0] - 1)
        assert await loop.run_once() == 0  # not due yet
        clock.advance(1)
        assert await loop.run_once() == 1
        [second] = await deliveries(gw, orderId=order["id"])
        assert (second["attempts"], second["lastStatusCode"]) == (2, 503)
        assert datetime.fromisoformat(second["nextAttemptAt"]) == clock.now + timedelta(
            seconds=schedule[1]
        )
        assert schedule[1] > schedule[0]  # backing off
        clock.advance(schedule[1])
        assert await loop.run_once() == 1
        [done] = await deliveries(gw, orderId=order["id"])
        assert (done["status"], done["attempts"], done["lastStatusCode"]) == ("DELIVERED", 3, 204)
        assert done["nextAttemptAt"] is None and done["lastError"] is None
    assert len(receiver.got) == 3
    assert len({r.headers["webhook-id"] for r in receiver.got}) == 1  # one message, retried
    for received in receiver.got:
        assert_signed(received, endpoint["secret"])
    # failures are logged, and neither the secret nor a signature is
    assert "receiver answered 500" in caplog.text
    assert endpoint["secret"] not in caplog.text
    assert endpoint["secret"].removeprefix("whsec_") not in caplog.text
    assert receiver.got[0].headers["webhook-signature"].removeprefix("v1,") not in caplog.text


async def test_after_a_rotation_deliveries_carry_the_new_and_the_old_signature(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver()
    async with hooked(gateway_factory, receiver) as gw:
        endpoint = await register(gw)
        rotated = (await ops(gw, ROTATE, id=endpoint["endpoint"]["id"]))["rotateWebhookSecret"]
        await buy(gw, "ROAMIFY")
        assert await dispatcher(gw).run_once() == 1
    [received] = receiver.got
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    for secret in (rotated["secret"], endpoint["secret"]):
        assert_signed(received, secret)


async def test_after_the_last_retry_a_delivery_fails_and_redelivery_sends_it_again(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver(script=[500, 500, 500])
    async with hooked(gateway_factory, receiver, webhook_retry_schedule=(5.0, 10.0)) as gw:
        await register(gw)
        order = await buy(gw, "ROAMIFY")
        loop = dispatcher(gw)
        loop.clock = clock = Clock()  # from now: what the order enqueued is due
        for wait in (0, 5, 10):
            clock.advance(wait)
            assert await loop.run_once() == 1
        [failed] = await deliveries(gw, orderId=order["id"])
        assert (failed["status"], failed["attempts"]) == ("FAILED", 3)
        assert failed["nextAttemptAt"] is None and "500" in failed["lastError"]
        clock.advance(3600)
        assert await loop.run_once() == 0  # given up: only a redelivery sends it again

        replay = (await ops(gw, REDELIVER, id=failed["id"]))["redeliverWebhook"]
        assert replay["__typename"] == "WebhookDelivery" and replay["status"] == "PENDING"
        assert await loop.run_once() == 1
        [delivered] = await deliveries(gw, orderId=order["id"])
        assert (delivered["status"], delivered["attempts"]) == ("DELIVERED", 4)

        again = (await ops(gw, REDELIVER, id=failed["id"]))["redeliverWebhook"]
        assert again["webhookId"] == failed["webhookId"]
        assert await loop.run_once() == 1
        missing = (await ops(gw, REDELIVER, id="999999"))["redeliverWebhook"]
        assert missing["__typename"] == "NotFoundError"
        malformed = (await ops(gw, REDELIVER, id="abc"))["redeliverWebhook"]
        assert malformed["__typename"] == "ValidationError"
    assert [r.headers["webhook-id"] for r in receiver.got] == [failed["webhookId"]] * 5


async def test_the_events_of_one_order_arrive_in_order_even_when_the_first_is_retried(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver()
    async with hooked(gateway_factory, receiver) as gw:
        await register(gw)
        first = await buy(gw, "ROAMIFY")
        other = await buy(gw, "ROAMIFY")
        seen_first: list[Received] = []

        def fail_first_once(received: Received) -> int | None:
            if received.payload["data"]["orderId"] != first["id"] or seen_first:
                return None
            seen_first.append(received)
            return 500

        receiver.answer = fail_first_once
        record = await reference_of(gw, first["reference"])
        await gw.ledger.orders.update(record.id, state=OrderState.REFUNDED, note="refund accepted")
        loop = dispatcher(gw)
        loop.clock = clock = Clock()  # from now: what the order enqueued is due
        # the first order's `completed` fails; its `refunded` waits behind it, while the
        # other order's `completed` is not held up
        assert await loop.run_once() == 2
        clock.advance(3600)
        assert await loop.run_once() == 1
        assert await loop.run_once() == 1
        assert await loop.run_once() == 0
        listed = await deliveries(gw)
        assert {d["status"] for d in listed} == {"DELIVERED"} and len(listed) == 3
    per_order: dict[str, list[str]] = {}
    for received in receiver.got:
        data = received.payload["data"]
        per_order.setdefault(data["orderId"], []).append(received.payload["type"])
    assert per_order[first["id"]] == ["order.completed", "order.completed", "order.refunded"]
    assert per_order[other["id"]] == ["order.completed"]


async def test_an_order_update_that_fails_writes_neither_the_change_nor_its_webhook(
    gateway_factory: GatewayFactory,
) -> None:
    async with hooked(gateway_factory) as gw:
        await register(gw)
        first = await reference_of(gw, (await buy(gw, "ROAMIFY"))["reference"])
        second = await reference_of(gw, (await buy(gw, "ROAMIFY"))["reference"])
        before = await deliveries(gw)
        assert len(before) == 2
        # the state change and a second column that breaks a unique constraint: the
        # whole transaction (order row, history, outbox) rolls back
        with pytest.raises(IntegrityError):
            await gw.ledger.orders.update(
                second.id, state=OrderState.REFUNDED, reference=first.reference
            )
        after = await gw.ledger.orders.get(second.id)
        assert after is not None and after.state is OrderState.COMPLETED
        assert await deliveries(gw) == before
        await gw.ledger.orders.update(second.id, state=OrderState.REFUNDED)
        events = [d["eventType"] for d in await deliveries(gw)]
        assert events == ["order.refunded", "order.completed", "order.completed"]


async def test_a_receiver_that_hangs_never_slows_an_order(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver(hold=asyncio.Event())
    async with hooked(
        gateway_factory, receiver, webhook_poll_interval=0.05, webhook_dispatch=True
    ) as gw:
        await register(gw)
        order = await buy(gw, "ROAMIFY")
        assert order["status"] == "COMPLETED"
        # the delivery is under way in the background, stuck at the receiver, while the
        # order was answered and the next request is answered too
        await asyncio.wait_for(receiver.entered.wait(), timeout=10)
        second = await buy(gw, "ROAMIFY")
        assert second["status"] == "COMPLETED"
        [*_, stuck] = await deliveries(gw, orderId=order["id"])
        assert stuck["status"] == "PENDING" and stuck["attempts"] == 0
        assert receiver.hold is not None
        receiver.hold.set()


async def test_the_delivery_loop_sends_what_an_order_change_enqueued(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver()
    # a long poll interval: a prompt delivery comes from the wake-up after the change
    async with hooked(
        gateway_factory, receiver, webhook_poll_interval=30.0, webhook_dispatch=True
    ) as gw:
        await register(gw)
        order = await buy(gw, "ROAMIFY")
        await asyncio.wait_for(receiver.entered.wait(), timeout=10)
        [received] = receiver.got
        assert received.payload["data"]["orderId"] == order["id"]


async def test_live_mode_refuses_a_receiver_that_resolves_to_a_private_address_later(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver()
    dns = {"hooks.example.com": ["93.184.216.34"], "localhost": ["127.0.0.1"]}

    async def resolve(host: str, port: int) -> list[str]:
        return dns[host]

    async with hooked(gateway_factory, receiver, live=True, webhook_resolver=resolve) as gw:
        dns["10.0.0.1"] = ["10.0.0.1"]
        for url in ("http://hooks.example.com/x", "https://localhost/x", "https://10.0.0.1/x"):
            refused = (await ops(gw, CREATE_ENDPOINT, url=url, events=ORDER_EVENTS))[
                "createWebhookEndpoint"
            ]
            assert refused["__typename"] == "UrlNotAllowedError", refused
        await register(gw, url="https://hooks.example.com/esim")
        first = await buy(gw, "ROAMIFY")
        assert await dispatcher(gw).run_once() == 1
        [sent] = receiver.got
        # sent to the address that was checked, for the name the receiver expects
        assert sent.headers["host"] == "hooks.example.com"
        assert sent.server == "93.184.216.34"
        assert sent.payload["data"]["orderId"] == first["id"]
        order = await buy(gw, "ROAMIFY")
        dns["hooks.example.com"] = ["192.168.0.10"]  # DNS rebinding after registration
        assert await dispatcher(gw).run_once() == 1
        [refused_delivery] = await deliveries(gw, orderId=order["id"])
        assert refused_delivery["status"] == "PENDING"
        assert "private or local" in refused_delivery["lastError"]
        assert refused_delivery["lastStatusCode"] is None
    assert receiver.got == [sent]


@pytest.mark.parametrize(
    "private",
    [
        pytest.param("64:ff9b::a9fe:a9fe", id="nat64-to-metadata"),
        pytest.param("2002:7f00:1::1", id="6to4-to-loopback"),
        pytest.param("2001:0:4136:e378:0:63bf:f5ff:fffe", id="teredo-to-10.0.0.1"),
        pytest.param("::ffff:0:c0a8:a", id="translated-to-192.168.0.10"),
        pytest.param("::a00:1", id="ipv4-compatible-to-10.0.0.1"),
    ],
)
async def test_live_mode_refuses_ipv6_forms_that_reach_a_private_ipv4_host(
    gateway_factory: GatewayFactory, private: str
) -> None:
    receiver = Receiver()
    dns = {"hooks.example.com": ["93.184.216.34"], "inside.example.com": [private]}

    async def resolve(host: str, port: int) -> list[str]:
        return dns[host]

    async with hooked(gateway_factory, receiver, live=True, webhook_resolver=resolve) as gw:
        refused = (
            await ops(gw, CREATE_ENDPOINT, url="https://inside.example.com/x", events=ORDER_EVENTS)
        )["createWebhookEndpoint"]
        assert refused["__typename"] == "UrlNotAllowedError", refused
        assert "private or local" in refused["reason"]
        await register(gw, url="https://hooks.example.com/esim")
        order = await buy(gw, "ROAMIFY")
        dns["hooks.example.com"] = [private]  # moved after registration
        assert await dispatcher(gw).run_once() == 1
        [refused_delivery] = await deliveries(gw, orderId=order["id"])
        assert refused_delivery["status"] == "PENDING"
        assert "private or local" in refused_delivery["lastError"]
    assert receiver.got == []


async def test_a_low_balance_is_announced_once_per_provider_event(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver()
    sandboxes = Sandboxes(
        roamify=create_roamify_sandbox(packages_per_country=3, initial_balance=Decimal("101")),
        simplifytrip=make_sandboxes().simplifytrip,
    )
    async with hooked(gateway_factory, receiver, sandboxes=sandboxes) as gw:
        await register(gw, events=["provider.balance_low"])
        await buy(gw, "ROAMIFY")  # the balance drops under the 100 USD threshold
        await gw.roamify.settle()
        await asyncio.sleep(0.05)
        while await dispatcher(gw).run_once():
            pass
        announced = len(receiver.got)
        assert announced >= 1
        # the stored provider event is applied again (as after a crash): no second alert
        event = await gw.ledger.events.latest(ProviderName.ROAMIFY, ["partner/low_balance"])
        assert event is not None
        assert await gw.services.webhooks.process(event) == "applied"
        assert await dispatcher(gw).run_once() == 0
        assert len(receiver.got) == announced
    alerts = [r.payload for r in receiver.got]
    assert alerts and all(a["type"] == "provider.balance_low" for a in alerts)
    assert alerts[0]["data"]["provider"] == "ROAMIFY"
    assert Decimal(str(alerts[0]["data"]["balance"])) < 100
    assert len({r.headers["webhook-id"] for r in receiver.got}) == len(receiver.got)


ESIM_USAGE = """query($iccid: String!) { esim(iccid: $iccid) { __typename
  ... on Esim { usage { __typename ... on EsimUsage { dataUsedMb dataAllowedMb } } } } }"""


async def a_limited_roamify_esim(gw: Gateway) -> tuple[dict[str, Any], str, float]:
    """An order of a plan with a data allowance, its ICCID (installed: the plan runs),
    and that allowance in MB."""
    package = await a_package(gw, "ROAMIFY", unlimited=False)
    order = await buy(gw, "ROAMIFY", package_id=package["packageId"])
    iccid: str = order["esims"][0]["iccid"]
    esim = gw.roamify.state.esim_by_iccid(iccid)
    assert esim is not None and 0 < esim.allowed_mb < float("inf")
    gw.roamify.state.install(iccid)
    return order, iccid, esim.allowed_mb


async def drain(gw: Gateway) -> None:
    while await dispatcher(gw).run_once():
        pass


async def test_provider_usage_events_announce_each_threshold_once(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver()
    async with hooked(gateway_factory, receiver) as gw:
        await register(gw, events=["esim.usage_threshold"])
        order, iccid, allowed = await a_limited_roamify_esim(gw)
        state = gw.roamify.state
        # Roamify reports 25/50/75/90/100 %; we announce 50, 80 and 100, each once
        for share in (0.55, 0.30, 0.15):
            state.consume(iccid, allowed * share)
            await gw.roamify.settle()
            await gw.services.webhooks.process_pending()
        await drain(gw)
    thresholds = [r.payload["data"]["threshold"] for r in receiver.got]
    assert thresholds == [50, 80, 100]
    for received in receiver.got:
        data = received.payload["data"]
        assert received.payload["type"] == "esim.usage_threshold"
        assert data["iccid"] == iccid and data["orderId"] == order["id"]
        assert data["owner"] == "alice" and data["source"] == "provider_event"


async def test_a_client_polling_usage_announces_a_threshold_crossed_silently(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver()
    async with hooked(gateway_factory, receiver) as gw:
        await register(gw, events=["esim.usage_threshold"])
        order, iccid, allowed = await a_limited_roamify_esim(gw)
        state = gw.roamify.state
        # data used by time passing: the simulator sends no usage event for it
        installed = state.clock()
        hours = allowed * 0.6 / 40.0
        state.clock = lambda: installed + hours * 3600
        for _ in range(2):  # read twice: announced once
            read = (await gw.execute(ESIM_USAGE, iccid=iccid))["esim"]
            assert read["usage"]["__typename"] == "EsimUsage"
        await drain(gw)
    [received] = receiver.got
    assert received.payload["data"]["threshold"] == 50
    assert received.payload["data"]["source"] == "polling"
    assert received.payload["data"]["orderId"] == order["id"]


async def test_the_watcher_warns_three_days_and_one_day_before_a_plan_ends(
    gateway_factory: GatewayFactory,
) -> None:
    receiver = Receiver()
    async with hooked(gateway_factory, receiver) as gw:
        watcher = gw.services.esim_watcher
        announcer = gw.services.esim_announcer
        _, iccid, _ = await a_limited_roamify_esim(gw)
        esim = gw.roamify.state.esim_by_iccid(iccid)
        assert esim is not None
        _, end = gw.roamify.state.plan_window(esim)
        assert end is not None
        plan_end = datetime.fromtimestamp(end, UTC)
        assert await watcher.run_once() == 0  # nobody listens: no upstream reads at all
        await register(gw, events=["esim.expiring"])
        reads = gw.roamify.control.calls.count("GET", "/api/esim/usage")
        for before_end in (timedelta(days=5), timedelta(days=2), timedelta(hours=12)):

            def clock(before_end: timedelta = before_end) -> datetime:
                return plan_end - before_end

            announcer.clock = clock
            assert await watcher.run_once() == 1
        assert await watcher.run_once() == 1  # read again, nothing new to say
        assert gw.roamify.control.calls.count("GET", "/api/esim/usage") == reads + 4
        await drain(gw)
    warnings = [r.payload["data"] for r in receiver.got]
    assert [w["daysBefore"] for w in warnings] == [3, 1]
    assert {w["iccid"] for w in warnings} == {iccid}
    assert datetime.fromisoformat(warnings[0]["expiresAt"]) == plan_end


async def test_the_open_sandbox_lets_its_demo_principal_try_webhooks(gateway: Gateway) -> None:
    created = (
        await gateway.execute(CREATE_ENDPOINT, url="http://localhost:8200/", events=ORDER_EVENTS)
    )["createWebhookEndpoint"]
    assert created["__typename"] == "WebhookEndpointSecret"
    assert created["endpoint"]["createdBy"] == "sandbox-demo"


async def test_one_replica_per_interval_takes_the_watchers_turn(
    gateway_factory: GatewayFactory,
) -> None:
    async with hooked(gateway_factory) as gw:
        watcher = gw.services.esim_watcher
        other = EsimWatcher(
            gw.ledger.outbound, gw.services.providers, watcher.announcer, interval=3600
        )
        start = 7 * 3600.0
        assert await watcher.take_turn(start)
        assert not await other.take_turn(start + 1800)  # same interval: already taken
        assert await other.take_turn(start + 3600)
        assert not await watcher.take_turn(start + 3601)
