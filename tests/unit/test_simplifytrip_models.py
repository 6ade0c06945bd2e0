"""SimplifyTrip wire models, client and gateway mapping, over `httpx.MockTransport`.

The seed samples are those of SimplifyTrip's Order documentation page, verbatim; the
newer shapes follow providers.md 2.4.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
    TopupRequest,
)
from esim_gateway.errors import NotFound, ProviderError, ProviderUnavailable
from esim_gateway.providers._http import Timeouts
from esim_gateway.providers.base import ProviderGateway
from esim_gateway.providers.simplifytrip import (
    SIMPLIFYTRIP_CAPABILITIES,
    SimplifyTripClient,
    SimplifyTripGateway,
    parse_simplifytrip_error,
)
from esim_gateway.providers.simplifytrip.gateway import ORDER_STATES, order_state
from esim_gateway.providers.simplifytrip.models import (
    STAccount,
    STCancelledOrder,
    STCreatedOrder,
    STEsim,
    STEsimStatus,
    STOrder,
    STPage,
    STProduct,
    STVariation,
    WireFormatError,
    data_allowance,
)
from esim_gateway.signatures import simplifytrip_signature

API_KEY = "pk_test_unit0000000000"
SECRET_KEY = "sk_test_unit1111111111"
CHECKSUM_KEY = "ck_test_unit2222222222"
ACTIVATION = "502F97EF09144E0C9D62FD781E259916"
LPA = f"LPA:1$SECSMSMINIAPP.EASTCOMPEACE.COM${ACTIVATION}"

# -- the seed page's samples, verbatim -------------------------------------------------

SEED_CREATE_200 = json.loads("""{
"success": true,
"orderId": "658441501843542",
"trackId": "b4b08205-836e-4296-a054-52462089edf6",
"items": [
{
"subOrderId": "6740ce7f9d04259159bc6401",
"subTrackId": "958acd57-182f-4b5c-b408-5e93f646ddde",
"sku": "E23XY06GB08DFX",
"quantity": 2,
"type": "eSIM"
}
]
}""")

SEED_CANCEL = json.loads("""{
"id": "658441501843542",
"trackId": "b4b08205-836e-4296-a054-52462089edf6",
"createdAt": "2024-11-22T18:33:35.127Z",
"updatedAt": "2024-11-22T18:33:35.577Z",
"status": "CANCELED",
"reason": "Order canceled by user",
"items": [
{
"id": "6740ce7f9d04259159bc6401",
"subTrackId": "958acd57-182f-4b5c-b408-5e93f646ddde",
"status": "CANCELED",
"quantity": 2,
"sku": "E23XY06GB08DFX",
"type": "eSIM"
}
]
}""")

SEED_DETAILS = json.loads("""{
"id": "658441501843542",
"trackId": "b4b08205-836e-4296-a054-52462089edf6",
"createdAt": "2024-11-22T18:33:35.127Z",
"updatedAt": "2024-11-22T18:33:35.577Z",
"status": "SUCCESS",
"total": 840000,
"error": null,
"items": [
{
"id": "6740ce7f9d04259159bc6401",
"subTrackId": "958acd57-182f-4b5c-b408-5e93f646ddde",
"status": "SUCCESS",
"quantity": 2,
"price": 420000,
"sku": "E23XY06GB08DFX",
"type": "eSIM",
"eSims": [
{
"qrCodeContent": "LPA:1$SECSMSMINIAPP.EASTCOMPEACE.COM$502F97EF09144E0C9D62FD781E259916",
"qrCodeImg": "https://files.simplifytrip.com/a11dd3c438f38f5383fa17c8ea2de3ef.png",
"iccid": "89812003916820397854",
"planAPN": "plus.4g",
"smdpAddress": "SECSMSMINIAPP.EASTCOMPEACE.COM",
"pin": "1234",
"puk": "15095300",
"activationCode": "502F97EF09144E0C9D62FD781E259916"
},
{
"qrCodeContent": "LPA:1$SECSMSMINIAPP.EASTCOMPEACE.COM$502F97EF09144E0C9D62FD781E255011",
"qrCodeImg": "https://files.simplifytrip.com/a11dd3c438f38f5383fa17c8ea2de3ef.png",
"iccid": "89812003916820392108",
"planAPN": "plus.4g",
"smdpAddress": "SECSMSMINIAPP.EASTCOMPEACE.COM",
"pin": "1234",
"puk": "15095300",
"activationCode": "502F97EF09144E0C9D62FD781E255011"
}
]
}
]
}""")

# -- the newer documented shapes (providers.md 2.4) --------------------------------------

CREATE_201: dict[str, Any] = {
    "success": True,
    "orderId": "658441501843542",
    "trackId": "ref-1",
    "status": "PROCESSING",
    "items": [
        {
            "subOrderId": "6740ce7f9d04259159bc6401",
            "subTrackId": "ref-1-0",
            "sku": "E23XY06GB08DFX",
            "quantity": 2,
            "status": "PROCESSING",
            "type": "eSIM",
        }
    ],
}

RETURN: dict[str, Any] = {
    "id": "66a0000000000001",
    "returnTrackId": "partner-return-001",
    "orderId": "658441501843542",
    "orderTrackId": "ref-1",
    "createdAt": "2026-09-01T10:00:00.000Z",
    "refundingAt": None,
    "completedAt": None,
    "canceledAt": None,
    "rejectedAt": None,
    "reason": "Customer requested a return",
    "rejectionReason": None,
    "status": "REQUESTED",
    "returnType": "PARTIAL",
    "refundFee": 15000,
    "extraFee": 0,
    "extraFeeNote": None,
    "refundAmount": 405000,
    "items": [
        {
            "subOrderId": "6740ce7f9d04259159bc6401",
            "subOrderTrackId": "ref-1-0",
            "spu": "SPU00001",
            "sku": "E23XY06GB08DFX",
            "type": "eSIM",
            "returnType": "PARTIAL",
            "iccids": ["89812003916820397854"],
            "quantity": 1,
        }
    ],
}

DETAILS_NEW: dict[str, Any] = {
    **SEED_DETAILS,
    "confirmedAt": None,
    "deliveringAt": None,
    "canceledAt": None,
    "succeededAt": "2024-11-22T18:33:40.000Z",
    "returnStatus": "NONE",
    "hasPendingReturn": True,
    "hasRefundingReturn": False,
    "totalBeforeRefund": 840000,
    "refundAmount": 0,
    "shippingAddress": None,
    "items": [
        {
            **SEED_DETAILS["items"][0],
            "quantityReturned": 0,
            "iccids": ["89812003916820397854", "89812003916820392108"],
            "spu": "SPU00001",
        }
    ],
    "returns": [RETURN],
}

ESIM_STATUS_NEW: dict[str, Any] = {
    "iccid": "89812003916820397854",
    "activityLogs": [
        {"eid": "", "recordTime": "2026-09-01T10:00:00.000Z", "status": "NOT_DOWNLOADED"},
        {"eid": "8904903200000100", "recordTime": "2026-09-02T08:00:00.000Z", "status": "ENABLED"},
        {
            "eid": "8904903200000100",
            "recordTime": "2026-09-02T07:59:00.000Z",
            "status": "INSTALLED",
        },
    ],
    "usageInfoList": [
        {"usedDate": "20260902", "usageAmt": 104857600},
        {"usedDate": "2026-09-03", "usageAmt": 52428800},
    ],
    "simStatus": {
        "planStartTime": "2026-09-02T08:00:00.000Z",
        "planEndTime": "2026-09-10T08:00:00.000Z",
        "remainingDays": 7,
        "usedTraffic": 157286400,
        "planStatus": "IN_USE",
    },
    "productInfo": {
        "sku": "E23XY06GB08DFX",
        "spu": "SPU00001",
        "name": {"vi": "6GB - 8 ngày", "en": "6GB - 8 days"},
        "type": "eSIM",
        "package": "FIXED",
        "days": 8,
        "data": "6GB",
        "apn": "plus.4g",
        "hotsPot": True,
        "throttleSpeed": None,
        "pointContactType": "INTERNET",
        "smsCall": False,
    },
    "orderInfo": {
        "orderId": "658441501843542",
        "trackId": "ref-1",
        "subOrderId": "6740ce7f9d04259159bc6401",
        "subTrackId": "ref-1-0",
        "purchaseDate": "2026-09-01T10:00:00.000Z",
    },
}

ESIM_STATUS_FEB_2026: dict[str, Any] = {
    "iccid": "89812003916820397854",
    "activityLogs": [{"eid": "8904", "recordTime": "2026-02-02T08:00:00Z", "status": 2}],
    "usageInfoList": [{"usedDate": "20260202", "usageAmt": 1048576}],
    "eSimStatus": {
        "planStartTime": "2026-02-02T08:00:00Z",
        "planEndTime": "2026-02-09T08:00:00Z",
        "remainingDays": 6,
        "usedTraffic": 1048576,
        "planStatus": 1,
    },
    "productInfo": {"sku": "E23XY06GB08DFX", "days": 7, "data": "2GB", "package": "FIXED"},
    "orderInfo": {"orderId": "658441501843542", "trackId": "ref-1"},
}

ACCOUNTS: list[dict[str, Any]] = [
    {
        "id": "acc-1",
        "type": "TOP_UP",
        "balance": 12500000,
        "status": "ACTIVE",
        "isBlocked": False,
        "isDefault": True,
        "debtStatement": None,
        "currency": "VND",
        "dueDate": None,
    },
    {
        "id": "acc-2",
        "type": "DEBIT",
        "balance": -840000,
        "status": "ACTIVE",
        "isBlocked": False,
        "isDefault": False,
        "debtStatement": 840000,
        "currency": "VND",
        "dueDate": "2026-10-05",
    },
]

VARIATION: dict[str, Any] = {
    "sku": "E23XY06GB08DFX",
    "name": {"vi": "6GB - 8 ngày", "en": "6GB - 8 days"},
    "price": 270000,
    "priceFloor": 250000,
    "discount": 0,
    "highFlowSize": 6291456,
    "days": 8,
    "package": "FIXED",
    "data": "6GB",
    "throttleSpeed": None,
    "smsCall": True,
    "apn": "plus.4g",
    "pointContactType": "INTERNET",
    "hotsPot": True,
}


def country(iso2: str, continent: str) -> dict[str, Any]:
    return {
        "id": iso2,
        "name": {"vi": iso2, "en": iso2},
        "mcc": iso2,
        "mcc3": iso2 + "X",
        "continent": continent,
    }


def product(
    spu: str, countries: list[dict[str, Any]], regions: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "spu": spu,
        "createdAt": "2026-01-05T03:00:00.000Z",
        "updatedAt": "2026-01-05T03:00:00.000Z",
        "name": {"vi": f"eSIM {spu}", "en": f"eSIM {spu}"},
        "slug": {"vi": spu.lower(), "en": spu.lower()},
        "metadata": {"vi": "", "en": "<p>Activates on arrival &amp; works.</p>"},
        "type": "eSIM",
        "thumbnail": "https://files.example/p.png",
        "regions": regions,
        "countries": countries,
        "variations": [VARIATION],
        **extra,
    }


# -- harness -----------------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


class Upstream:
    """A scripted SimplifyTrip: routes by (method, path) and records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, payload: Any = None, status: int = 200) -> None:
        self.routes[(method, path)] = lambda _: httpx.Response(status, json=payload)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx.Response(
                404,
                json={
                    "timestamp": 1,
                    "statusCode": 404,
                    "errorCode": "NOT_FOUND",
                    "message": "No eligible order or request found",
                },
            )
        return route(request)

    def client(self, **kwargs: Any) -> SimplifyTripClient:
        http = httpx.AsyncClient(
            transport=httpx.MockTransport(self.handler),
            base_url="https://merchant.simplifytrip.com",
        )
        return SimplifyTripClient(
            http, api_key=API_KEY, secret_key=SECRET_KEY, checksum_key=CHECKSUM_KEY, **kwargs
        )


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


