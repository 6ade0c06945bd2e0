"""Roamify wire models (providers.md 1.4-1.5), declared as msgspec structs (`wire.Wire`).

Each model has `from_json(data)` taking the decoded `data` of the success envelope (or one
element of it). Beyond `wire`'s rules (text stripped, `""` absent, numbers and booleans
also as strings, Unix seconds or ISO 8601 timestamps, unknown keys ignored) and what the
hand-written readers took (`LENIENCY`: null anywhere is absent; numbers and booleans
where text is documented are that text; `"yes"`/`"no"` and any truthiness are booleans;
Unix milliseconds; fractional whole numbers truncated; a non-list list is empty, and
non-object `signals` / `dataUsages` entries are skipped while other lists refuse them):

* money is a `Decimal` made from the JSON number's text, never through float arithmetic;
  a missing price or total is 0;
* data allowances are normalised to MB (`KB`, `MB`, `GB`, `TB`; binary multiples, as
  Roamify's own labels use 1 GB = 1024 MB); `dataAmount` 9007199254740991 (JavaScript's
  `Number.MAX_SAFE_INTEGER`) or `isUnlimited: true` means unlimited (`data_mb` None);
* `-1` for call/SMS amounts means "not applicable / unlimited" and becomes None;
* the catalog's two shapes (country groups nesting `packages`, or flat packages carrying
  their country fields) give the same `RoamifyPackage`s.

A 2xx body without a required key raises `WireFormatError`; the client turns that into
`ProviderUnavailable` (the answer is unusable). Credentials never appear in a `repr`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from msgspec import field

from esim_gateway.providers.wire import (
    ABSENT,
    Leniency,
    Wire,
    WireFormatError,
    decode,
    force_setattr,
)

__all__ = [
    "MB_PER_UNIT",
    "UNLIMITED_DATA",
    "RoamifyAllowance",
    "RoamifyApn",
    "RoamifyBalance",
    "RoamifyCountry",
    "RoamifyCredentials",
    "RoamifyDataUsage",
    "RoamifyEsim",
    "RoamifyHealth",
    "RoamifyOrder",
    "RoamifyOrderItem",
    "RoamifyPackage",
    "RoamifyPackagePage",
    "RoamifyRate",
    "RoamifyShareLink",
    "RoamifyThrottle",
    "RoamifyTopupPackage",
    "RoamifyUsage",
    "WireFormatError",
    "data_in_mb",
    "unix_time",
]

#: Roamify's "unlimited" data amount (JavaScript's Number.MAX_SAFE_INTEGER)
UNLIMITED_DATA = 9007199254740991
MB_PER_UNIT: dict[str, Decimal] = {
    "KB": Decimal(1) / Decimal(1024),
    "MB": Decimal(1),
    "GB": Decimal(1024),
    "TB": Decimal(1024 * 1024),
}
_MILLISECONDS_ABOVE = 10**11  # 5138 AD in seconds, 1973 in milliseconds


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def unix_time(value: Any) -> dt.datetime | None:
    """Unix seconds (or milliseconds, or an ISO 8601 string) -> aware UTC datetime; None
    for anything else. (The models read timestamps through msgspec; this is for values
    that arrive outside a model, such as webhook fields.)"""
    if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if (number := _number(value)) is None:
        return None
    try:
        seconds = number / 1000 if abs(number) > _MILLISECONDS_ABOVE else number
        return dt.datetime.fromtimestamp(float(seconds), dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None


def data_in_mb(amount: Any, unit: Any, is_unlimited: Any = None) -> tuple[Decimal | None, bool]:
    """(MB, unlimited) of a data allowance; MB is None when unlimited or not given."""
    if is_unlimited is True or str(is_unlimited).lower() in ("true", "1"):
        return None, True
    if (value := _number(amount)) is None:
        return None, False
    if value >= UNLIMITED_DATA or value < 0:
        return None, True
    return value * MB_PER_UNIT.get(str(unit or "MB").strip().upper(), Decimal(1)), False


# -- what the hand-written readers took (the lenient pass; see `wire`) -------------------


def _text(value: Any) -> Any:
    """Anything but an object or a list, as its text (a number, or `True`)."""
    return ABSENT if value is None or isinstance(value, dict | list) else str(value)


def _flag(value: Any) -> Any:
    """`"yes"`, `"true"`, `"1"` (any case) are true, other text false; otherwise truthiness;
    null and `""` are absent."""
    if value is None or value == "":
        return ABSENT
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _decimal(value: Any) -> Any:
    return ABSENT if (number := _number(value)) is None else number


def _integer(value: Any) -> Any:
    """Whole or not (truncated), as a number or numeric text; anything else is absent."""
    return ABSENT if (number := _number(value)) is None else int(number)


def _money(value: Any) -> Any:
    """A price or total: null is absent (0); anything else must be a number."""
    if value is None:
        return ABSENT
    if (number := _number(value)) is None:
        raise WireFormatError("a money amount is not a number")
    return number


def _time(value: Any) -> Any:
    return ABSENT if (moment := unix_time(value)) is None else moment


LENIENCY = Leniency(
    text=_text,
    flag=_flag,
    integer=_integer,
    number=_decimal,
    time=_time,
    money=_money,
    millis_after=dt.datetime.fromtimestamp(_MILLISECONDS_ABOVE, dt.UTC),
    money_fields=frozenset({"price", "total", "balance"}),
    skipped_entries=frozenset({"signals", "data_usages"}),
    to_utc=True,
)


class _Wire(Wire, frozen=True):
    leniency: ClassVar[Leniency] = LENIENCY


def _codes(signals: tuple[_Signal, ...]) -> tuple[str, ...]:
    """`signals[].code`, upper case, in order, without duplicates."""
    return tuple(dict.fromkeys(s.code.upper() for s in signals if s.code))


class RoamifyAllowance(_Wire, frozen=True):
    """Voice or SMS of a package or eSIM: flat on catalog packages (`withCall`, `callType`,
    `callAmount`, `callUnit`), nested under `call` / `sms` on top-up packages and eSIMs."""

    included: bool = False
    type: str | None = None
    #: -1 on the wire (not applicable) -> None
    amount: int | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.amount is not None and self.amount < 0:
            force_setattr(self, "amount", None)


class _Voice(RoamifyAllowance, frozen=True):
    included: bool = field(default=False, name="withCall")
    type: str | None = field(default=None, name="callType")
    amount: int | None = field(default=None, name="callAmount")
    unit: str | None = field(default=None, name="callUnit")


class _Text(RoamifyAllowance, frozen=True):
    included: bool = field(default=False, name="withSMS")
    type: str | None = field(default=None, name="smsType")
    amount: int | None = field(default=None, name="smsAmount")
    unit: str | None = field(default=None, name="smsUnit")


class _Data(_Wire, frozen=True):
    """A data allowance: flat on catalog packages, nested under `data` elsewhere."""

    is_unlimited: bool = False
    data_amount: Decimal | None = None
    data_unit: str | None = None

    @property
    def unlimited(self) -> bool:
        return data_in_mb(self.data_amount, self.data_unit, self.is_unlimited)[1]

    @property
    def data_mb(self) -> Decimal | None:
        return data_in_mb(self.data_amount, self.data_unit, self.is_unlimited)[0]


# -- catalog ----------------------------------------------------------------------------


class RoamifyCountry(_Wire, frozen=True):
    """`GET /api/esim/countries`: regional entries have non-ISO codes (`AFR`)."""

    code: str
    name: str = ""
    geography: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.name:
            force_setattr(self, "name", self.code)


class RoamifyThrottle(_Wire, frozen=True, rename=lambda name: "throttle" + name.title()):
    speed: Decimal | None = None
    speed_unit: str | None = field(default=None, name="throttleSpeedUnit")
    threshold: Decimal | None = None
    threshold_unit: str | None = field(default=None, name="throttleThresholdUnit")

    def describe(self) -> str:
        """e.g. `512 Kbps after 2 GB`."""
        text = f"{self.speed} {self.speed_unit or ''}".strip()
        if self.threshold is not None:
            text += f" after {self.threshold} {self.threshold_unit or ''}".rstrip()
        return text


class _Signal(_Wire, frozen=True):
    code: str | None = None


class _Requirements(_Wire, frozen=True):
    travel_date: bool = False


class _Place(_Wire, frozen=True):
    """The country fields of a catalog group, or of a flat package."""

    country_code: str | None = None
    country_name: str | None = None
    geography: str | None = None
    region: str | None = None
    signals: tuple[_Signal, ...] | None = None


class _Group(_Place, frozen=True):
    id: str | None = None
    packages: tuple[RoamifyPackage, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        for package in self.packages:
            package.adopt(self)


class RoamifyPackage(_Place, frozen=True, kw_only=True):
    """A catalog package, flat, carrying the country fields of its group (copied in by
    the group, for the grouped catalog shape)."""

    package_id: str
    is_unlimited: bool = False
    data_amount: Decimal | None = None
    data_unit: str | None = None
    package: str | None = None
    plan: str | None = None
    activation: str | None = None
    day: int = 0
    price: Decimal = Decimal(0)
    group_id: str | None = None  # not on the wire: the group's `id`
    apn_automatic: bool | None = field(default=None, name="isAPNAutomatic")
    apn: str | None = None
    with_call: bool = False
    call_type: str | None = None
    call_amount: int | None = None
    call_unit: str | None = None
    with_sms: bool = field(default=False, name="withSMS")
    sms_type: str | None = None
    sms_amount: int | None = None
    sms_unit: str | None = None
    with_hotspot: bool = False
    with_data_roaming: bool = False
    with_destination_install: bool = False
    #: False means the usage endpoints do not work for it; absent counts as True
    with_usage_check: bool = True
    with_topup: bool = field(default=False, name="withTopUp")
    with_throttle: bool = False
    throttle: RoamifyThrottle | None = None
    requirements: _Requirements | None = None
    notes: tuple[str, ...] = ()

    _GROUP_FIELDS: ClassVar[tuple[str, ...]] = ("country_code", "country_name", "region")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.throttle is not None and self.throttle.speed is None:
            force_setattr(self, "throttle", None)
        if self.geography is not None:
            force_setattr(self, "geography", self.geography.lower())

    def adopt(self, group: _Place) -> None:
        """Take the group's country fields where this package has none of its own."""
        for name in self._GROUP_FIELDS:
            if getattr(self, name) is None:
                force_setattr(self, name, getattr(group, name))
        if self.geography is None and group.geography is not None:
            force_setattr(self, "geography", group.geography.lower())
        if self.signals is None:
            force_setattr(self, "signals", group.signals)
        if isinstance(group, _Group):
            force_setattr(self, "group_id", group.id)

    @property
    def name(self) -> str:
        return self.package or self.package_id

    @property
    def days(self) -> int:
        return self.day

    @property
    def unlimited(self) -> bool:
        return data_in_mb(self.data_amount, self.data_unit, self.is_unlimited)[1]

    @property
    def data_mb(self) -> Decimal | None:
        return data_in_mb(self.data_amount, self.data_unit, self.is_unlimited)[0]

    @property
    def covered_codes(self) -> tuple[str, ...]:
        return _codes(self.signals or ())

    @property
    def call(self) -> RoamifyAllowance:
        return RoamifyAllowance(self.with_call, self.call_type, self.call_amount, self.call_unit)

    @property
    def sms(self) -> RoamifyAllowance:
        return RoamifyAllowance(self.with_sms, self.sms_type, self.sms_amount, self.sms_unit)

    @property
    def requires_travel_date(self) -> bool:
        return self.requirements is not None and self.requirements.travel_date

    @classmethod
    def from_json(cls, data: Any, group: dict[str, Any] | None = None) -> RoamifyPackage:
        package = decode(data, cls)
        if group is not None:
            package.adopt(decode(group, _Group))
        return package

    @classmethod
    def many_from_json(cls, items: Any) -> list[RoamifyPackage]:
        """Both shapes at once: an item with a nested `packages` list is a country group
        (flattened, its country fields copied into each package); anything else is a
        flat package. A page holds one shape: it is converted in one call."""
        if not isinstance(items, list):
            raise WireFormatError("expected a list of packages")
        shapes = {isinstance(i, dict) and isinstance(i.get("packages"), list) for i in items}
        if shapes == {True}:
            return [p for group in decode(items, list[_Group]) for p in group.packages]
        if shapes != {True, False}:
            return decode(items, list[RoamifyPackage])
        return [p for item in items for p in cls.many_from_json([item])]


