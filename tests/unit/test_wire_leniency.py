"""The wire models read every odd form the hand-written readers they replaced read.

Those readers (`git show ad2952f:src/esim_gateway/providers/*/models.py`) took `null` for
any field, numbers where text is documented, `"yes"` for booleans, Unix milliseconds,
non-lists where lists are expected... Each case pins, value by value, what they made of
one such form; a refusal instead would turn a provider's answer (on a purchase: "it is
done") into `ProviderUnavailable` ("outcome unknown").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from esim_gateway.providers._http import Timeouts
from esim_gateway.providers.roamify import RoamifyClient
from esim_gateway.providers.roamify.models import (
    RoamifyBalance,
    RoamifyCountry,
    RoamifyEsim,
    RoamifyHealth,
    RoamifyOrder,
    RoamifyPackage,
    RoamifyPackagePage,
    RoamifyRate,
    RoamifyTopupPackage,
    RoamifyUsage,
)
from esim_gateway.providers.simplifytrip.models import (
    STAccount,
    STCreatedOrder,
    STEsimStatus,
    STOrder,
    STPage,
    STProduct,
    STReturnRequest,
    STVariation,
)
from esim_gateway.providers.wire import WireFormatError, decode

ESIM: dict[str, Any] = {
    "id": "esim-1",
    "iccid": "8910300000000000001",
    "status": "active",
    "withTopUp": True,
    "esim": {"lpaCode": "LPA:1$lpa.example$CODE", "pin": "1234"},
    "apn": {"apnAutomatic": True, "apnName": "internet"},
    "data": {"isUnlimited": False, "dataAmount": 1, "dataUnit": "GB"},
    "call": {"withCall": True, "callAmount": 10},
    "notes": ["Works in France"],
    "createdAt": 1731837535,
}
ORDER: dict[str, Any] = {
    "id": "order-1",
    "status": "completed",
    "total": 5,
    "currency": "usd",
    "items": [{"packageId": "pkg-1", "esimId": "esim-1", "price": 5}],
    "createdAt": 1731837535,
}
PACKAGE: dict[str, Any] = {
    "packageId": "pkg-1",
    "package": "France 1GB",
    "day": 7,
    "price": 4.5,
    "dataAmount": 1,
    "dataUnit": "GB",
    "countryCode": "FR",
    "signals": [{"code": "fr"}],
    "withUsageCheck": False,
    "throttle": {"throttleSpeed": 512, "throttleSpeedUnit": "Kbps"},
    "requirements": {"travelDate": True},
    "notes": ["Works in France"],
}
TOPUP: dict[str, Any] = {"packageId": "top-1", "price": 2, "data": {"dataAmount": 500}}
USAGE: dict[str, Any] = {
    "iccid": "8910300000000000001",
    "allowedData": 1024,
    "remainingData": 512,
    "allowedSms": 10,
    "dataUsages": [{"date": "20250102", "usage": 12.5}],
}

ST_ORDER: dict[str, Any] = {
    "id": "order-1",
    "status": "SUCCEEDED",
    "total": 150000,
    "hasPendingReturn": False,
    "createdAt": "2024-11-22T18:33:40.000Z",
    "items": [
        {
            "id": "item-1",
            "sku": "SKU-1",
            "quantity": 1,
            "iccids": ["8981"],
            "eSims": [{"iccid": "8981"}],
        }
    ],
}
ST_VARIATION: dict[str, Any] = {"sku": "SKU-1", "price": 150000, "days": 7, "data": "5GB"}
ST_CREATED: dict[str, Any] = {
    "orderId": "order-1",
    "trackId": "track-1",
    "items": [{"subOrderId": "sub-1", "sku": "SKU-1", "quantity": 1}],
}
ST_RETURN: dict[str, Any] = {"id": "ret-1", "status": "REQUESTED", "refundFee": 1000}
ST_STATUS: dict[str, Any] = {
    "iccid": "8981",
    "activityLogs": [{"status": "INSTALLED", "recordTime": "2024-11-22T18:33:40Z"}],
    "simStatus": {"planStatus": "IN_USE", "usedTraffic": 1048576},
    "usageInfoList": [{"usedDate": "2025-01-02", "usageAmt": 1048576}],
}
ST_ACCOUNT: dict[str, Any] = {"id": "acc-1", "balance": 100, "type": "top_up"}
ST_PRODUCT: dict[str, Any] = {
    "spu": "SPU-1",
    "name": {"en": "France"},
    "variations": [ST_VARIATION],
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def _item(**changes: Any) -> dict[str, Any]:
    return _with(ORDER, items=[{**ORDER["items"][0], **changes}])


def _st_item(**changes: Any) -> dict[str, Any]:
    return _with(ST_ORDER, items=[{**ST_ORDER["items"][0], **changes}])


def _at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


esim, order, package, usage = (
    RoamifyEsim.from_json,
    RoamifyOrder.from_json,
    RoamifyPackage.from_json,
    RoamifyUsage.from_json,
)
Case = tuple[Callable[[Any], Any], dict[str, Any], Callable[[Any], Any], Any]

#: Roamify: (parse, body, what to read, what the hand-written readers read)
ROAMIFY: dict[str, Case] = {
    # null where the field has a non-null default reads as absent
    "a null eSIM status is UNKNOWN": (
        esim,
        _with(ESIM, status=None),
        lambda e: e.status,
        "UNKNOWN",
    ),
    "a null withTopUp is false": (esim, _with(ESIM, withTopUp=None), lambda e: e.with_topup, False),
    "a null withUsageCheck is true": (
        esim,
        _with(ESIM, withUsageCheck=None),
        lambda e: e.with_usage_check,
        True,
    ),
    "a null esim object means no credentials": (
        esim,
        _with(ESIM, esim=None),
        lambda e: e.lpa,
        None,
    ),
    "a null apn object means no APN": (esim, _with(ESIM, apn=None), lambda e: e.apn.name, None),
    "a null call object means no calls": (
        esim,
        _with(ESIM, call=None),
        lambda e: e.call.included,
        False,
    ),
    "a null data object is limited": (esim, _with(ESIM, data=None), lambda e: e.unlimited, False),
    "null notes are none": (esim, _with(ESIM, notes=None), lambda e: e.notes, ()),
    "a null createdAt is none": (esim, _with(ESIM, createdAt=None), lambda e: e.created_at, None),
    "a null order total is 0": (order, _with(ORDER, total=None), lambda o: o.total, Decimal(0)),
    "a null order status is PENDING": (
        order,
        _with(ORDER, status=None),
        lambda o: o.status,
        "PENDING",
    ),
    "a null currency is USD": (order, _with(ORDER, currency=None), lambda o: o.currency, "USD"),
    "null order items are none": (order, _with(ORDER, items=None), lambda o: o.items, ()),
    "null order esims are none": (order, _with(ORDER, esims=None), lambda o: o.esims, ()),
    "a null item price is 0": (order, _item(price=None), lambda o: o.items[0].price, Decimal(0)),
    "a null package price is 0": (
        package,
        _with(PACKAGE, price=None),
        lambda p: p.price,
        Decimal(0),
    ),
    "a null package day is 0": (package, _with(PACKAGE, day=None), lambda p: p.days, 0),
    "a null package withUsageCheck is true": (
        package,
        _with(PACKAGE, withUsageCheck=None),
        lambda p: p.with_usage_check,
        True,
    ),
    "a null throttle is none": (package, _with(PACKAGE, throttle=None), lambda p: p.throttle, None),
    "null requirements ask for nothing": (
        package,
        _with(PACKAGE, requirements=None),
        lambda p: p.requires_travel_date,
        False,
    ),
    "null signals cover nothing": (
        package,
        _with(PACKAGE, signals=None),
        lambda p: p.covered_codes,
        (),
    ),
    "a null isUnlimited is limited": (
        usage,
        _with(USAGE, isUnlimited=None),
        lambda u: u.unlimited_data,
        False,
    ),
    "null dataUsages are none": (
        usage,
        _with(USAGE, dataUsages=None),
        lambda u: u.data_usages,
        None,
    ),
    "a null daily usage is 0": (
        usage,
        _with(USAGE, dataUsages=[{"date": "20250102", "usage": None}]),
        lambda u: u.data_usages[0].usage,
        Decimal(0),
    ),
    "a null top-up data object is limited": (
        RoamifyTopupPackage.from_json,
        _with(TOPUP, data=None),
        lambda t: (t.unlimited, t.data_mb),
        (False, None),
    ),
    # a number or a boolean where text is documented reads as its text
    "a numeric eSIM id is its text": (esim, _with(ESIM, id=123), lambda e: e.id, "123"),
    "a numeric iccid is its text": (
        esim,
        _with(ESIM, iccid=8910300000000000001),
        lambda e: e.iccid,
        "8910300000000000001",
    ),
    "a boolean status is its text": (esim, _with(ESIM, status=True), lambda e: e.status, "TRUE"),
    "a numeric order id is its text": (order, _with(ORDER, id=42), lambda o: o.id, "42"),
    "a numeric esimId is its text": (order, _item(esimId=7), lambda o: o.esim_ids, ("7",)),
    "a numeric packageId is its text": (
        package,
        _with(PACKAGE, packageId=1001),
        lambda p: p.package_id,
        "1001",
    ),
    "a numeric usage iccid is its text": (
        usage,
        _with(USAGE, iccid=8910),
        lambda u: u.iccid,
        "8910",
    ),
    "a numeric country code is its text": (
        RoamifyCountry.from_json,
        {"code": 33, "name": None},
        lambda c: (c.code, c.name),
        ("33", "33"),
    ),
    "an object where text is documented is none": (
        esim,
        _with(ESIM, iccid={"x": 1}),
        lambda e: e.iccid,
        None,
    ),
    # booleans: yes/no, text, numbers
    "yes is true": (esim, _with(ESIM, withHotspot="yes"), lambda e: e.with_hotspot, True),
    "YES with spaces is true": (
        esim,
        _with(ESIM, withHotspot=" YES "),
        lambda e: e.with_hotspot,
        True,
    ),
    "no is false": (esim, _with(ESIM, withTopUp="no"), lambda e: e.with_topup, False),
    "other text is false": (
        esim,
        _with(ESIM, withUsageCheck="maybe"),
        lambda e: e.with_usage_check,
        False,
    ),
    "blank text is false": (
        esim,
        _with(ESIM, withUsageCheck="  "),
        lambda e: e.with_usage_check,
        False,
    ),
    "an empty string is the default": (
        esim,
        _with(ESIM, withUsageCheck=""),
        lambda e: e.with_usage_check,
        True,
    ),
    "2 is true": (esim, _with(ESIM, withHotspot=2), lambda e: e.with_hotspot, True),
    "0.5 is true": (esim, _with(ESIM, withHotspot=0.5), lambda e: e.with_hotspot, True),
    "0 is false": (esim, _with(ESIM, withTopUp=0), lambda e: e.with_topup, False),
    "yes in a nested object is true": (
        esim,
        _with(ESIM, apn={"apnAutomatic": "yes"}),
        lambda e: e.apn.automatic,
        True,
    ),
    "an empty isAPNAutomatic is unknown": (
        package,
        _with(PACKAGE, isAPNAutomatic=""),
        lambda p: p.apn_automatic,
        None,
    ),
    "yes for isUnlimited is unlimited": (
        usage,
        _with(USAGE, isUnlimited="yes"),
        lambda u: (u.unlimited_data, u.allowed_data),
        (True, Decimal(1024)),
    ),
    # timestamps
    "milliseconds are milliseconds": (
        esim,
        _with(ESIM, createdAt=1731837535000),
        lambda e: e.created_at,
        _at(2024, 11, 17, 9, 58, 55),
    ),
    "milliseconds of the 1970s are milliseconds": (
        esim,
        _with(ESIM, createdAt=150000000000),
        lambda e: e.created_at,
        datetime.fromtimestamp(150000000, UTC),
    ),
    "10^11 itself is seconds": (
        esim,
        _with(ESIM, createdAt=10**11),
        lambda e: e.created_at,
        datetime.fromtimestamp(10**11, UTC),
    ),
    "seconds as text are seconds": (
        esim,
        _with(ESIM, createdAt="1731837535"),
        lambda e: e.created_at,
        _at(2024, 11, 17, 9, 58, 55),
    ),
    "milliseconds as text are milliseconds": (
        esim,
        _with(ESIM, createdAt=" 1731837535000 "),
        lambda e: e.created_at,
        _at(2024, 11, 17, 9, 58, 55),
    ),
    "a bare ISO date is its midnight UTC": (
        esim,
        _with(ESIM, createdAt="2025-01-02"),
        lambda e: e.created_at,
        _at(2025, 1, 2),
    ),
    "an ISO offset is converted to UTC": (
        esim,
        _with(ESIM, createdAt="2025-01-02T10:00:00+02:00"),
        lambda e: (e.created_at, e.created_at.tzinfo),
        (_at(2025, 1, 2, 8), UTC),
    ),
    "an ISO time after 5138 AD stays as written": (
        esim,
        _with(ESIM, createdAt="6000-01-01T00:00:00Z"),
        lambda e: e.created_at,
        _at(6000, 1, 1),
    ),
    "an unreadable time is none": (
        esim,
        _with(ESIM, createdAt="soon"),
        lambda e: e.created_at,
        None,
    ),
    "a boolean time is none": (esim, _with(ESIM, createdAt=True), lambda e: e.created_at, None),
    "an out-of-range time is none": (
        esim,
        _with(ESIM, createdAt=10**20),
        lambda e: e.created_at,
        None,
    ),
    # lists, whole numbers, notes
    "a non-list items is none": (order, _with(ORDER, items="none"), lambda o: o.items, ()),
    "a non-list esims is none": (order, _with(ORDER, esims={"id": "x"}), lambda o: o.esims, ()),
    "non-object signals are skipped": (
        package,
        _with(PACKAGE, signals=[1, "x", {"code": "de"}, {"code": None}]),
        lambda p: p.covered_codes,
        ("DE",),
    ),
    "non-object daily usages are skipped": (
        usage,
        _with(USAGE, dataUsages=[1, None, {"date": "2025-01-02", "usage": "3"}]),
        lambda u: [(d.date, d.usage) for d in u.data_usages],
        [(date(2025, 1, 2), Decimal(3))],
    ),
    "a non-list dataUsages is none": (
        usage,
        _with(USAGE, dataUsages="x"),
        lambda u: u.data_usages,
        None,
    ),
    "blank, null and object notes are dropped, numbers kept as text": (
        esim,
        _with(ESIM, notes=[" a ", "", "  ", None, 5, {"x": 1}, ["y"]]),
        lambda e: e.notes,
        ("a", "5"),
    ),
    "a non-list notes is none": (package, _with(PACKAGE, notes="Works"), lambda p: p.notes, ()),
    "a fractional day is truncated": (package, _with(PACKAGE, day=7.9), lambda p: p.days, 7),
    "a fractional day as text is truncated": (
        package,
        _with(PACKAGE, day="7.9"),
        lambda p: p.days,
        7,
    ),
    "an unreadable day is 0": (package, _with(PACKAGE, day="week"), lambda p: p.days, 0),
    "a fractional call amount is truncated": (
        esim,
        _with(ESIM, call={"withCall": True, "callAmount": 5.5}),
        lambda e: e.call.amount,
        5,
    ),
    "a fractional SMS allowance as text is truncated": (
        usage,
        _with(USAGE, allowedSms="10.7"),
        lambda u: u.allowed_sms,
        10,
    ),
    "an unreadable data amount is none": (
        package,
        _with(PACKAGE, dataAmount="lots"),
        lambda p: (p.data_mb, p.unlimited),
        (None, False),
    ),
    "a NaN daily usage is 0": (
        usage,
        _with(USAGE, dataUsages=[{"date": "2025-01-02", "usage": float("nan")}]),
        lambda u: u.data_usages[0].usage,
        Decimal(0),
    ),
    "a NaN allowance is none": (
        usage,
        _with(USAGE, allowedData="NaN"),
        lambda u: u.allowed_data,
        None,
    ),
    "a non-object throttle is none": (
        package,
        _with(PACKAGE, throttle="fast"),
        lambda p: p.throttle,
        None,
    ),
    "money as text is money": (
        package,
        _with(PACKAGE, price=" 4.50 "),
        lambda p: p.price,
        Decimal("4.50"),
    ),
    "a non-object page pagination gives no total": (
        RoamifyPackagePage.from_json,
        {"packages": [PACKAGE], "pagination": "x", "total": "3.0"},
        lambda p: (p.total, len(p.packages)),
        (3, 1),
    ),
}

#: Roamify forms the hand-written readers refused too
ROAMIFY_REFUSED: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "a price that is not a number": (package, _with(PACKAGE, price="free")),
    "an empty price": (package, _with(PACKAGE, price="")),
    "a boolean total": (order, _with(ORDER, total=True)),
    "a NaN total": (order, _with(ORDER, total=float("nan"))),
    "a non-object order item": (order, _with(ORDER, items=["item"])),
    "a non-object eSIM": (order, _with(ORDER, esims=[1])),
    "a non-object package in a list": (RoamifyPackage.many_from_json, [PACKAGE, 1]),
    "an order without an id": (order, _with(ORDER, id=None)),
    "an eSIM without any id": (esim, _with(ESIM, id=None)),
    "a null balance": (RoamifyBalance.from_json, {"balance": None}),
    "a NaN rate": (RoamifyRate.from_json, {"target": "EUR", "rate": "NaN"}),
    "a page whose packages is an object": (RoamifyPackagePage.from_json, {"packages": {"a": 1}}),
    "a body that is not an object": (order, ["order"]),
}


@pytest.mark.parametrize(
    ("parse", "body", "read", "expected"), ROAMIFY.values(), ids=ROAMIFY.keys()
)
def test_a_roamify_odd_form_reads_as_the_hand_written_readers_read_it(
    parse: Callable[[Any], Any], body: dict[str, Any], read: Callable[[Any], Any], expected: Any
) -> None:
    assert read(parse(body)) == expected


@pytest.mark.parametrize(("parse", "body"), ROAMIFY_REFUSED.values(), ids=ROAMIFY_REFUSED.keys())
def test_a_roamify_form_the_hand_written_readers_refused_is_still_refused(
    parse: Callable[[Any], Any], body: Any
) -> None:
    with pytest.raises(WireFormatError):
        parse(body)


def test_a_roamify_health_status_that_is_an_object_is_no_status() -> None:
    assert RoamifyHealth.from_json(
        {"data": {"status": {"x": 1}}, "status": "down"}
    ) == RoamifyHealth(False, "down")
    assert RoamifyHealth.from_json(["ok"]) == RoamifyHealth(True, None)


st_order, variation, created, returned, status = (
    STOrder.from_json,
    STVariation.from_json,
    STCreatedOrder.from_json,
    STReturnRequest.from_json,
    STEsimStatus.from_json,
)
PLUS_7 = timezone(timedelta(hours=7))

#: SimplifyTrip: (parse, body, what to read, what the hand-written readers read)
SIMPLIFYTRIP: dict[str, Case] = {
    # null where the field has a non-null default
    "a null order status is NEW": (
        st_order,
        _with(ST_ORDER, status=None),
        lambda o: o.status,
        "NEW",
    ),
    "a null hasPendingReturn is false": (
        st_order,
        _with(ST_ORDER, hasPendingReturn=None),
        lambda o: o.has_pending_return,
        False,
    ),
    "null order items are none": (st_order, _with(ST_ORDER, items=None), lambda o: o.items, ()),
    "a null item quantity is 0": (
        st_order,
        _st_item(quantity=None),
        lambda o: o.items[0].quantity,
        0,
    ),
    "null eSims are none": (st_order, _st_item(eSims=None), lambda o: o.items[0].esims, ()),
    "a null refund fee is 0": (
        returned,
        _with(ST_RETURN, refundFee=None),
        lambda r: r.refund_fee,
        Decimal(0),
    ),
    "a null return status is REQUESTED": (
        returned,
        _with(ST_RETURN, status=None),
        lambda r: r.status,
        "REQUESTED",
    ),
    "a null created quantity counts the iccids sent": (
        created,
        _with(
            ST_CREATED,
            items=[{"subOrderId": "s", "sku": "K", "quantity": None, "iccids": ["1", ""]}],
        ),
        lambda c: c.items[0].quantity,
        2,
    ),
    "a null package is FIXED": (
        variation,
        _with(ST_VARIATION, package=None),
        lambda v: v.package,
        "FIXED",
    ),
    "a null smsCall is false": (
        variation,
        _with(ST_VARIATION, smsCall=None),
        lambda v: v.sms_call,
        False,
    ),
    "a null account type is TOP_UP": (
        STAccount.from_json,
        _with(ST_ACCOUNT, type=None),
        lambda a: a.type,
        "TOP_UP",
    ),
    "a null product type is eSIM": (
        STProduct.from_json,
        _with(ST_PRODUCT, type=None),
        lambda p: p.type,
        "eSIM",
    ),
    "a null simStatus falls back to eSimStatus": (
        status,
        _with(ST_STATUS, simStatus=None, eSimStatus={"planStatus": 2}),
        lambda s: s.sim_status.plan_status,
        "EXPIRED",
    ),
    "a non-object simStatus falls back to eSimStatus": (
        status,
        _with(ST_STATUS, simStatus="x", eSimStatus={"planStatus": 1}),
        lambda s: s.sim_status.plan_status,
        "IN_USE",
    ),
    "a null usage amount is 0": (
        status,
        _with(ST_STATUS, usageInfoList=[{"usedDate": "2025-01-02", "usageAmt": None}]),
        lambda s: s.usage_info_list[0].usage_mb,
        Decimal("0.00"),
    ),
    # numbers and booleans where text is documented
    "a numeric order id is its text": (st_order, _with(ST_ORDER, id=123), lambda o: o.id, "123"),
    "a numeric iccid is its text": (
        st_order,
        _st_item(eSims=[{"iccid": 8981}]),
        lambda o: o.items[0].esims[0].iccid,
        "8981",
    ),
    "numeric iccids are text, blanks and nulls dropped": (
        st_order,
        _st_item(iccids=[8981, " ", None, " 8982 "]),
        lambda o: o.items[0].iccids,
        ("8981", "8982"),
    ),
    "a boolean is true or false as text": (
        variation,
        _with(ST_VARIATION, throttleSpeed=True),
        lambda v: v.throttle_speed,
        "true",
    ),
    "a numeric name is its text": (
        STProduct.from_json,
        _with(ST_PRODUCT, name=42),
        lambda p: p.name,
        "42",
    ),
    "a blank localized name falls back to the spu": (
        STProduct.from_json,
        _with(ST_PRODUCT, name="  "),
        lambda p: p.name,
        "SPU-1",
    ),
    "a numeric sku is its text": (variation, _with(ST_VARIATION, sku=777), lambda v: v.sku, "777"),
    # booleans
    "yes is true": (variation, _with(ST_VARIATION, smsCall="yes"), lambda v: v.sms_call, True),
    "no is false": (variation, _with(ST_VARIATION, smsCall="no"), lambda v: v.sms_call, False),
    "2 is true": (variation, _with(ST_VARIATION, smsCall=2), lambda v: v.sms_call, True),
    "an empty string is false": (
        st_order,
        _with(ST_ORDER, hasPendingReturn=""),
        lambda o: o.has_pending_return,
        False,
    ),
    "a null hotsPot is false whatever hotspot says": (
        variation,
        _with(ST_VARIATION, hotsPot=None, hotspot=True),
        lambda v: v.hotspot,
        False,
    ),
    "hotspot yes counts when hotsPot is not sent": (
        variation,
        _with(ST_VARIATION, hotspot="yes"),
        lambda v: v.hotspot,
        True,
    ),
    "success false as text is still success": (
        created,
        _with(ST_CREATED, success="false"),
        lambda c: c.success,
        True,
    ),
    "success 0 is still success": (
        created,
        _with(ST_CREATED, success=0),
        lambda c: c.success,
        True,
    ),
    "success false is failure": (
        created,
        _with(ST_CREATED, success=False),
        lambda c: c.success,
        False,
    ),
    # statuses
    "a whole float status is its text": (
        st_order,
        _with(ST_ORDER, status=2.0),
        lambda o: o.status,
        "2.0",
    ),
    "a boolean status is its text": (
        st_order,
        _with(ST_ORDER, status=True),
        lambda o: o.status,
        "TRUE",
    ),
    "a padded digit activity status is its name": (
        status,
        _with(ST_STATUS, activityLogs=[{"status": " 3 "}]),
        lambda s: s.activity_status,
        "ENABLED",
    ),
    # timestamps
    "milliseconds are milliseconds": (
        st_order,
        _with(ST_ORDER, createdAt=1732300420000),
        lambda o: o.created_at,
        _at(2024, 11, 22, 18, 33, 40),
    ),
    "10^11 itself is milliseconds": (
        st_order,
        _with(ST_ORDER, createdAt=10**11),
        lambda o: o.created_at,
        datetime.fromtimestamp(10**8, UTC),
    ),
    "seconds are seconds": (
        st_order,
        _with(ST_ORDER, createdAt=1732300420),
        lambda o: o.created_at,
        _at(2024, 11, 22, 18, 33, 40),
    ),
    "a bare ISO date is its midnight UTC": (
        st_order,
        _with(ST_ORDER, createdAt="2025-01-02"),
        lambda o: o.created_at,
        _at(2025, 1, 2),
    ),
    "an ISO offset is kept": (
        st_order,
        _with(ST_ORDER, createdAt="2025-01-02T10:00:00+07:00"),
        lambda o: o.created_at.tzinfo,
        PLUS_7,
    ),
    "an unreadable time is none": (
        st_order,
        _with(ST_ORDER, createdAt="soon"),
        lambda o: o.created_at,
        None,
    ),
    "a usage date sent as a number is read": (
        status,
        _with(ST_STATUS, usageInfoList=[{"usedDate": 20250102, "usageAmt": 1}]),
        lambda s: s.usage_info_list[0].used_date,
        date(2025, 1, 2),
    ),
    "a usage date sent as Unix seconds is that day": (
        status,
        _with(ST_STATUS, usageInfoList=[{"usedDate": 1735776000, "usageAmt": 1}]),
        lambda s: s.usage_info_list[0].used_date,
        date(2025, 1, 2),
    ),
    "a due date with a time is its day": (
        STAccount.from_json,
        _with(ST_ACCOUNT, dueDate="2025-02-01T10:00:00Z"),
        lambda a: a.due_date,
        date(2025, 2, 1),
    ),
    # amounts
    "a whole float price loses its .0": (
        variation,
        _with(ST_VARIATION, price=150000.0),
        lambda v: str(v.price),
        "150000",
    ),
    "a price with .0 as text keeps it": (
        variation,
        _with(ST_VARIATION, price="150000.0"),
        lambda v: str(v.price),
        "150000.0",
    ),
    "a NaN refund fee is 0": (
        returned,
        _with(ST_RETURN, refundFee="NaN"),
        lambda r: r.refund_fee,
        Decimal(0),
    ),
    "an unreadable total is none": (
        st_order,
        _with(ST_ORDER, total="lots"),
        lambda o: o.total,
        None,
    ),
    "a boolean discount is none": (
        variation,
        _with(ST_VARIATION, discount=True),
        lambda v: v.discount,
        None,
    ),
    # lists and whole numbers
    "a non-list items is none": (st_order, _with(ST_ORDER, items="x"), lambda o: o.items, ()),
    "non-object order items are skipped": (
        st_order,
        _with(ST_ORDER, items=[1, None, *ST_ORDER["items"]]),
        lambda o: [i.id for i in o.items],
        ["item-1"],
    ),
    "non-object variations are skipped": (
        STProduct.from_json,
        _with(ST_PRODUCT, variations=[None, "x", ST_VARIATION]),
        lambda p: [v.sku for v in p.variations],
        ["SKU-1"],
    ),
    "non-object activity logs are skipped": (
        status,
        _with(ST_STATUS, activityLogs=["x", {"status": 1}]),
        lambda s: s.activity_status,
        "DOWNLOADED",
    ),
    "a fractional days is truncated": (
        variation,
        _with(ST_VARIATION, days=7.9),
        lambda v: v.days,
        7,
    ),
    "a quantity as text is read": (
        st_order,
        _st_item(quantity=" 2 "),
        lambda o: o.items[0].quantity,
        2,
    ),
    "a fractional usedTraffic is truncated": (
        status,
        _with(ST_STATUS, simStatus={"usedTraffic": 1048576.9}),
        lambda s: s.sim_status.used_bytes,
        1048576,
    ),
}

SIMPLIFYTRIP_REFUSED: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "a variation without a price": (variation, _with(ST_VARIATION, price=None)),
    "a NaN price": (variation, _with(ST_VARIATION, price="NaN")),
    "an account without a readable balance": (STAccount.from_json, _with(ST_ACCOUNT, balance="x")),
    "an order without any id": (st_order, _with(ST_ORDER, id=None)),
    "a created order without a trackId": (created, _with(ST_CREATED, trackId=None)),
    "a page whose items is not a list": (lambda d: decode(d, STPage[STProduct]), {"items": None}),
    "a page with a non-object item": (
        lambda d: decode(d, STPage[STProduct]),
        {"items": [ST_PRODUCT, 1]},
    ),
}


@pytest.mark.parametrize(
    ("parse", "body", "read", "expected"), SIMPLIFYTRIP.values(), ids=SIMPLIFYTRIP.keys()
)
def test_a_simplifytrip_odd_form_reads_as_the_hand_written_readers_read_it(
    parse: Callable[[Any], Any], body: dict[str, Any], read: Callable[[Any], Any], expected: Any
) -> None:
    assert read(parse(body)) == expected


@pytest.mark.parametrize(
    ("parse", "body"), SIMPLIFYTRIP_REFUSED.values(), ids=SIMPLIFYTRIP_REFUSED.keys()
)
def test_a_simplifytrip_form_the_hand_written_readers_refused_is_still_refused(
    parse: Callable[[Any], Any], body: Any
) -> None:
    with pytest.raises(WireFormatError):
        parse(body)


async def test_a_purchase_answer_full_of_odd_forms_is_an_order_not_an_unknown_outcome() -> None:
    odd = _with(
        ORDER,
        id=42,
        status=None,
        total="5.00",
        esims=[
            _with(ESIM, id=7, iccid=8910, esim=None, withUsageCheck="yes", createdAt=1731837535000)
        ],
        items=None,
    )
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"status": "success", "data": odd})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(answer), base_url="https://api.getroamify.com"
    ) as http:
        client = RoamifyClient(http, token="unit-test-token", timeouts=Timeouts())
        placed = await client.create_instant_order([("pkg-1", 1)])

    assert len(calls) == 1
    assert (placed.id, placed.status, placed.total, placed.esim_ids) == (
        "42",
        "PENDING",
        Decimal("5.00"),
        ("7",),
    )
    (profile,) = placed.esims
    assert (profile.iccid, profile.lpa, profile.with_usage_check) == ("8910", None, True)
    assert profile.created_at == _at(2024, 11, 17, 9, 58, 55)
