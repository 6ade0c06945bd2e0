"""SimplifyTrip wire models (providers.md 2.4-2.5), declared as msgspec structs.

Every model has `from_json(data)`, which accepts what the docs show in any of their
versions (besides `wire.Wire`'s rules: text stripped, `""` absent, numbers and booleans
also as strings, unknown keys ignored, and what the hand-written readers took: see
`LENIENCY`; non-object list entries are skipped, except a page's items) and raises
`WireFormatError` (naming the field, never echoing a value) only when something the
gateway cannot do without is missing:

* create-order answers: the 201 shape with `status` fields and the older 200 one without;
* eSIM status: the object named `simStatus` (Sep-2026) or `eSimStatus` (Feb-2026), with
  string statuses or the Feb-2026 numbers (activity 0-5, plan 0-3, in the documented
  order of the string values);
* ids under either of their documented names (`id`/`orderId`, `id`/`subOrderId`, return
  items' `subOrderId` or the workflow page's `orderItemId`, `hotsPot`/`hotspot`).

Units are normalised here: ISO timestamps become aware datetimes (UTC when no offset is
given; numeric text is read as Unix seconds, where the hand-written reader read no time),
VND integers become `Decimal`, `highFlowSize` (KB) becomes MB and usage counters
(bytes) become MB.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Generic, TypeVar

from msgspec import UNSET, UnsetType, field

from esim_gateway.providers.wire import (
    ABSENT,
    Leniency,
    Wire,
    WireFormatError,
    decode,
    force_setattr,
)

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


# -- what the hand-written readers took (the lenient pass; see `wire`) -------------------


def _str(value: Any) -> str | None:
    """Text, stripped; None for null, `""`, an object or a list. A boolean is `true`/`false`."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip() or None


def _text_of(value: Any) -> Any:
    return ABSENT if (text := _str(value)) is None else text


def _bool(value: Any) -> bool:
    """`"yes"`, `"true"`, `"1"` (any case) are true, other text false; otherwise truthiness."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _int(value: Any) -> int | None:
    """Whole or not (truncated), as a number or numeric text; None for anything else."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError, OverflowError):
        return None