@dataclass(frozen=True, slots=True)
class RoamifyPackagePage:
    """One answer of `GET /api/esim/packages`.

    `item_count` is the number of entries of `data.packages` (groups when `grouped`), which
    is what the paging rule compares with `pageSize`. `total` is read when the response
    carries one (undocumented; None otherwise).
    """

    packages: tuple[RoamifyPackage, ...]
    item_count: int
    grouped: bool
    total: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> RoamifyPackagePage:
        total: int | None = None
        if isinstance(data, dict):  # else a bare list instead of {packages: [...]}
            header = decode(data, _PageHeader)
            data, total = header.packages, header.total
            if total is None and header.pagination is not None:
                total = header.pagination.total
        packages = RoamifyPackage.many_from_json(data)
        grouped = any(isinstance(i, dict) and isinstance(i.get("packages"), list) for i in data)
        return cls(tuple(packages), len(data), grouped, total)


class _Pagination(_Wire, frozen=True):
    total: int | None = None


class _PageHeader(_Wire, frozen=True):
    packages: list[Any]
    total: int | None = None
    pagination: _Pagination | None = None


class RoamifyApn(_Wire, frozen=True, rename=lambda name: "apn" + name.title()):
    automatic: bool | None = None
    name: str | None = None
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # the APN password stays out of logs
        return f"RoamifyApn(automatic={self.automatic!r}, name={self.name!r})"