SECRETS = (API_KEY, SECRET_KEY, CHECKSUM_KEY, ACTIVATION, LPA, "15095300")


def secrets_in(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


# -- models ------------------------------------------------------------------------------


def test_the_seed_create_answer_without_statuses_parses() -> None:
    created = STCreatedOrder.from_json(SEED_CREATE_200)
    assert created.order_id == "658441501843542"
    assert created.track_id == "b4b08205-836e-4296-a054-52462089edf6"
    assert created.status is None and created.success
    (item,) = created.items
    assert (item.sub_order_id, item.sub_track_id, item.sku, item.quantity, item.type) == (
        "6740ce7f9d04259159bc6401",
        "958acd57-182f-4b5c-b408-5e93f646ddde",
        "E23XY06GB08DFX",
        2,
        "eSIM",
    )
    assert item.status is None


def test_the_201_create_answer_carries_order_and_item_statuses() -> None:
    created = STCreatedOrder.from_json(CREATE_201)
    assert created.status == "PROCESSING"
    assert created.items[0].status == "PROCESSING"


def test_the_seed_cancel_answer_parses() -> None:
    cancelled = STCancelledOrder.from_json(SEED_CANCEL)
    assert cancelled.status == "CANCELED" and cancelled.reason == "Order canceled by user"
    assert cancelled.created_at == datetime(2024, 11, 22, 18, 33, 35, 127000, tzinfo=UTC)
    assert cancelled.items[0].status == "CANCELED" and cancelled.items[0].quantity == 2


def test_the_seed_order_details_parse_with_both_esims() -> None:
    order = STOrder.from_json(SEED_DETAILS)
    assert order.status == "SUCCESS" and order.error is None
    assert order.total == Decimal(840000)
    assert order.created_at is not None and order.created_at.tzinfo is not None
    (item,) = order.items
    assert item.price == Decimal(420000) and item.quantity == 2
    first = item.esims[0]
    assert first.iccid == "89812003916820397854"
    assert first.qr_code_content == LPA
    assert first.activation_code == ACTIVATION
    assert first.smdp_address == "SECSMSMINIAPP.EASTCOMPEACE.COM"
    assert (first.pin, first.puk, first.plan_apn) == ("1234", "15095300", "plus.4g")
    assert first.qr_code_img is not None and first.qr_code_img.endswith(".png")
    assert order.returns == ()


def test_newer_order_details_carry_return_fields_and_returns() -> None:
    order = STOrder.from_json(DETAILS_NEW)
    assert order.return_status == "NONE" and order.has_pending_return
    assert order.total_before_refund == Decimal(840000) and order.refund_amount == Decimal(0)
    assert order.succeeded_at == datetime(2024, 11, 22, 18, 33, 40, tzinfo=UTC)
    assert order.items[0].iccids == ("89812003916820397854", "89812003916820392108")
    (request,) = order.returns
    assert request.return_track_id == "partner-return-001" and request.status == "REQUESTED"
    assert request.refund_fee == Decimal(15000) and request.refund_amount == Decimal(405000)
    assert request.items[0].iccids == ("89812003916820397854",)
    assert request.items[0].sub_order_id == "6740ce7f9d04259159bc6401"


def test_return_items_keyed_order_item_id_are_read_too() -> None:
    body = {**RETURN, "items": [{"orderItemId": "item-9", "iccids": ["1"], "quantity": 1}]}
    order = STOrder.from_json({**SEED_DETAILS, "returns": [body]})
    assert order.returns[0].items[0].sub_order_id == "item-9"


def test_the_newer_esim_status_converts_bytes_to_mb_and_picks_the_latest_activity() -> None:
    status = STEsimStatus.from_json(ESIM_STATUS_NEW)
    assert status.activity_status == "ENABLED"
    assert status.sim_status is not None
    assert status.sim_status.plan_status == "IN_USE"
    assert status.sim_status.used_mb == Decimal("150.00")
    assert status.used_mb == Decimal("150.00")
    assert status.sim_status.plan_end == datetime(2026, 9, 10, 8, tzinfo=UTC)
    assert [u.used_date for u in status.usage_info_list] == [date(2026, 9, 2), date(2026, 9, 3)]
    assert [u.usage_mb for u in status.usage_info_list] == [Decimal(100), Decimal(50)]
    assert status.product_info is not None and status.product_info.data_mb == 6144
    assert status.order_info is not None and status.order_info.order_id == "658441501843542"


def test_the_feb_2026_esim_status_with_numbers_and_esimstatus_key_parses() -> None:
    status = STEsimStatus.from_json(ESIM_STATUS_FEB_2026)
    assert status.activity_status == "INSTALLED"
    assert status.sim_status is not None and status.sim_status.plan_status == "IN_USE"
    assert status.used_mb == Decimal("1.00")
    assert status.order_info is not None and status.order_info.track_id == "ref-1"


@pytest.mark.parametrize(
    ("number", "activity", "plan"),
    [(0, "NOT_DOWNLOADED", "UNUSED"), (3, "ENABLED", "UNAVAILABLE"), (5, "DELETED", "5")],
)
def test_numeric_statuses_map_to_the_documented_names(
    number: int, activity: str, plan: str
) -> None:
    status = STEsimStatus.from_json(
        {
            "iccid": "1",
            "activityLogs": [{"status": number}],
            "simStatus": {"planStatus": number},
        }
    )
    assert status.activity_status == activity
    assert status.sim_status is not None and status.sim_status.plan_status == plan


def test_usage_falls_back_to_the_daily_list_when_the_plan_has_no_total() -> None:
    status = STEsimStatus.from_json({**ESIM_STATUS_NEW, "simStatus": {"planStatus": "IN_USE"}})
    assert status.used_mb == Decimal("150.00")
    assert STEsimStatus.from_json({"iccid": "1"}).used_mb is None


def test_accounts_parse_as_a_bare_array() -> None:
    accounts = [STAccount.from_json(a) for a in ACCOUNTS]
    assert accounts[0].balance == Decimal(12500000) and accounts[0].is_default
    assert accounts[1].type == "DEBIT" and accounts[1].balance == Decimal(-840000)
    assert accounts[1].due_date == date(2026, 10, 5)


def test_a_product_page_parses_countries_regions_and_variations() -> None:
    page = STPage.from_json(
        {
            "total": 1,
            "skip": 0,
            "take": 10,
            "items": [product("SPU1", [country("jp", "Asia")], [])],
        },
        STProduct.from_json,
    )
    assert (page.total, page.skip, page.take, len(page)) == (1, 0, 10, 1)
    (item,) = page.items
    assert item.countries[0].id == "JP" and item.countries[0].iso3 == "JPX"
    assert item.notes == "Activates on arrival & works."
    variation = item.variations[0]
    assert variation.price == Decimal(270000) and variation.data_mb == 6144
    assert variation.hotspot and variation.sms_call and variation.package == "FIXED"


@pytest.mark.parametrize(
    ("high_flow", "text", "expected"),
    [
        (2097152, "2GB", (2048, False)),
        (None, "5GB", (5120, False)),
        (None, "1.5 GB", (1536, False)),
        (None, "500MB", (500, False)),
        (None, "2GB/day", (2048, False)),
        (None, "Unlimited", (None, True)),
        (1048576, "Unlimited", (None, True)),
        (None, None, (None, False)),
        ("abc", "lots", (None, False)),
    ],
)
def test_data_allowance_reads_highflowsize_kb_or_the_data_text(
    high_flow: Any, text: str | None, expected: tuple[int | None, bool]
) -> None:
    assert data_allowance(high_flow, text) == expected


def test_a_variation_without_a_price_is_a_wire_format_error_naming_no_value() -> None:
    with pytest.raises(WireFormatError) as caught:
        STVariation.from_json({"sku": "SKU-SECRET-ISH", "days": 1})
    assert "price" in str(caught.value)


def test_esim_reprs_hide_credentials() -> None:
    order = STOrder.from_json(SEED_DETAILS)
    assert secrets_in(repr(order)) == []
    assert secrets_in(repr(STEsim.from_json(SEED_DETAILS["items"][0]["eSims"][0]))) == []


# -- errors ------------------------------------------------------------------------------


def test_the_documented_error_body_gives_its_code_and_message() -> None:
    body = {
        "timestamp": 1732300415127,
        "statusCode": 400,
        "errorCode": "BAD_REQUEST",
        "message": "Please do not leave blank: trackId",
    }
    assert parse_simplifytrip_error(400, body, json.dumps(body)) == (
        "BAD_REQUEST",
        "Please do not leave blank: trackId",
    )


def test_a_list_of_messages_is_joined() -> None:
    body = {"statusCode": 400, "errorCode": "BAD_REQUEST", "message": ["a is bad", "b is bad"]}
    assert parse_simplifytrip_error(400, body, "") == ("BAD_REQUEST", "a is bad; b is bad")


@pytest.mark.parametrize("body", [None, ["x"], {"detail": "nope"}, "text"])
def test_a_body_that_is_not_the_documented_one_gives_the_status_and_text(body: Any) -> None:
    assert parse_simplifytrip_error(502, body, " <html>Bad gateway</html> ") == (
        "HTTP_502",
        "<html>Bad gateway</html>",
    )
    assert parse_simplifytrip_error(503, None, "") == ("HTTP_503", "HTTP_503")


async def test_a_404_is_not_found_with_the_providers_code(upstream: Upstream) -> None:
    with pytest.raises(NotFound) as caught:
        await upstream.client().get_order("missing")
    assert caught.value.status == 404 and caught.value.error_code == "NOT_FOUND"
    assert caught.value.message == "No eligible order or request found"
    assert not caught.value.retryable


async def test_a_500_with_an_html_body_is_a_retryable_provider_error(upstream: Upstream) -> None:
    upstream.routes[("GET", "/api/v1/accounts")] = lambda _: httpx.Response(
        500, text="<html>oops</html>"
    )
    with pytest.raises(ProviderError) as caught:
        await upstream.client().accounts()
    assert caught.value.error_code == "HTTP_500" and caught.value.retryable
    assert caught.value.provider == "simplifytrip"


async def test_a_429_carries_retry_after(upstream: Upstream) -> None:
    upstream.routes[("GET", "/api/v1/accounts")] = lambda _: httpx.Response(
        429,
        headers={"retry-after": "3"},
        json={"statusCode": 429, "errorCode": "TOO_MANY_REQUESTS", "message": "Slow down"},
    )
    with pytest.raises(ProviderError) as caught:
        await upstream.client().accounts()
    assert caught.value.error_code == "TOO_MANY_REQUESTS" and caught.value.retry_after == 3.0


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

    upstream.routes[("POST", "/api/v1/orders")] = fail
    with pytest.raises(ProviderUnavailable) as caught:
        await upstream.client().create_order("ref-1", [("ref-1-0", "SKU", 1)])
    assert caught.value.sent is sent


async def test_a_success_without_json_or_in_the_wrong_shape_is_provider_unavailable(
    upstream: Upstream,
) -> None:
    upstream.routes[("GET", "/api/v1/orders/x")] = lambda _: httpx.Response(200, text="<html>")
    with pytest.raises(ProviderUnavailable):
        await upstream.client().get_order("x")
    upstream.on("GET", "/api/v1/orders/y", {"items": [{"eSims": [{"activationCode": ACTIVATION}]}]})
    with pytest.raises(ProviderUnavailable) as caught:
        await upstream.client().get_order("y")
    assert secrets_in(str(caught.value)) == []
    upstream.on("GET", "/api/v1/accounts", {"items": []})
    with pytest.raises(ProviderUnavailable):
        await upstream.client().accounts()


async def test_secrets_echoed_in_an_error_message_are_redacted(upstream: Upstream) -> None:
    upstream.on(
        "POST",
        "/api/v1/orders",
        {
            "statusCode": 401,
            "errorCode": "UNAUTHORIZED",
            "message": f"key {API_KEY} / Bearer {SECRET_KEY} / {CHECKSUM_KEY} / {LPA}",
        },
        status=401,
    )
    client = upstream.client()
    with pytest.raises(ProviderError) as caught:
        await client.create_order("ref-1", [("ref-1-0", "SKU", 1)])
    assert secrets_in(str(caught.value)) == [] and secrets_in(repr(caught.value)) == []
    assert secrets_in(repr(client)) == [] and secrets_in(repr(SimplifyTripGateway(client))) == []


# -- requests as sent --------------------------------------------------------------------


async def test_every_request_carries_the_key_headers_and_gets_are_unsigned(
    upstream: Upstream,
) -> None:
    upstream.on("GET", "/api/v1/accounts", ACCOUNTS)
    await upstream.client().accounts()
    (request,) = upstream.requests
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert "x-signature" not in request.headers


async def test_the_signature_header_signs_the_bytes_actually_sent(upstream: Upstream) -> None:
    upstream.on("POST", "/api/v1/orders", CREATE_201, status=201)
    upstream.on("POST", "/api/v1/orders/cancel", SEED_CANCEL, status=201)
    upstream.on("POST", "/api/v1/return-requests", RETURN, status=201)
    client = upstream.client()
    await client.create_order(
        "ref-1", [("ref-1-0", "E23XY06GB08DFX", 2), ("ref-1-1", "EJPXX05GB07DFX", 1)]
    )
    await client.cancel_order("658441501843542", "Hủy đơn 😀")
    await client.create_return("ret-1", "658441501843542", [("ref-1-0", ["8981"], None)])
    assert len(upstream.requests) == 3
    for request in upstream.requests:
        sent = json.loads(request.content)
        assert request.headers["x-signature"] == simplifytrip_signature(sent, CHECKSUM_KEY)
        assert request.headers["content-type"] == "application/json"
    create, cancel, ret = (json.loads(r.content) for r in upstream.requests)
    assert create == {
        "trackId": "ref-1",
        "items": [
            {"subTrackId": "ref-1-0", "sku": "E23XY06GB08DFX", "quantity": 2},
            {"subTrackId": "ref-1-1", "sku": "EJPXX05GB07DFX", "quantity": 1},
        ],
    }
    assert cancel == {"orderId": "658441501843542", "reason": "Hủy đơn 😀"}
    assert ret == {
        "returnTrackId": "ret-1",
        "orderId": "658441501843542",
        "items": [{"subOrderId": "ref-1-0", "iccids": ["8981"]}],
    }


async def test_optional_fields_are_sent_only_when_given(upstream: Upstream) -> None:
    upstream.on("POST", "/api/v1/orders", CREATE_201, status=201)
    await upstream.client().create_order(
        "ref-1", [("ref-1-0", "SKU", 1)], "EMAIL", "a@example.com", "An Nguyen"
    )
    sent = json.loads(upstream.requests[0].content)
    assert (sent["deliveryType"], sent["customerEmail"], sent["customerName"]) == (
        "EMAIL",
        "a@example.com",
        "An Nguyen",
    )


async def test_path_ids_are_encoded_so_they_cannot_change_the_path(upstream: Upstream) -> None:
    with pytest.raises(NotFound):
        await upstream.client().get_order("../accounts?x=1")
    assert upstream.requests[0].url.raw_path == b"/api/v1/orders/..%2Faccounts%3Fx%3D1"


async def test_all_products_pages_until_the_total_is_reached(upstream: Upstream) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        skip = int(request.url.params["skip"])
        take = int(request.url.params["take"])
        items = [
            product(f"SPU{i}", [country("JP", "Asia")], [])
            for i in range(skip, min(skip + take, 5))
        ]
        return httpx.Response(200, json={"total": 5, "skip": skip, "take": take, "items": items})

    upstream.routes[("GET", "/api/v1/products")] = page
    found = await upstream.client().all_products(page_size=2)
    assert [p.spu for p in found] == [f"SPU{i}" for i in range(5)]
    assert [dict(r.url.params) for r in upstream.requests] == [
        {"type": "eSIM", "take": "2", "skip": str(skip)} for skip in (0, 2, 4)
    ]


async def test_all_products_stops_at_an_empty_page(upstream: Upstream) -> None:
    upstream.on("GET", "/api/v1/products", {"total": 99, "skip": 0, "take": 100, "items": []})
    assert await upstream.client().all_products() == []
    assert len(upstream.requests) == 1


async def test_reads_use_the_read_timeout_and_posts_the_write_timeout(upstream: Upstream) -> None:
    upstream.on("GET", "/api/v1/accounts", ACCOUNTS)
    upstream.on("POST", "/api/v1/orders", CREATE_201, status=201)
    client = upstream.client(timeouts=Timeouts(read=1.5, write=7.0, connect=0.5))
    await client.accounts()
    await client.create_order("ref-1", [("ref-1-0", "SKU", 1)])
    read, write = (r.extensions["timeout"] for r in upstream.requests)
    assert read["read"] == 1.5 and read["connect"] == 0.5
    assert write["read"] == 7.0


# -- gateway mapping ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("NEW", OrderState.PENDING),
        ("PROCESSING", OrderState.PROCESSING),
        ("CONFIRMED", OrderState.PROCESSING),
        ("DELIVERING", OrderState.PROCESSING),
        ("SUCCESS", OrderState.COMPLETED),
        ("ERROR", OrderState.FAILED),
        ("CANCELED", OrderState.CANCELLED),
        ("REFUNDED", OrderState.REFUNDED),
        ("PARTIALLY_REFUNDED", OrderState.PARTIALLY_REFUNDED),
        ("REFUNDING", OrderState.PROCESSING),
        ("SOMETHING_NEW", OrderState.PROCESSING),
        (None, OrderState.PROCESSING),
    ],
)
async def test_order_statuses_map_as_design_says_and_the_raw_value_is_kept(
    upstream: Upstream, raw: str | None, state: OrderState
) -> None:
    assert order_state(raw) is state
    if raw is None:
        return
    details = {**SEED_DETAILS, "status": raw, "error": "Out of stock"}
    upstream.on("GET", "/api/v1/orders/o1", details)
    order = await SimplifyTripGateway(upstream.client()).get_order("o1")
    assert order.state is state and order.provider_status == raw
    assert order.failure_reason == ("Out of stock" if state is OrderState.FAILED else None)


