"""A lookup that finds nothing is not proof that nothing was bought.

Each scenario arms a fault that real providers show: a purchase that hangs past our
timeout and only then commits, a provider whose reads lag its writes, a provider that
commits and then answers 500. The gateway must never send a purchase again while the
first may still commit, must adopt what the provider placed, must mark an order FAILED
only when nothing can still be bought, and must report a second purchase under one
reference instead of paying for it silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from esim_gateway.domain import OrderLineRequest, PlaceOrder, ProviderName
from esim_gateway.ledger.orders import Step
from esim_gateway.providers._http import Timeouts
from esim_gateway.schema.ids import parse_order_id
from tests.api.test_ordering import a_package
from tests.conftest import Gateway, GatewayFactory

# every order moves only along the purchase state table's lines
pytestmark = pytest.mark.usefixtures("declared_moves_only")

FAST = Timeouts(read=1.0, write=0.3, fulfil=1.0, connect=0.3)

CREATE = """
mutation Create($input: CreateOrderInput!) {
  createOrder(input: $input) {
    __typename
    ... on Order { id status providerOrderId failureReason }
    ... on ProviderError { statusCode errorCode retryable }
  }
}
"""
ORDER = """
query Order($id: ID!) {
  order(id: $id) {
    __typename
    ... on Order {
      id status providerOrderId failureReason reference
      esims { iccid }
      statusHistory { status note }
      duplicatePurchases { providerOrderId action detectedAt }
    }
  }
}
"""


async def create(gw: Gateway, provider: str, key: str, package_id: str) -> dict[str, Any]:
    result = await gw.execute(
        CREATE,
        input={
            "provider": provider,
            "idempotencyKey": key,
            "items": [{"packageId": package_id, "quantity": 1}],
        },
    )
    created: dict[str, Any] = result["createOrder"]
    return created


async def read(gw: Gateway, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = (await gw.execute(ORDER, id=order_id))["order"]
    return order


async def eventually(check: Callable[[], Any], timeout: float = 15.0) -> None:
    """Wait for a background driver to get somewhere (no timing is asserted)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        if await check():
            return
        assert loop.time() < end, "the driver did not get there"
        await asyncio.sleep(0.05)


def roamify_orders(gw: Gateway, reference: str) -> list[Any]:
    return [o for o in gw.roamify.state.orders.values() if o.reference_id == reference]


def notes(order: dict[str, Any]) -> str:
    return " | ".join(h["note"] or "" for h in order["statusHistory"])


async def buy_roamify_after_failure(
    gw: Gateway, key: str, *, status: int = 500, times: int | None = 1
) -> tuple[str, dict[str, Any]]:
    """A Roamify purchase whose first send(s) answer `status` without committing
    anything; returns the package and createOrder's answer."""
    package = (await a_package(gw, "ROAMIFY"))["packageId"]
    gw.roamify.control.faults.arm(
        "POST", "/api/esim/order", status=status, body={"message": "Unknown error"}, times=times
    )
    return package, await create(gw, "ROAMIFY", key, package)