class RoamifyTopupPackage(_Wire, frozen=True):
    """`GET /api/esim/topup/packages`: the nested shape (`data{}`, `call{}`, `sms{}`,
    `apn{}`), unlike the flat catalog package."""

    package_id: str
    package: str | None = None
    plan: str | None = None
    activation: str | None = None
    day: int = 0
    price: Decimal = Decimal(0)
    data: _Data = field(default_factory=_Data)
    apn: RoamifyApn = field(default_factory=RoamifyApn)
    call: _Voice = field(default_factory=_Voice)
    sms: _Text = field(default_factory=_Text)
    with_hotspot: bool = False
    with_data_roaming: bool = False
    with_destination_install: bool = False
    with_usage_check: bool = True
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.package or self.package_id

    @property
    def days(self) -> int:
        return self.day

    @property
    def unlimited(self) -> bool:
        return self.data.unlimited

    @property
    def data_mb(self) -> Decimal | None:
        return self.data.data_mb


# -- eSIMs and orders ----------------------------------------------------------------


class RoamifyCredentials(_Wire, frozen=True):
    """The eSIM's `esim{}` object. Every field is None until `/apply` generated the
    profile (Roamify sends empty strings until then). Never logged."""

    lpa: str | None = field(default=None, name="lpaCode")
    smdp_address: str | None = None
    activation_code: str | None = None
    qr_code_url: str | None = None
    pin: str | None = None
    puk: str | None = None
    number: str | None = None
    ios_install_url: str | None = field(default=None, name="iosQuickInstall")
    android_install_url: str | None = field(default=None, name="androidQuickInstall")

    def __repr__(self) -> str:
        return f"RoamifyCredentials(present={self.lpa is not None})"