def test_the_status_table_is_exactly_the_designed_one() -> None:
    assert len(ORDER_STATES) == 10
    assert SIMPLIFYTRIP_CAPABILITIES.topup and SIMPLIFYTRIP_CAPABILITIES.refund
    assert not SIMPLIFYTRIP_CAPABILITIES.instant_fulfilment
    assert not SIMPLIFYTRIP_CAPABILITIES.order_listing


async def test_order_details_become_lines_and_esim_profiles(upstream: Upstream) -> None:
    upstream.on("GET", "/api/v1/orders/658441501843542", SEED_DETAILS)
    gateway = SimplifyTripGateway(upstream.client())
    assert isinstance(gateway, ProviderGateway)
    order = await gateway.get_order("658441501843542")
    assert order.state is OrderState.COMPLETED and order.esims_included
    assert order.total is not None and order.total.amount == Decimal(840000)
    assert order.total.currency == "VND"
    (line,) = order.lines
    assert line.unit_price is not None and line.unit_price.amount == Decimal(420000)
    assert line.sub_reference == "958acd57-182f-4b5c-b408-5e93f646ddde"
    profile = order.esims[0]
    assert profile.lpa == LPA and profile.activation_code == ACTIVATION
    assert profile.qr_code_url == SEED_DETAILS["items"][0]["eSims"][0]["qrCodeImg"]
    assert profile.ios_install_url == (
        f"https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={LPA}"
    )
    assert profile.android_install_url == (
        f"https://esimsetup.android.com/esim_qrcode_provisioning?carddata={LPA}"
    )
    assert (profile.pin, profile.puk, profile.apn) == ("1234", "15095300", "plus.4g")
    assert profile.order_reference == "b4b08205-836e-4296-a054-52462089edf6"
    assert await gateway.order_esims(order) == order.esims
    assert len(upstream.requests) == 1  # the profiles were already there
    assert secrets_in(repr(order)) == []