async def test_a_roamify_purchase_that_commits_after_our_timeout_is_adopted_not_bought_again(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(timeouts=FAST, roamify_quiet_period=30.0) as gw:
        package = (await a_package(gw, "ROAMIFY"))["packageId"]
        gw.roamify.control.faults.arm("POST", "/api/esim/order", commit_late=1.0)
        order = await create(gw, "ROAMIFY", "late-commit", package)
        assert order["__typename"] == "Order" and order["status"] == "COMPLETED", order
        assert gw.roamify.control.calls.count("POST", "/api/esim/order") == 1
        final = await read(gw, order["id"])
        assert len(roamify_orders(gw, final["reference"])) == 1
        assert final["providerOrderId"] == roamify_orders(gw, final["reference"])[0].id
        assert "quiet period" in notes(final) and "found by reference" in notes(final)


async def test_roamify_reads_lagging_after_a_commit_then_500_never_buy_twice(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(timeouts=FAST, roamify_quiet_period=30.0) as gw:
        package = (await a_package(gw, "ROAMIFY"))["packageId"]
        gw.roamify.control.faults.arm(
            "POST",
            "/api/esim/order",
            status=500,
            body={"message": "Unknown error"},
            commit_then_status=True,
            read_lag=1.0,
        )
        order = await create(gw, "ROAMIFY", "lagging", package)
        assert order["__typename"] == "Order" and order["status"] == "COMPLETED", order
        assert gw.roamify.control.calls.count("POST", "/api/esim/order") == 1
        # while the order was invisible, it was looked up again and again, never re-sent
        assert gw.roamify.control.calls.count("GET", "/api/esim/orders") >= 2


async def test_a_simplifytrip_duplicate_trackid_refusal_means_placed_and_is_adopted(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(timeouts=FAST) as gw:
        package = (await a_package(gw, "SIMPLIFYTRIP"))["packageId"]
        gw.simplifytrip.control.faults.arm(
            "POST",
            "/api/v1/orders",
            status=500,
            body={"statusCode": 500, "errorCode": "INTERNAL", "message": "oops"},
            commit_then_status=True,
            read_lag=1.0,
        )
        order = await create(gw, "SIMPLIFYTRIP", "taken", package)
        assert order["__typename"] == "Order" and order["status"] == "COMPLETED", order
        # SimplifyTrip refuses a repeated trackId, so sending again is safe: it was
        # refused, and the refusal was read as "already placed", never as a failure
        assert gw.simplifytrip.control.calls.count("POST", "/api/v1/orders") == 2
        final = await read(gw, order["id"])
        assert "already has this reference" in notes(final)
        assert list(gw.simplifytrip.state.by_track) == [final["reference"]]


async def test_an_unknown_outcome_answers_pending_and_sends_nothing_more_in_the_quiet_period(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(timeouts=FAST, order_deadline=1.0) as gw:
        _, order = await buy_roamify_after_failure(gw, "pending", status=502)
        # not an error: the purchase may still have gone through
        assert order["__typename"] == "Order" and order["status"] == "PENDING", order
        assert gw.roamify.control.calls.count("POST", "/api/esim/order") == 1
        final = await read(gw, order["id"])
        assert "180 s" in notes(final)  # the default quiet period, said in the history
        record = await gw.ledger.orders.get(parse_order_id(order["id"]))
        assert record is not None and record.step is Step.SUBMITTING


async def test_roamify_sends_again_only_after_its_quiet_period_with_nothing_found(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(timeouts=FAST, roamify_quiet_period=0.6) as gw:
        _, order = await buy_roamify_after_failure(gw, "resent")
        assert order["__typename"] == "Order" and order["status"] == "COMPLETED", order
        posts = gw.roamify.control.calls.matching("POST", "/api/esim/order")
        lookups = gw.roamify.control.calls.matching("GET", "/api/esim/orders")
        assert len(posts) == 2
        between = [c for c in lookups if posts[0].at < c.at < posts[1].at]
        assert len(between) >= 3  # repeated not-found lookups before the resend
        assert posts[1].at - posts[0].at >= 0.6
        record = await gw.ledger.orders.get(parse_order_id(order["id"]))
        assert record is not None and record.watch_until is not None  # watched after a resend


async def test_an_order_given_up_is_failed_then_revived_when_the_purchase_shows_up(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(timeouts=FAST, roamify_quiet_period=0.3) as gw:
        package, order = await buy_roamify_after_failure(gw, "given-up", times=None)
        assert order["__typename"] == "Order" and order["status"] == "FAILED", order
        assert "still watched" in order["failureReason"]
        assert gw.roamify.control.calls.count("POST", "/api/esim/order") == 3
        gw.roamify.control.faults.clear()
        record = await gw.ledger.orders.get(parse_order_id(order["id"]))
        assert record is not None and record.step is Step.ABANDONED
        # the provider shows the purchase after all (a send that was slower than anything
        # documented): the next watch pass completes the order
        late = gw.roamify.state.new_order([(package, 1)], record.reference)
        driver = gw.services.driver
        driver.watch_initial = 0.0
        await gw.ledger.orders.update(record.id, next_check_at=None)
        reconciler = gw.services.reconciler
        assert await reconciler.run_once(grace=0.0) == 1
        await eventually(lambda: _completed(gw, order["id"]))
        final = await read(gw, order["id"])
        assert final["providerOrderId"] == late.id and final["failureReason"] is None
        assert final["esims"] and "after it was marked failed" in notes(final)


async def _completed(gw: Gateway, order_id: str) -> bool:
    return bool((await read(gw, order_id))["status"] == "COMPLETED")


async def test_a_second_purchase_under_one_reference_is_recorded_counted_and_logged(
    gateway_factory: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with gateway_factory(timeouts=FAST, roamify_quiet_period=0.3) as gw:
        package, order = await buy_roamify_after_failure(gw, "twice")
        assert order["status"] == "COMPLETED"
        record = await gw.ledger.orders.get(parse_order_id(order["id"]))
        assert record is not None and record.watch_until is not None
        # a send we believed lost commits much later than any documented delay
        extra = gw.roamify.state.new_order([(package, 1)], record.reference)
        gw.services.driver.watch_initial = 0.0
        await gw.ledger.orders.update(record.id, next_check_at=None)
        with caplog.at_level(logging.ERROR, logger="esim_gateway.purchasing"):
            assert await gw.services.reconciler.run_once(grace=0.0) == 1
            await eventually(lambda: _has_duplicate(gw, order["id"]))
        final = await read(gw, order["id"])
        [duplicate] = final["duplicatePurchases"]
        assert duplicate["providerOrderId"] == extra.id
        assert duplicate["action"].startswith("reported")  # Roamify has no cancellation
        assert final["status"] == "COMPLETED" and final["providerOrderId"] != extra.id
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert any("bought twice" in r.getMessage() for r in errors)
        assert not any("LPA:" in r.getMessage() for r in errors)
        metrics = (await gw.http.get("/metrics")).text
        assert 'esim_gateway_duplicate_purchases_total{provider="roamify"} 1.0' in metrics
        # a later pass finds the same duplicate again: it is not counted twice
        await gw.ledger.orders.update(record.id, next_check_at=None)
        await gw.services.reconciler.run_once(grace=0.0)
        await asyncio.sleep(0.2)
        assert len((await read(gw, order["id"]))["duplicatePurchases"]) == 1
        metrics = (await gw.http.get("/metrics")).text
        assert 'esim_gateway_duplicate_purchases_total{provider="roamify"} 1.0' in metrics


async def _has_duplicate(gw: Gateway, order_id: str) -> bool:
    return bool((await read(gw, order_id))["duplicatePurchases"])


async def test_a_definite_refusal_after_an_unknown_send_fails_but_stays_watched(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(timeouts=FAST) as gw:
        package = (await a_package(gw, "SIMPLIFYTRIP"))["packageId"]
        control = gw.simplifytrip.control
        control.faults.arm("POST", "/api/v1/orders", status=503, body={"message": "busy"})
        control.faults.arm(
            "POST",
            "/api/v1/orders",
            status=422,
            body={"statusCode": 422, "errorCode": "UNPROCESSABLE", "message": "wallet"},
        )
        order = await create(gw, "SIMPLIFYTRIP", "refused", package)
        assert order["__typename"] == "ProviderError" and order["statusCode"] == 422
        record = await gw.ledger.orders.by_key("sandbox-demo", "refused")
        assert (
            record is not None and record.step is Step.REJECTED and record.watch_until is not None
        )


def test_unique_reference_is_what_the_providers_say() -> None:
    from esim_gateway.providers.roamify.gateway import ROAMIFY_CAPABILITIES
    from esim_gateway.providers.simplifytrip.gateway import SIMPLIFYTRIP_CAPABILITIES

    # providers.md: a SimplifyTrip trackId is unique per merchant and mode; Roamify does
    # not say whether a referenceId is
    assert SIMPLIFYTRIP_CAPABILITIES.unique_reference
    assert not ROAMIFY_CAPABILITIES.unique_reference
    assert ProviderName.ROAMIFY.value == "roamify"


async def test_a_webhook_about_an_order_given_up_revives_it_at_once(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(timeouts=FAST, simplifytrip_quiet_period=0.3) as gw:
        package = (await a_package(gw, "SIMPLIFYTRIP"))["packageId"]
        gw.simplifytrip.control.faults.arm(
            "POST", "/api/v1/orders", status=503, body={"message": "busy"}, times=None
        )
        order = await create(gw, "SIMPLIFYTRIP", "given-up-then-webhook", package)
        assert order["status"] == "FAILED", order
        gw.simplifytrip.control.faults.clear()
        record = await gw.ledger.orders.by_key("sandbox-demo", "given-up-then-webhook")
        assert record is not None and record.step is Step.ABANDONED
        # the purchase goes through after all (sent here as the provider would have
        # received it); its fulfilment webhook reaches the gateway long before the next
        # watch pass, a minute away
        gateway = gw.services.providers.get(ProviderName.SIMPLIFYTRIP)
        await gateway.submit_order(
            PlaceOrder(record.reference, (OrderLineRequest(package, 1),), None)
        )
        await eventually(lambda: _completed(gw, order["id"]))
        final = await read(gw, order["id"])
        assert final["esims"] and "after it was marked failed" in notes(final)