class RoamifyEsim(_Wire, frozen=True):
    """An eSIM object (`/apply`, `GET /api/esim`, `GET /api/esims`, instant orders); its
    id is `id` or, in some answers, `esimId`."""

    id: str = ""
    esim_id: str | None = None
    #: None until the profile is generated
    iccid: str | None = None
    status: str = "UNKNOWN"
    activation: str | None = None
    with_topup: bool = field(default=False, name="withTopUp")
    with_hotspot: bool = False
    with_data_roaming: bool = False
    with_destination_install: bool = False
    with_usage_check: bool = True
    credentials: RoamifyCredentials = field(default_factory=RoamifyCredentials, name="esim")
    apn: RoamifyApn = field(default_factory=RoamifyApn)
    data: _Data = field(default_factory=_Data)
    call: _Voice = field(default_factory=_Voice)
    sms: _Text = field(default_factory=_Text)
    notes: tuple[str, ...] = ()
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    expired_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.id:
            if self.esim_id is None:
                raise WireFormatError("an eSIM has no id")
            force_setattr(self, "id", self.esim_id)
        force_setattr(self, "status", self.status.upper())

    def __repr__(self) -> str:  # credentials stay out of logs and tracebacks
        return f"RoamifyEsim(id={self.id!r}, iccid={self.iccid!r}, status={self.status!r})"

    @property
    def unlimited(self) -> bool:
        return self.data.is_unlimited

    @property
    def lpa(self) -> str | None:
        return self.credentials.lpa

    @property
    def activation_code(self) -> str | None:
        return self.credentials.activation_code

    @property
    def pin(self) -> str | None:
        return self.credentials.pin

    @property
    def puk(self) -> str | None:
        return self.credentials.puk

    @property
    def has_profile(self) -> bool:
        return self.iccid is not None and self.credentials.lpa is not None


class RoamifyOrderItem(_Wire, frozen=True):
    """One item per eSIM (quantity 3 -> three items, each with its `esimId`)."""

    package_id: str
    esim_id: str | None = None
    name: str | None = field(default=None, name="package")
    type: str | None = None
    price: Decimal = Decimal(0)
    currency: str = "USD"
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        force_setattr(self, "currency", self.currency.upper())