async def test_the_older_create_answer_reads_as_processing(upstream: Upstream) -> None:
    upstream.on("POST", "/api/v1/orders", SEED_CREATE_200)
    gateway = SimplifyTripGateway(upstream.client())
    order = await gateway.submit_order(
        PlaceOrder("b4b08205", (OrderLineRequest("E23XY06GB08DFX", 2),))
    )
    assert order.state is OrderState.PROCESSING and order.provider_status == "PROCESSING"
    assert not order.esims_included
    sent = json.loads(upstream.requests[0].content)
    assert sent["trackId"] == "b4b08205" and sent["items"][0]["subTrackId"] == "b4b08205-0"


async def test_an_older_physical_sim_create_answer_reads_as_pending(upstream: Upstream) -> None:
    body = {**SEED_CREATE_200, "items": [{**SEED_CREATE_200["items"][0], "type": "SIM"}]}
    upstream.on("POST", "/api/v1/orders", body)
    order = await SimplifyTripGateway(upstream.client()).submit_order(
        PlaceOrder("r", (OrderLineRequest("S1", 1),))
    )
    assert order.state is OrderState.PENDING and order.provider_status == "NEW"


async def test_catalog_packages_map_every_field(upstream: Upstream) -> None:
    daily = {
        **VARIATION,
        "sku": "D1",
        "package": "DAILY",
        "data": "2GB/day",
        "highFlowSize": 2097152,
        "throttleSpeed": "512Kbps",
    }
    unlimited = {**VARIATION, "sku": "U1", "data": "Unlimited", "highFlowSize": None, "name": None}
    items = [
        product("LOCAL", [country("JP", "Asia")], [], variations=[VARIATION, daily, unlimited]),
        product(
            "REGION",
            [country("SG", "Asia"), country("MY", "Asia")],
            [{"id": "SIN-MYS-IDN", "name": {"en": "Singapore - Malaysia"}}],
        ),
        product(
            "WORLD",
            [
                country("US", "North America"),
                country("FR", "Europe"),
                country("JP", "Asia"),
                country("AU", "Oceania"),
            ],
            [],
        ),
        product(
            "NAMED",
            [country("US", "North America")],
            [{"id": "GLOBAL-60", "name": {"en": "Global"}}],
        ),
        product("PHYSICAL", [country("VN", "Asia")], [], type="SIM"),
    ]
    upstream.on(
        "GET", "/api/v1/products", {"total": len(items), "skip": 0, "take": 100, "items": items}
    )
    catalog = await SimplifyTripGateway(upstream.client()).catalog()
    packages = {f"{p.package_id}@{p.region_code or p.country_codes[0]}": p for p in catalog}
    fixed = packages["E23XY06GB08DFX@JP"]
    assert fixed.name == "6GB - 8 days" and fixed.days == 8 and fixed.data_mb == 6144
    assert fixed.price.amount == Decimal(270000) and fixed.price.currency == "VND"
    assert fixed.destination is DestinationKind.LOCAL and fixed.country_codes == ("JP",)
    assert fixed.sms and fixed.voice and fixed.hotspot and not fixed.daily and not fixed.topup
    assert fixed.notes == ("Activates on arrival & works.",)
    assert packages["D1@JP"].daily and packages["D1@JP"].data_mb == 2048
    assert packages["D1@JP"].throttle == "512Kbps"
    assert packages["U1@JP"].unlimited and packages["U1@JP"].data_mb is None
    assert packages["U1@JP"].name == "eSIM LOCAL Unlimited 8 days"
    regional = packages["E23XY06GB08DFX@SIN-MYS-IDN"]
    assert regional.destination is DestinationKind.REGIONAL
    assert regional.region_name == "Singapore - Malaysia" and regional.country_codes == ("SG", "MY")
    assert packages["E23XY06GB08DFX@US"].destination is DestinationKind.GLOBAL
    assert packages["E23XY06GB08DFX@GLOBAL-60"].destination is DestinationKind.GLOBAL
    assert "E23XY06GB08DFX@VN" not in packages  # physical SIMs are not in the eSIM catalog


