"""SimplifyTrip wire models (providers.md 2.4-2.5), parsed tolerantly from decoded JSON.

Every model has `from_json(data)`, which accepts what the docs show in any of their
versions and raises `WireFormatError` (naming the field, never echoing a value) only
when something the gateway cannot do without is missing:

* create-order answers: the 201 shape with `status` fields and the older 200 one without;
* eSIM status: the object named `simStatus` (Sep-2026) or `eSimStatus` (Feb-2026), with
  string statuses or the Feb-2026 numbers (activity 0-5, plan 0-3, in the documented
  order of the string values);
* return-request items keyed `subOrderId` or the workflow page's `orderItemId`.

Units are normalised here: ISO timestamps become aware datetimes (UTC when no offset is
given), VND integers become `Decimal`, `highFlowSize` (KB) becomes MB and usage counters
(bytes) become MB.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

__all__ = [
    "ACTIVITY_STATUSES",
    "PLAN_STATUSES",
    "STAccount",
    "STActivityLog",
    "STCancelledOrder",
    "STCancelledOrderItem",
    "STCountry",
    "STCreatedOrder",
    "STCreatedOrderItem",
    "STEsim",
    "STEsimStatus",
    "STOrder",
    "STOrderInfo",
    "STOrderItem",
    "STPage",
    "STProduct",
    "STProductInfo",
    "STRegion",
    "STReturnItem",
    "STReturnRequest",
    "STSimPlan",
    "STUsageRecord",
    "STVariation",
    "WireFormatError",
    "bytes_to_mb",
    "data_allowance",
]

T = TypeVar("T")

KB_PER_MB = 1024
BYTES_PER_MB = Decimal(1024 * 1024)
MB_PLACES = Decimal("0.01")
#: the documented string values, in the order the Feb-2026 numbers used them
ACTIVITY_STATUSES = ("NOT_DOWNLOADED", "DOWNLOADED", "INSTALLED", "ENABLED", "DISABLED", "DELETED")
PLAN_STATUSES = ("UNUSED", "IN_USE", "EXPIRED", "UNAVAILABLE")

_AMOUNT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(TB|GB|MB|KB)")
_TAG = re.compile(r"<[^>]+>")
_MB_PER_UNIT = {
    "TB": Decimal(1024 * 1024),
    "GB": Decimal(1024),
    "MB": Decimal(1),
    "KB": Decimal(1) / 1024,
}


class WireFormatError(ValueError):
    """An answer lacks something the gateway needs. The message names fields only."""


# -- tolerant field readers ------------------------------------------------------------


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WireFormatError(f"expected an object for {what}")
    return value


def _sub(data: dict[str, Any], *keys: str) -> dict[str, Any] | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, dict):
            return value
    return None


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [item for item in _list(data, key) if isinstance(item, dict)]


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def _req(data: dict[str, Any], key: str, what: str) -> str:
    value = _str(data.get(key))
    if value is None:
        raise WireFormatError(f"{what} has no {key}")
    return value


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        return None


def _dec(value: Any) -> Decimal | None:
    """A VND amount (or any number) as Decimal; integral floats lose their `.0`."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return Decimal(int(value))
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _time(value: Any) -> datetime | None:
    """ISO 8601 (`Z` or an offset; naive means UTC) or epoch seconds/milliseconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) >= 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _date(value: Any) -> date | None:
    """`YYYY-MM-DD` or `YYYYMMDD` (the consumer API's usage dates)."""
    text = _str(value)
    if text is None:
        return None
    for candidate in (text[:10], text[:8]):
        try:
            return date.fromisoformat(candidate)
        except ValueError:
            continue
    moment = _time(value)
    return moment.date() if moment else None


def _localized(value: Any) -> str | None:
    """`{vi, en}` text in English, else Vietnamese; a plain string as it is."""
    if isinstance(value, dict):
        return _str(value.get("en")) or _str(value.get("vi"))
    return _str(value)


def _enum(value: Any, names: tuple[str, ...]) -> str | None:
    """A status given as its name, or as the Feb-2026 number (also as a digit string)."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is not None:
        return names[number] if 0 <= number < len(names) else str(number)
    text = _str(value)
    return text.upper() if text else None


def _strings(data: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(s for s in (_str(v) for v in _list(data, key)) if s is not None)


def _mb(value: int) -> Decimal:
    return (Decimal(value) / BYTES_PER_MB).quantize(MB_PLACES)


def bytes_to_mb(value: int | None) -> Decimal | None:
    return None if value is None else _mb(value)


def data_allowance(high_flow_kb: Any, data: Any) -> tuple[int | None, bool]:
    """(MB, unlimited) from `highFlowSize` (KB) or else the `data` text ("5GB", "500MB").

    "Unlimited" anywhere in `data` wins; a DAILY package's amounts are per day.
    """
    text = (_str(data) or "").upper()
    if "UNLIMITED" in text or "KHÔNG GIỚI HẠN" in text:
        return None, True
    kb = _int(high_flow_kb)
    if kb is not None and kb > 0:
        return kb // KB_PER_MB, False
    match = _AMOUNT.search(text)
    if match is None:
        return None, False
    amount = Decimal(match.group(1).replace(",", "."))
    return int(amount * _MB_PER_UNIT[match.group(2)]), False


# -- catalog -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class STPage(Generic[T]):
    """A `{total, skip, take, items}` page."""

    total: int
    skip: int
    take: int
    items: tuple[T, ...]

    @classmethod
    def from_json(cls, data: Any, parse: Callable[[Any], T]) -> STPage[T]:
        d = _obj(data, "page")
        if not isinstance(d.get("items"), list):
            raise WireFormatError("page has no items list")
        items = tuple(parse(item) for item in d["items"])
        total = _int(d.get("total"))
        return cls(
            total=total if total is not None else len(items),
            skip=_int(d.get("skip")) or 0,
            take=_int(d.get("take")) or len(items),
            items=items,
        )

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class STCountry:
    id: str
    """ISO alpha-2, upper case"""
    name: str
    iso3: str | None = None
    continent: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> STCountry:
        d = _obj(data, "country")
        code = (_str(d.get("id")) or _req(d, "mcc", "country")).upper()
        mcc3 = _str(d.get("mcc3"))
        return cls(
            id=code,
            name=_localized(d.get("name")) or code,
            iso3=mcc3.upper() if mcc3 else None,
            continent=_str(d.get("continent")),
        )


@dataclass(frozen=True, slots=True)
class STRegion:
    id: str
    name: str

    @classmethod
    def from_json(cls, data: Any) -> STRegion:
        d = _obj(data, "region")
        region_id = _req(d, "id", "region")
        return cls(id=region_id, name=_localized(d.get("name")) or region_id)


@dataclass(frozen=True, slots=True)
class STVariation:
    """One orderable SKU. `data_mb` is per day when `package == "DAILY"`."""

    sku: str
    name: str | None
    price: Decimal
    days: int
    package: str
    data: str | None
    data_mb: int | None
    unlimited: bool
    high_flow_kb: int | None = None
    price_floor: Decimal | None = None
    discount: Decimal | None = None
    throttle_speed: str | None = None
    sms_call: bool = False
    apn: str | None = None
    point_contact_type: str | None = None
    hotspot: bool = False
    spu: str | None = None
    """only on `GET /products/variation/:sku`"""

    @classmethod
    def from_json(cls, data: Any) -> STVariation:
        d = _obj(data, "variation")
        sku = _req(d, "sku", "variation")
        price = _dec(d.get("price"))
        if price is None:
            raise WireFormatError(f"variation {sku} has no price")
        data_mb, unlimited = data_allowance(d.get("highFlowSize"), d.get("data"))
        return cls(
            sku=sku,
            name=_localized(d.get("name")),
            price=price,
            days=_int(d.get("days")) or 0,
            package=(_str(d.get("package")) or "FIXED").upper(),
            data=_str(d.get("data")),
            data_mb=data_mb,
            unlimited=unlimited,
            high_flow_kb=_int(d.get("highFlowSize")),
            price_floor=_dec(d.get("priceFloor")),
            discount=_dec(d.get("discount")),
            throttle_speed=_str(d.get("throttleSpeed")),
            sms_call=_bool(d.get("smsCall")),
            apn=_str(d.get("apn")),
            point_contact_type=_str(d.get("pointContactType")),
            hotspot=_bool(d.get("hotsPot", d.get("hotspot"))),
            spu=_str(d.get("spu")),
        )


@dataclass(frozen=True, slots=True)
class STProduct:
    spu: str
    name: str
    type: str
    countries: tuple[STCountry, ...]
    regions: tuple[STRegion, ...]
    variations: tuple[STVariation, ...]
    slug: str | None = None
    notes: str | None = None
    """`metadata` (HTML) as plain text"""
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Any) -> STProduct:
        d = _obj(data, "product")
        spu = _req(d, "spu", "product")
        notes = _localized(d.get("metadata"))
        if notes:
            notes = " ".join(html.unescape(_TAG.sub(" ", notes)).split()) or None
        return cls(
            spu=spu,
            name=_localized(d.get("name")) or spu,
            type=_str(d.get("type")) or "eSIM",
            countries=tuple(STCountry.from_json(c) for c in _objects(d, "countries")),
            regions=tuple(STRegion.from_json(r) for r in _objects(d, "regions")),
            variations=tuple(STVariation.from_json(v) for v in _objects(d, "variations")),
            slug=_localized(d.get("slug")),
            notes=notes,
            created_at=_time(d.get("createdAt")),
            updated_at=_time(d.get("updatedAt")),
        )


# -- orders ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class STCreatedOrderItem:
    sub_order_id: str
    sub_track_id: str | None
    sku: str
    quantity: int
    type: str | None
    status: str | None
    """absent in the older 200 answer"""


@dataclass(frozen=True, slots=True)
class STCreatedOrder:
    """`POST /orders` and `/orders/recharge`: 201 with statuses, or the older 200 without."""

    order_id: str
    track_id: str
    status: str | None
    items: tuple[STCreatedOrderItem, ...]
    success: bool = True

    @classmethod
    def from_json(cls, data: Any) -> STCreatedOrder:
        d = _obj(data, "created order")
        items = tuple(
            STCreatedOrderItem(
                sub_order_id=_str(i.get("subOrderId")) or _req(i, "id", "created order item"),
                sub_track_id=_str(i.get("subTrackId")),
                sku=_req(i, "sku", "created order item"),
                quantity=_int(i.get("quantity")) or len(_list(i, "iccids")),
                type=_str(i.get("type")),
                status=_enum(i.get("status"), ()),
            )
            for i in _objects(d, "items")
        )
        return cls(
            order_id=_str(d.get("orderId")) or _req(d, "id", "created order"),
            track_id=_req(d, "trackId", "created order"),
            status=_enum(d.get("status"), ()),
            items=items,
            success=d.get("success") is not False,
        )


@dataclass(frozen=True, slots=True)
class STEsim:
    """One delivered profile. Holds credentials: its repr shows the ICCID only."""

    iccid: str
    qr_code_content: str | None = None
    """the LPA string `LPA:1$<smdp>$<activation code>`"""
    qr_code_img: str | None = None
    smdp_address: str | None = None
    activation_code: str | None = None
    pin: str | None = None
    puk: str | None = None
    plan_apn: str | None = None
    return_status: str | None = None

    def __repr__(self) -> str:
        return f"STEsim(iccid={self.iccid!r})"

    @classmethod
    def from_json(cls, data: Any) -> STEsim:
        d = _obj(data, "eSIM")
        return cls(
            iccid=_req(d, "iccid", "eSIM"),
            qr_code_content=_str(d.get("qrCodeContent")),
            qr_code_img=_str(d.get("qrCodeImg")),
            smdp_address=_str(d.get("smdpAddress")),
            activation_code=_str(d.get("activationCode")),
            pin=_str(d.get("pin")),
            puk=_str(d.get("puk")),
            plan_apn=_str(d.get("planAPN")),
            return_status=_str(d.get("returnStatus")),
        )


@dataclass(frozen=True, slots=True)
class STOrderItem:
    id: str
    """= subOrderId"""
    sku: str
    quantity: int
    status: str | None = None
    sub_track_id: str | None = None
    price: Decimal | None = None
    """unit price, VND"""
    type: str | None = None
    spu: str | None = None
    quantity_returned: int = 0
    iccids: tuple[str, ...] = ()
    esims: tuple[STEsim, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> STOrderItem:
        d = _obj(data, "order item")
        return cls(
            id=_str(d.get("id")) or _req(d, "subOrderId", "order item"),
            sku=_req(d, "sku", "order item"),
            quantity=_int(d.get("quantity")) or 0,
            status=_enum(d.get("status"), ()),
            sub_track_id=_str(d.get("subTrackId")),
            price=_dec(d.get("price")),
            type=_str(d.get("type")),
            spu=_str(d.get("spu")),
            quantity_returned=_int(d.get("quantityReturned")) or 0,
            iccids=_strings(d, "iccids"),
            esims=tuple(STEsim.from_json(e) for e in _objects(d, "eSims")),
        )


@dataclass(frozen=True, slots=True)
class STReturnItem:
    sub_order_id: str
    sku: str | None = None
    type: str | None = None
    return_type: str | None = None
    iccids: tuple[str, ...] = ()
    quantity: int | None = None
    sub_order_track_id: str | None = None
    spu: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> STReturnItem:
        d = _obj(data, "return item")
        return cls(
            sub_order_id=_str(d.get("subOrderId"))
            or _str(d.get("orderItemId"))
            or _req(d, "id", "return item"),
            sku=_str(d.get("sku")),
            type=_str(d.get("type")),
            return_type=_str(d.get("returnType")),
            iccids=_strings(d, "iccids"),
            quantity=_int(d.get("quantity")),
            sub_order_track_id=_str(d.get("subOrderTrackId")),
            spu=_str(d.get("spu")),
        )


@dataclass(frozen=True, slots=True)
class STReturnRequest:
    """A return (refund) request; `POST`, `GET` and cancel all answer this shape."""

    id: str
    status: str
    return_track_id: str | None = None
    order_id: str | None = None
    order_track_id: str | None = None
    return_type: str | None = None
    refund_fee: Decimal = Decimal(0)
    extra_fee: Decimal = Decimal(0)
    extra_fee_note: str | None = None
    refund_amount: Decimal = Decimal(0)
    reason: str | None = None
    rejection_reason: str | None = None
    created_at: datetime | None = None
    refunding_at: datetime | None = None
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    rejected_at: datetime | None = None
    items: tuple[STReturnItem, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> STReturnRequest:
        d = _obj(data, "return request")
        return cls(
            id=_str(d.get("id")) or _req(d, "returnId", "return request"),
            status=_enum(d.get("status"), ()) or "REQUESTED",
            # the Feb-2026 version called it trackId
            return_track_id=_str(d.get("returnTrackId")) or _str(d.get("trackId")),
            order_id=_str(d.get("orderId")),
            order_track_id=_str(d.get("orderTrackId")),
            return_type=_str(d.get("returnType")),
            refund_fee=_dec(d.get("refundFee")) or Decimal(0),
            extra_fee=_dec(d.get("extraFee")) or Decimal(0),
            extra_fee_note=_str(d.get("extraFeeNote")),
            refund_amount=_dec(d.get("refundAmount")) or Decimal(0),
            reason=_str(d.get("reason")),
            rejection_reason=_str(d.get("rejectionReason")),
            created_at=_time(d.get("createdAt")),
            refunding_at=_time(d.get("refundingAt")),
            completed_at=_time(d.get("completedAt")),
            canceled_at=_time(d.get("canceledAt")),
            rejected_at=_time(d.get("rejectedAt")),
            items=tuple(STReturnItem.from_json(i) for i in _objects(d, "items")),
        )


@dataclass(frozen=True, slots=True)
class STOrder:
    """`GET /orders/:id` (order details)."""

    id: str
    status: str
    track_id: str | None = None
    total: Decimal | None = None
    total_before_refund: Decimal | None = None
    refund_amount: Decimal | None = None
    return_status: str | None = None
    """NONE | PARTIAL | FULL (newer docs; absent in the older ones)"""
    has_pending_return: bool = False
    has_refunding_return: bool = False
    error: str | None = None
    """the failure reason when status is ERROR"""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    confirmed_at: datetime | None = None
    delivering_at: datetime | None = None
    canceled_at: datetime | None = None
    succeeded_at: datetime | None = None
    items: tuple[STOrderItem, ...] = ()
    returns: tuple[STReturnRequest, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> STOrder:
        d = _obj(data, "order")
        return cls(
            id=_str(d.get("id")) or _req(d, "orderId", "order"),
            status=_enum(d.get("status"), ()) or "NEW",
            track_id=_str(d.get("trackId")),
            total=_dec(d.get("total")),
            total_before_refund=_dec(d.get("totalBeforeRefund")),
            refund_amount=_dec(d.get("refundAmount")),
            return_status=_enum(d.get("returnStatus"), ()),
            has_pending_return=_bool(d.get("hasPendingReturn")),
            has_refunding_return=_bool(d.get("hasRefundingReturn")),
            error=_str(d.get("error")),
            created_at=_time(d.get("createdAt")),
            updated_at=_time(d.get("updatedAt")),
            confirmed_at=_time(d.get("confirmedAt")),
            delivering_at=_time(d.get("deliveringAt")),
            canceled_at=_time(d.get("canceledAt")),
            succeeded_at=_time(d.get("succeededAt")),
            items=tuple(STOrderItem.from_json(i) for i in _objects(d, "items")),
            returns=tuple(STReturnRequest.from_json(r) for r in _objects(d, "returns")),
        )


@dataclass(frozen=True, slots=True)
class STCancelledOrderItem:
    id: str
    sku: str
    quantity: int
    status: str | None = None
    sub_track_id: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class STCancelledOrder:
    """`POST /orders/cancel`: the order header and its items, all CANCELED."""

    id: str
    status: str
    track_id: str | None = None
    reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    items: tuple[STCancelledOrderItem, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> STCancelledOrder:
        d = _obj(data, "cancelled order")
        return cls(
            id=_str(d.get("id")) or _req(d, "orderId", "cancelled order"),
            status=_enum(d.get("status"), ()) or "CANCELED",
            track_id=_str(d.get("trackId")),
            reason=_str(d.get("reason")),
            created_at=_time(d.get("createdAt")),
            updated_at=_time(d.get("updatedAt")),
            items=tuple(
                STCancelledOrderItem(
                    id=_str(i.get("id")) or _req(i, "subOrderId", "cancelled order item"),
                    sku=_req(i, "sku", "cancelled order item"),
                    quantity=_int(i.get("quantity")) or 0,
                    status=_enum(i.get("status"), ()),
                    sub_track_id=_str(i.get("subTrackId")),
                    type=_str(i.get("type")),
                )
                for i in _objects(d, "items")
            ),
        )


# -- eSIM / SIM status ("usage") -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class STActivityLog:
    status: str | None
    record_time: datetime | None = None
    eid: str | None = None


@dataclass(frozen=True, slots=True)
class STUsageRecord:
    used_date: date | None
    usage_bytes: int
    usage_mb: Decimal


@dataclass(frozen=True, slots=True)
class STSimPlan:
    """`simStatus` (`eSimStatus` in the Feb-2026 docs)."""

    plan_status: str | None
    plan_start: datetime | None = None
    plan_end: datetime | None = None
    remaining_days: int | None = None
    used_bytes: int | None = None
    used_mb: Decimal | None = None


@dataclass(frozen=True, slots=True)
class STProductInfo:
    sku: str | None
    spu: str | None = None
    name: str | None = None
    type: str | None = None
    package: str | None = None
    days: int | None = None
    data: str | None = None
    data_mb: int | None = None
    unlimited: bool = False
    apn: str | None = None
    hotspot: bool = False
    throttle_speed: str | None = None
    point_contact_type: str | None = None
    sms_call: bool = False


@dataclass(frozen=True, slots=True)
class STOrderInfo:
    order_id: str | None
    track_id: str | None = None
    sub_order_id: str | None = None
    sub_track_id: str | None = None
    purchase_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class STEsimStatus:
    """`GET /products/esim/:iccid` and `/products/sim/:iccid`."""

    iccid: str
    activity_logs: tuple[STActivityLog, ...] = ()
    usage_info_list: tuple[STUsageRecord, ...] = ()
    sim_status: STSimPlan | None = None
    product_info: STProductInfo | None = None
    order_info: STOrderInfo | None = None

    @property
    def activity_status(self) -> str | None:
        """The most recent activity log's status."""
        logs = [log for log in self.activity_logs if log.status]
        if not logs:
            return None
        aware = datetime.min.replace(tzinfo=UTC)
        return max(enumerate(logs), key=lambda pair: (pair[1].record_time or aware, pair[0]))[
            1
        ].status

    @property
    def used_mb(self) -> Decimal | None:
        """`simStatus.usedTraffic`, else the sum of `usageInfoList`."""
        if self.sim_status is not None and self.sim_status.used_mb is not None:
            return self.sim_status.used_mb
        if not self.usage_info_list:
            return None
        return _mb(sum(u.usage_bytes for u in self.usage_info_list))

    @classmethod
    def from_json(cls, data: Any) -> STEsimStatus:
        d = _obj(data, "eSIM status")
        plan = _sub(d, "simStatus", "eSimStatus")
        product = _sub(d, "productInfo")
        order = _sub(d, "orderInfo")
        usage = []
        for record in _objects(d, "usageInfoList"):
            amount = _int(record.get("usageAmt")) or 0
            usage.append(STUsageRecord(_date(record.get("usedDate")), amount, _mb(amount)))
        sim_plan = None
        if plan is not None:
            used = _int(plan.get("usedTraffic"))
            sim_plan = STSimPlan(
                plan_status=_enum(plan.get("planStatus"), PLAN_STATUSES),
                plan_start=_time(plan.get("planStartTime")),
                plan_end=_time(plan.get("planEndTime")),
                remaining_days=_int(plan.get("remainingDays")),
                used_bytes=used,
                used_mb=bytes_to_mb(used),
            )
        product_info = None
        if product is not None:
            mb, unlimited = data_allowance(product.get("highFlowSize"), product.get("data"))
            product_info = STProductInfo(
                sku=_str(product.get("sku")),
                spu=_str(product.get("spu")),
                name=_localized(product.get("name")),
                type=_str(product.get("type")),
                package=_str(product.get("package")),
                days=_int(product.get("days")),
                data=_str(product.get("data")),
                data_mb=mb,
                unlimited=unlimited,
                apn=_str(product.get("apn")),
                hotspot=_bool(product.get("hotsPot", product.get("hotspot"))),
                throttle_speed=_str(product.get("throttleSpeed")),
                point_contact_type=_str(product.get("pointContactType")),
                sms_call=_bool(product.get("smsCall")),
            )
        order_info = None
        if order is not None:
            order_info = STOrderInfo(
                order_id=_str(order.get("orderId")),
                track_id=_str(order.get("trackId")),
                sub_order_id=_str(order.get("subOrderId")),
                sub_track_id=_str(order.get("subTrackId")),
                purchase_date=_time(order.get("purchaseDate")),
            )
        return cls(
            iccid=_req(d, "iccid", "eSIM status"),
            activity_logs=tuple(
                STActivityLog(
                    status=_enum(log.get("status"), ACTIVITY_STATUSES),
                    record_time=_time(log.get("recordTime")),
                    eid=_str(log.get("eid")),
                )
                for log in _objects(d, "activityLogs")
            ),
            usage_info_list=tuple(usage),
            sim_status=sim_plan,
            product_info=product_info,
            order_info=order_info,
        )


# -- wallets -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class STAccount:
    id: str
    type: str
    """TOP_UP | DEBIT"""
    balance: Decimal
    """VND; negative for DEBIT spend"""
    currency: str = "VND"
    status: str | None = None
    is_blocked: bool = False
    is_default: bool = False
    debt_statement: Decimal | None = None
    due_date: date | None = None

    @classmethod
    def from_json(cls, data: Any) -> STAccount:
        d = _obj(data, "account")
        account_id = _req(d, "id", "account")
        balance = _dec(d.get("balance"))
        if balance is None:
            raise WireFormatError(f"account {account_id} has no balance")
        return cls(
            id=account_id,
            type=(_str(d.get("type")) or "TOP_UP").upper(),
            balance=balance,
            currency=(_str(d.get("currency")) or "VND").upper(),
            status=_str(d.get("status")),
            is_blocked=_bool(d.get("isBlocked")),
            is_default=_bool(d.get("isDefault")),
            debt_statement=_dec(d.get("debtStatement")),
            due_date=_date(d.get("dueDate")),
        )