class RoamifyOrder(_Wire, frozen=True):
    """An order (create, top-up, get, list). An instant order carries `esims` (full eSIM
    objects) instead of `items`."""

    id: str
    reference_id: str | None = None
    order_type: str | None = None
    status: str = "PENDING"
    total: Decimal = Decimal(0)
    currency: str = "USD"
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    items: tuple[RoamifyOrderItem, ...] = ()
    esims: tuple[RoamifyEsim, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        force_setattr(self, "status", self.status.upper())
        force_setattr(self, "currency", self.currency.upper())

    @property
    def esim_ids(self) -> tuple[str, ...]:
        ids = [i.esim_id for i in self.items if i.esim_id] + [e.id for e in self.esims]
        return tuple(dict.fromkeys(ids))


# -- usage and account ---------------------------------------------------------------

_COMPACT_DATE = re.compile(r"^\d{8}$")


class RoamifyDataUsage(_Wire, frozen=True):
    """One day of `usage/details` `dataUsages[]`: `20250102` (docs sample) or
    `2025-01-02` (Apidog); `raw_date` is kept as sent."""

    raw_date: str | None = field(default=None, name="date")
    usage: Decimal = Decimal(0)
    location: str | None = None

    @property
    def date(self) -> dt.date | None:
        text = self.raw_date
        try:
            if text is not None and _COMPACT_DATE.match(text):
                return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
            return dt.date.fromisoformat(text[:10]) if text is not None else None
        except ValueError:
            return None


class RoamifyUsage(_Wire, frozen=True):
    """`GET /api/esim/usage` (and `/usage/details`, which adds `dataUsages`).

    Amounts are as sent: the unit is not documented consistently (providers.md 1.4);
    the gateway decides. A negative or `9007199254740991` data allowance means unlimited
    (`unlimited_data`, and `allowed_data`/`remaining_data` None); negative SMS/voice
    amounts mean not applicable (None).
    """

    iccid: str
    id: str | None = None
    status: str | None = None
    started_at: dt.datetime | None = None
    expired_at: dt.datetime | None = None
    is_unlimited: bool = False
    allowed_data: Decimal | None = None
    remaining_data: Decimal | None = None
    allowed_sms: int | None = None
    remaining_sms: int | None = None
    allowed_voice: Decimal | None = None
    remaining_voice: Decimal | None = None
    #: None for the summary endpoint (no `dataUsages` key)
    data_usages: tuple[RoamifyDataUsage, ...] | None = None

    _AMOUNTS: ClassVar[tuple[str, ...]] = (
        "allowed_data",
        "remaining_data",
        "allowed_sms",
        "remaining_sms",
        "allowed_voice",
        "remaining_voice",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.allowed_data is not None and not 0 <= self.allowed_data < UNLIMITED_DATA:
            force_setattr(self, "is_unlimited", True)
            force_setattr(self, "remaining_data", None)
        for name in self._AMOUNTS:
            amount = getattr(self, name)
            if amount is not None and not 0 <= amount < UNLIMITED_DATA:
                force_setattr(self, name, None)

    @property
    def unlimited_data(self) -> bool:
        return self.is_unlimited


class RoamifyBalance(_Wire, frozen=True):
    balance: Decimal
    currency: str = "USD"

    def __post_init__(self) -> None:
        super().__post_init__()
        force_setattr(self, "currency", self.currency.upper())


def _plain(value: Any) -> str | None:
    return None if (text := _text(value)) is ABSENT else text.strip() or None


@dataclass(frozen=True, slots=True)
class RoamifyHealth:
    """`GET /api/health`: the body is undocumented beyond "contains the status", so any
    2xx answer is healthy unless a status says otherwise; `status` keeps what was sent."""

    healthy: bool
    status: str | None

    @classmethod
    def from_json(cls, body: Any) -> RoamifyHealth:
        if not isinstance(body, dict):
            return cls(True, _plain(body))
        inner = body.get("data")
        status = _plain(inner.get("status")) if isinstance(inner, dict) else None
        status = status or _plain(body.get("status"))
        bad = {"failed", "fail", "error", "down", "unhealthy", "degraded"}
        return cls((status or "").lower() not in bad, status)


class RoamifyRate(_Wire, frozen=True):
    """`GET /api/rates?source=&target=`: units of `target` per one `source`."""

    target: str
    rate: Decimal
    source: str = "USD"
    at: dt.datetime | None = field(default=None, name="datetime")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rate <= 0:
            raise WireFormatError("the exchange rate has no positive rate")
        force_setattr(self, "source", self.source.upper())
        force_setattr(self, "target", self.target.upper())


class RoamifyShareLink(_Wire, frozen=True):
    """`POST /api/esim/link`: `{iccid, esimId, link, whatsappLink, key, accessCode,
    createdAt, updatedAt}`. The link and access code open the eSIM: never logged."""

    link: str
    iccid: str | None = None
    esim_id: str | None = None
    whatsapp_link: str | None = None
    key: str | None = None
    access_code: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    def __repr__(self) -> str:
        return f"RoamifyShareLink(iccid={self.iccid!r})"