def _dec(value: Any) -> Decimal | None:
    """A VND amount (or any number) as Decimal; whole floats lose their `.0`."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return Decimal(int(value))
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _time(value: Any) -> dt.datetime | None:
    """ISO 8601 (`Z` or an offset, kept; naive means UTC) or Unix seconds/milliseconds as
    a number (numeric text is not a time)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) >= _MILLISECONDS_FROM else value
        try:
            return dt.datetime.fromtimestamp(seconds, dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _absent_if_none(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: ABSENT if (found := read(value)) is None else found


_MILLISECONDS_FROM = 10**11  # 5138 AD in seconds, 1973 in milliseconds
LENIENCY = Leniency(
    text=_text_of,
    flag=_bool,
    integer=_absent_if_none(_int),
    number=_absent_if_none(_dec),
    money=_absent_if_none(_dec),
    time=_absent_if_none(_time),
    # from 10^11 on (a microsecond before it, as datetimes go)
    millis_after=dt.datetime.fromtimestamp(_MILLISECONDS_FROM, dt.UTC) - dt.timedelta.resolution,
    whole_floats=True,
)


class _Wire(Wire, frozen=True):
    leniency: ClassVar[Leniency] = LENIENCY


class _Localized(_Wire, frozen=True):
    """`{vi, en}` text: English, else Vietnamese."""

    en: str | None = None
    vi: str | None = None


#: localized text, or a plain string
Text = _Localized | str | None


def _text(value: Text) -> str | None:
    return (value.en or value.vi) if isinstance(value, _Localized) else _str(value)


def _enum(value: object, names: tuple[str, ...] = ()) -> str | None:
    """A status given as its name, or as the Feb-2026 number (also as a digit string)."""
    if type(value) is str and (name := value.strip()) and not name.isdigit():
        return name.upper()  # the usual case, read on every access: no further tests
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is not None:
        return names[number] if 0 <= number < len(names) else str(number)
    text = _str(value)
    return text.upper() if text else None


def _date(value: object) -> dt.date | None:
    """`YYYY-MM-DD` or `YYYYMMDD` (the consumer API's usage dates), or a timestamp's date."""
    text = _str(value)
    if text is None:
        return None
    for candidate in (text[:10], text[:8]):
        try:
            return dt.date.fromisoformat(candidate)
        except ValueError:
            continue
    moment = _time(value)
    return moment.date() if moment else None


def _mb(value: int) -> Decimal:
    return (Decimal(value) / BYTES_PER_MB).quantize(MB_PLACES)


def bytes_to_mb(value: int | None) -> Decimal | None:
    return None if value is None else _mb(value)


def data_allowance(high_flow_kb: Any, data: Any) -> tuple[int | None, bool]:
    """(MB, unlimited) from `highFlowSize` (KB) or else the `data` text ("5GB", "500MB").

    "Unlimited" anywhere in `data` wins; a DAILY package's amounts are per day.
    """
    text = str(data or "").strip().upper()
    if "UNLIMITED" in text or "KHÔNG GIỚI HẠN" in text:
        return None, True
    if type(high_flow_kb) is int and high_flow_kb > 0:  # the models hand it over as an int
        return high_flow_kb // KB_PER_MB, False
    match = _AMOUNT.search(text)
    if match is None:
        return None, False
    amount = Decimal(match.group(1).replace(",", "."))
    return int(amount * _MB_PER_UNIT[match.group(2)]), False


class _Either(_Wire, frozen=True):
    """A model whose id arrives under one of two documented names."""

    def _id_from(self, field_name: str, alias: str | None, what: str) -> None:
        if not getattr(self, field_name):
            if alias is None:
                raise WireFormatError(f"{what} has no {field_name}")
            force_setattr(self, field_name, alias)


# -- catalog -----------------------------------------------------------------------------


class STPage(_Wire, Generic[T], frozen=True):
    """A `{total, skip, take, items}` page (`STPage[STProduct]` to decode one)."""

    #: an item that is not an object is refused, not skipped
    leniency: ClassVar[Leniency] = replace(LENIENCY, skipped_entries=frozenset())

    items: tuple[T, ...]
    sent_total: int | None = field(default=None, name="total")
    skip: int = 0
    take: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.take:
            force_setattr(self, "take", len(self.items))

    @property
    def total(self) -> int:
        return len(self.items) if self.sent_total is None else self.sent_total

    @classmethod
    def from_json(  # type: ignore[override]  # a page needs its items' parser
        cls, data: Any, parse: Callable[[Any], T]
    ) -> STPage[T]:
        page = decode(data, STPage[Any])
        return STPage(tuple(map(parse, page.items)), page.sent_total, page.skip, page.take)

    def __len__(self) -> int:
        return len(self.items)


class STCountry(_Wire, frozen=True):
    #: ISO alpha-2, upper case (`id`, else `mcc`)
    id: str = ""
    title: Text = field(default=None, name="name")
    mcc: str | None = None
    iso3: str | None = field(default=None, name="mcc3")
    continent: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.id and self.mcc is None:
            raise WireFormatError("country has no mcc")
        force_setattr(self, "id", (self.id or self.mcc or "").upper())
        if self.iso3 is not None:
            force_setattr(self, "iso3", self.iso3.upper())

    @property
    def name(self) -> str:
        return _text(self.title) or self.id


class STRegion(_Wire, frozen=True):
    id: str
    title: Text = field(default=None, name="name")

    @property
    def name(self) -> str:
        return _text(self.title) or self.id


class _Sku(_Wire, frozen=True):
    """What a variation and an eSIM's `productInfo` share."""

    title: Text = field(default=None, name="name")
    data: str | None = None
    high_flow_kb: int | None = field(default=None, name="highFlowSize")
    #: UNSET when not sent: `hotspot` is read only then (a null `hotsPot` is false)
    hots_pot: bool | UnsetType | None = field(default=UNSET, name="hotsPot")
    hotspot_: bool | None = field(default=None, name="hotspot")
    throttle_speed: str | None = None
    apn: str | None = None
    point_contact_type: str | None = None
    sms_call: bool = False
    spu: str | None = None

    @property
    def name(self) -> str | None:
        return _text(self.title)

    @property
    def hotspot(self) -> bool:
        return bool(self.hotspot_ if self.hots_pot is UNSET else self.hots_pot)

    @property
    def data_mb(self) -> int | None:
        return data_allowance(self.high_flow_kb, self.data)[0]

    @property
    def unlimited(self) -> bool:
        return data_allowance(self.high_flow_kb, self.data)[1]


class STVariation(_Sku, frozen=True, kw_only=True):
    """One orderable SKU. `data_mb` is per day when `package == "DAILY"`; `spu` is only
    on `GET /products/variation/:sku`."""

    sku: str
    price: Decimal
    days: int = 0
    package: str = "FIXED"
    price_floor: Decimal | None = None
    discount: Decimal | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        force_setattr(self, "package", self.package.upper())


class STProduct(_Wire, frozen=True):
    spu: str
    title: Text = field(default=None, name="name")
    type: str = "eSIM"
    countries: tuple[STCountry, ...] = ()
    regions: tuple[STRegion, ...] = ()
    variations: tuple[STVariation, ...] = ()
    localized_slug: Text = field(default=None, name="slug")
    metadata: Text = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @property
    def name(self) -> str:
        return _text(self.title) or self.spu

    @property
    def slug(self) -> str | None:
        return _text(self.localized_slug)

    @property
    def notes(self) -> str | None:
        """`metadata` (HTML) as plain text"""
        notes = _text(self.metadata)
        return " ".join(html.unescape(_TAG.sub(" ", notes)).split()) or None if notes else None


# -- orders ------------------------------------------------------------------------------


class STCreatedOrderItem(_Either, frozen=True):
    sku: str
    sub_order_id: str = ""
    id: str | None = None
    sub_track_id: str | None = None
    quantity: int = 0
    #: as sent: only counted, for a missing quantity
    iccids: tuple[object, ...] = ()
    type: str | None = None
    #: absent in the older 200 answer
    state: object = field(default=None, name="status")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._id_from("sub_order_id", self.id, "created order item")
        if not self.quantity:
            force_setattr(self, "quantity", len(self.iccids))

    @property
    def status(self) -> str | None:
        return _enum(self.state)


class STCreatedOrder(_Either, frozen=True):
    """`POST /orders` and `/orders/recharge`: 201 with statuses, or the older 200 without."""

    track_id: str
    order_id: str = ""
    id: str | None = None
    state: object = field(default=None, name="status")
    items: tuple[STCreatedOrderItem, ...] = ()
    #: as sent: only `false` itself means failure
    succeeded: object = field(default=None, name="success")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._id_from("order_id", self.id, "created order")

    @property
    def status(self) -> str | None:
        return _enum(self.state)

    @property
    def success(self) -> bool:
        return self.succeeded is not False


class STEsim(_Wire, frozen=True):
    """One delivered profile. Holds credentials: its repr shows the ICCID only."""

    iccid: str
    #: the LPA string `LPA:1$<smdp>$<activation code>`
    qr_code_content: str | None = None
    qr_code_img: str | None = None
    smdp_address: str | None = None
    activation_code: str | None = None
    pin: str | None = None
    puk: str | None = None
    plan_apn: str | None = field(default=None, name="planAPN")
    return_status: str | None = None

    def __repr__(self) -> str:
        return f"STEsim(iccid={self.iccid!r})"


class STOrderItem(_Either, frozen=True):
    sku: str
    #: = subOrderId
    id: str = ""
    sub_order_id: str | None = None
    quantity: int = 0
    state: object = field(default=None, name="status")
    sub_track_id: str | None = None
    #: unit price, VND
    price: Decimal | None = None
    type: str | None = None
    spu: str | None = None
    quantity_returned: int = 0
    iccids: tuple[str, ...] = ()
    esims: tuple[STEsim, ...] = field(default=(), name="eSims")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._id_from("id", self.sub_order_id, "order item")

    @property
    def status(self) -> str | None:
        return _enum(self.state)


class STReturnItem(_Either, frozen=True):
    sub_order_id: str = ""
    order_item_id: str | None = None
    id: str | None = None
    sku: str | None = None
    type: str | None = None
    return_type: str | None = None
    iccids: tuple[str, ...] = ()
    quantity: int | None = None
    sub_order_track_id: str | None = None
    spu: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._id_from("sub_order_id", self.order_item_id or self.id, "return item")


class STReturnRequest(_Either, frozen=True):
    """A return (refund) request; `POST`, `GET` and cancel all answer this shape."""

    id: str = ""
    return_id: str | None = None
    state: object = field(default=None, name="status")
    return_track_id: str | None = None
    #: the Feb-2026 version called `return_track_id` trackId
    track_id: str | None = None
    order_id: str | None = None
    order_track_id: str | None = None
    return_type: str | None = None
    refund_fee: Decimal = Decimal(0)
    extra_fee: Decimal = Decimal(0)
    extra_fee_note: str | None = None
    refund_amount: Decimal = Decimal(0)
    reason: str | None = None
    rejection_reason: str | None = None
    created_at: dt.datetime | None = None
    refunding_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    canceled_at: dt.datetime | None = None
    rejected_at: dt.datetime | None = None
    items: tuple[STReturnItem, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        self._id_from("id", self.return_id, "return request")
        if self.return_track_id is None:
            force_setattr(self, "return_track_id", self.track_id)

    @property
    def status(self) -> str:
        return _enum(self.state) or "REQUESTED"


class STOrder(_Either, frozen=True):
    """`GET /orders/:id` (order details)."""

    id: str = ""
    order_id: str | None = None
    state: object = field(default=None, name="status")
    track_id: str | None = None
    total: Decimal | None = None
    total_before_refund: Decimal | None = None
    refund_amount: Decimal | None = None
    #: NONE | PARTIAL | FULL (newer docs; absent in the older ones)
    return_state: object = field(default=None, name="returnStatus")
    has_pending_return: bool = False
    has_refunding_return: bool = False
    #: the failure reason when status is ERROR
    error: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    confirmed_at: dt.datetime | None = None
    delivering_at: dt.datetime | None = None
    canceled_at: dt.datetime | None = None
    succeeded_at: dt.datetime | None = None
    items: tuple[STOrderItem, ...] = ()
    returns: tuple[STReturnRequest, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        self._id_from("id", self.order_id, "order")

    @property
    def status(self) -> str:
        return _enum(self.state) or "NEW"

    @property
    def return_status(self) -> str | None:
        return _enum(self.return_state)


class STCancelledOrderItem(_Either, frozen=True):
    sku: str
    id: str = ""
    sub_order_id: str | None = None
    quantity: int = 0
    state: object = field(default=None, name="status")
    sub_track_id: str | None = None
    type: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._id_from("id", self.sub_order_id, "cancelled order item")

    @property
    def status(self) -> str | None:
        return _enum(self.state)


class STCancelledOrder(_Either, frozen=True):
    """`POST /orders/cancel`: the order header and its items, all CANCELED."""

    id: str = ""
    order_id: str | None = None
    state: object = field(default=None, name="status")
    track_id: str | None = None
    reason: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    items: tuple[STCancelledOrderItem, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        self._id_from("id", self.order_id, "cancelled order")

    @property
    def status(self) -> str:
        return _enum(self.state) or "CANCELED"


# -- eSIM / SIM status ("usage") -------------------------------------------------------


class STActivityLog(_Wire, frozen=True):
    state: object = field(default=None, name="status")
    record_time: dt.datetime | None = None
    eid: str | None = None

    @property
    def status(self) -> str | None:
        return _enum(self.state, ACTIVITY_STATUSES)


class STUsageRecord(_Wire, frozen=True):
    #: as sent (text, or a number read as text or as a timestamp)
    day: object = field(default=None, name="usedDate")
    usage_bytes: int = field(default=0, name="usageAmt")

    @property
    def used_date(self) -> dt.date | None:
        return _date(self.day)

    @property
    def usage_mb(self) -> Decimal:
        return _mb(self.usage_bytes)


class STSimPlan(_Wire, frozen=True):
    """`simStatus` (`eSimStatus` in the Feb-2026 docs)."""

    state: object = field(default=None, name="planStatus")
    plan_start: dt.datetime | None = field(default=None, name="planStartTime")
    plan_end: dt.datetime | None = field(default=None, name="planEndTime")
    remaining_days: int | None = None
    used_bytes: int | None = field(default=None, name="usedTraffic")

    @property
    def plan_status(self) -> str | None:
        return _enum(self.state, PLAN_STATUSES)

    @property
    def used_mb(self) -> Decimal | None:
        return bytes_to_mb(self.used_bytes)


class STProductInfo(_Sku, frozen=True):
    sku: str | None = None
    type: str | None = None
    package: str | None = None
    days: int | None = None


class STOrderInfo(_Wire, frozen=True):
    order_id: str | None = None
    track_id: str | None = None
    sub_order_id: str | None = None
    sub_track_id: str | None = None
    purchase_date: dt.datetime | None = None


class STEsimStatus(_Wire, frozen=True):
    """`GET /products/esim/:iccid` and `/products/sim/:iccid`."""

    iccid: str
    activity_logs: tuple[STActivityLog, ...] = ()
    usage_info_list: tuple[STUsageRecord, ...] = ()
    sim_status: STSimPlan | None = None
    e_sim_status: STSimPlan | None = field(default=None, name="eSimStatus")
    product_info: STProductInfo | None = None
    order_info: STOrderInfo | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sim_status is None:
            force_setattr(self, "sim_status", self.e_sim_status)

    @property
    def activity_status(self) -> str | None:
        """The most recent activity log's status."""
        logs = [log for log in self.activity_logs if log.status]
        if not logs:
            return None
        aware = dt.datetime.min.replace(tzinfo=dt.UTC)
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


# -- wallets -----------------------------------------------------------------------------


class STAccount(_Wire, frozen=True):
    id: str
    balance: Decimal
    #: TOP_UP | DEBIT
    type: str = "TOP_UP"
    currency: str = "VND"
    status: str | None = None
    is_blocked: bool = False
    is_default: bool = False
    debt_statement: Decimal | None = None
    #: as sent (see `STUsageRecord.day`)
    due: object = field(default=None, name="dueDate")

    def __post_init__(self) -> None:
        super().__post_init__()
        force_setattr(self, "type", self.type.upper())
        force_setattr(self, "currency", self.currency.upper())

    @property
    def due_date(self) -> dt.date | None:
        return _date(self.due)
