"""Webhook deliveries: verified, stored once, applied, and never a 4xx for our own faults."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from esim_gateway.domain import ProviderName
from esim_gateway.signatures import roamify_signature, simplifytrip_signature
from tests.api.test_ordering import ORDER, buy
from tests.conftest import Gateway

# every order moves only along the purchase state table's lines
pytestmark = pytest.mark.usefixtures("declared_moves_only")

ROAMIFY_SECRET = "sandbox-roamify-webhook-secret"
CHECKSUM = "ck_test_sandbox"


def roamify_event(
    reference: str = "eg-unknown",
    iccid: str = "8940000000000000001",
    event_type: str = "status",
    status: str = "INSTALLED",
) -> dict[str, Any]:
    return {
        "event_category": "esim",
        "event_type": event_type,
        "data": {
            "timestamp": 1731837535,
            "iccid": iccid,
            "esim_id": "e-1",
            "reference_id": reference,
            "start": None,
            "end": None,
            "status": status,
        },
    }


def simplifytrip_event(
    track_id: str, event_id: str = "evt-1", kind: str = "PURCHASE_ORDER_SUCCESS"
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "createdAt": "2026-11-22T10:00:00.000Z",
        "sentDate": "2026-11-22T10:00:01.000Z",
        "mode": "TEST_MODE",
        "data": {"orderId": "1", "trackId": track_id, "status": "SUCCESS", "items": []},
    }


async def post_roamify(gw: Gateway, body: bytes, signature: str | None) -> Any:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-roamify-signature"] = signature
    return await gw.http.post("/webhooks/roamify", content=body, headers=headers)


async def post_simplifytrip(gw: Gateway, event: dict[str, Any], key: str = CHECKSUM) -> Any:
    body = orjson.dumps(event)
    return await gw.http.post(
        "/webhooks/simplifytrip",
        content=body,
        headers={
            "content-type": "application/json",
            "x-simplify-trip-signature": simplifytrip_signature(event, key),
        },
    )


async def stored(gw: Gateway) -> int:
    return len(await gw.ledger.events.to_process(limit=1000))


async def test_a_signed_roamify_event_is_accepted_once_and_a_replay_changes_nothing(
    gateway: Gateway,
) -> None:
    body = orjson.dumps(roamify_event())
    first = await post_roamify(gateway, body, roamify_signature(body, ROAMIFY_SECRET))
    assert first.status_code == 200 and first.json()["status"] == "success"
    again = await post_roamify(gateway, body, roamify_signature(body, ROAMIFY_SECRET))
    assert again.status_code == 200 and again.json().get("duplicate") is True
    spelled = orjson.dumps({**roamify_event(), "event_type": "esim_status"})
    same = await post_roamify(gateway, spelled, roamify_signature(spelled, ROAMIFY_SECRET))
    assert same.json().get("duplicate") is True  # both spellings are one event
    await asyncio.sleep(0.05)
    event = await gateway.ledger.events.latest(ProviderName.ROAMIFY, ["esim/status"])
    assert event is not None and event.outcome == "unmatched"


async def test_bad_signatures_malformed_and_huge_bodies_are_rejected_without_side_effects(
    gateway: Gateway,
) -> None:
    body = orjson.dumps(roamify_event())
    assert (await post_roamify(gateway, body, None)).status_code == 401
    assert (await post_roamify(gateway, body, "0" * 64)).status_code == 401
    tampered = body.replace(b"INSTALLED", b"DELETED")
    assert (
        await post_roamify(gateway, tampered, roamify_signature(body, ROAMIFY_SECRET))
    ).status_code == 401
    garbage = b"{not json"
    assert (
        await post_roamify(gateway, garbage, roamify_signature(garbage, ROAMIFY_SECRET))
    ).status_code == 400
    not_event = b'{"hello": "world"}'
    assert (
        await post_roamify(gateway, not_event, roamify_signature(not_event, ROAMIFY_SECRET))
    ).status_code == 400
    huge = b'{"pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    assert (
        await post_roamify(gateway, huge, roamify_signature(huge, ROAMIFY_SECRET))
    ).status_code == 413
    wrong_key = await post_simplifytrip(gateway, simplifytrip_event("x"), key="ck_wrong")
    assert wrong_key.status_code == 401
    assert await stored(gateway) == 0
    metrics = (await gateway.http.get("/metrics")).text
    assert 'webhook_deliveries_total{provider="roamify",status="401"} 3.0' in metrics
    assert 'webhook_deliveries_total{provider="roamify",status="413"} 1.0' in metrics


async def test_a_simplifytrip_success_event_completes_a_processing_order(
    gateway_factory: Any,
) -> None:
    async with gateway_factory(order_deadline=0.2, fulfil_delay=30) as gw:
        order = await buy(gw, "SIMPLIFYTRIP")
        assert order["status"] == "PROCESSING"
        await gw.services.driver.shutdown(grace=0)  # no background polling: only the event
        gw.simplifytrip.webhooks.url = None
        await gw.simplifytrip.settle()
        response = await post_simplifytrip(gw, simplifytrip_event(order["reference"]))
        assert response.status_code == 200
        for _ in range(100):
            now = (await gw.execute(ORDER, id=order["id"]))["order"]
            if now["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.05)
        assert now["status"] == "COMPLETED" and now["esims"]


async def test_an_event_for_an_order_we_do_not_know_is_kept_and_matched_later(
    gateway: Gateway,
) -> None:
    await post_simplifytrip(gateway, simplifytrip_event("eg-not-yet"))
    await asyncio.sleep(0.05)
    event = await gateway.ledger.events.latest(
        ProviderName.SIMPLIFYTRIP, ["PURCHASE_ORDER_SUCCESS"]
    )
    assert event is not None and event.outcome == "unmatched"
    assert await gateway.services.webhooks.process_pending() == 1


async def test_a_flood_of_deliveries_is_absorbed_and_each_event_stored_once(
    gateway: Gateway,
) -> None:
    order = await buy(gateway, "SIMPLIFYTRIP")
    events = [simplifytrip_event(order["reference"], event_id=f"evt-{i % 20}") for i in range(200)]
    responses = await asyncio.gather(*(post_simplifytrip(gateway, e) for e in events))
    assert {r.status_code for r in responses} == {200}
    assert sum(1 for r in responses if not r.json().get("duplicate")) == 20
    later = (await gateway.execute(ORDER, id=order["id"]))["order"]
    assert later["status"] == "COMPLETED"