async def test_usage_balances_and_topups_map_to_neutral_models(upstream: Upstream) -> None:
    upstream.on("GET", "/api/v1/products/esim/89812003916820397854", ESIM_STATUS_NEW)
    upstream.on("GET", "/api/v1/accounts", ACCOUNTS)
    recharged = {**SEED_CREATE_200["items"][0], "type": "SIM_RECHARGE"}
    upstream.on("POST", "/api/v1/orders/recharge", {**SEED_CREATE_200, "items": [recharged]}, 201)
    gateway = SimplifyTripGateway(upstream.client())
    usage = await gateway.usage("89812003916820397854")
    assert usage.status == "IN_USE" and usage.data_used_mb == Decimal("150.00")
    assert usage.data_allowed_mb == Decimal(6144) and usage.data_remaining_mb == Decimal("5994.00")
    assert usage.plan_start == datetime(2026, 9, 2, 8, tzinfo=UTC)
    balances = await gateway.balances()
    assert [(b.account_id, b.kind, b.balance.amount) for b in balances] == [
        ("acc-1", "TOP_UP", Decimal(12500000)),
        ("acc-2", "DEBIT", Decimal(-840000)),
    ]
    topup = await gateway.submit_topup(TopupRequest("top-1", "8986001", "RCNX05GB07DFX"))
    assert topup.state is OrderState.COMPLETED  # recharges are synchronous
    sent = json.loads(upstream.requests[-1].content)
    assert sent == {
        "trackId": "top-1",
        "items": [{"subTrackId": "top-1-0", "sku": "RCNX05GB07DFX", "iccids": ["8986001"]}],
    }


async def test_a_daily_plan_has_no_total_allowance(upstream: Upstream) -> None:
    daily = {**ESIM_STATUS_NEW["productInfo"], "package": "DAILY"}
    status = {**ESIM_STATUS_NEW, "productInfo": daily}
    upstream.on("GET", "/api/v1/products/esim/1", status)
    usage = await SimplifyTripGateway(upstream.client()).usage("1")
    assert usage.data_allowed_mb is None and usage.data_remaining_mb is None
    assert usage.data_used_mb == Decimal("150.00")


async def test_find_order_is_none_when_the_track_id_is_unknown(upstream: Upstream) -> None:
    gateway = SimplifyTripGateway(upstream.client())
    assert await gateway.find_order("never-sent") is None
    upstream.on("GET", "/api/v1/orders/658441501843542", SEED_DETAILS)
    # an order found by SimplifyTrip's own id is not the one we sent under that reference
    assert await gateway.find_order("658441501843542") is None
