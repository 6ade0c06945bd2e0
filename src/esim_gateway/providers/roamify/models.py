"""Roamify wire models (providers.md 1.4-1.5), parsed tolerantly from decoded JSON.

Each model has `from_json(data)` taking the decoded `data` of the success envelope (or one
element of it). The parsers are lenient about what the docs leave open and strict only
about the keys nothing can work without (ids):

* a missing optional key is None; an empty string (Roamify sends `""` for absent
  credentials: `pin`, `puk`, `number`, `apnName`, ...) is None too;
* timestamps are Unix seconds -> aware UTC datetimes (a value above 10^11 is taken as
  milliseconds; an ISO 8601 string is accepted as well);
* money is a `Decimal` made from the JSON number's text (`Decimal(str(number))`), never
  through float arithmetic;
* data allowances are normalised to MB (`KB`, `MB`, `GB`, `TB`; binary multiples, as
  Roamify's own labels use 1 GB = 1024 MB); `dataAmount` 9007199254740991 (JavaScript's
  `Number.MAX_SAFE_INTEGER`) or `isUnlimited: true` means unlimited (`data_mb` None);
* `-1` for call/SMS amounts means "not applicable / unlimited" and becomes None.

A 2xx body without a required key raises `WireFormatError`; the client turns that into
`ProviderUnavailable` (the answer is unusable). Credentials never appear in a `repr`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

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
    "money",
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


class WireFormatError(ValueError):
    """A 2xx body that lacks what the documented shape promises."""


# -- leaf parsers ---------------------------------------------------------------------


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WireFormatError(f"expected an object for {what}, got {type(value).__name__}")
    return value


def _sub(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    """Text, or None for a missing value or an empty string."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _req_str(data: dict[str, Any], key: str, what: str) -> str:
    value = _str(data.get(key))
    if value is None:
        raise WireFormatError(f"{what} has no {key}")
    return value


def _flag(value: Any) -> bool | None:
    """A boolean; None when absent. `"true"`/`"false"` strings and 0/1 are accepted."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _bool(value: Any, default: bool = False) -> bool:
    flag = _flag(value)
    return default if flag is None else flag


def _number(value: Any) -> Decimal | None:
    """A JSON number (or numeric string) as Decimal, via its text; None when absent."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _amount(value: Any) -> int | None:
    """A call/SMS allowance: -1 (and any negative) means not applicable -> None."""
    number = _int(value)
    return number if number is not None and number >= 0 else None


@dataclass(frozen=True, slots=True)
class RoamifyAllowance:
    """Voice or SMS of a package or eSIM: flat on catalog packages (`withCall`, `callType`,
    `callAmount`, `callUnit`), nested under `call` / `sms` on top-up packages and eSIMs."""

    included: bool
    type: str | None
    amount: int | None  # -1 on the wire (not applicable) -> None
    unit: str | None

    @classmethod
    def voice(cls, d: Mapping[str, Any]) -> RoamifyAllowance:
        return cls._read(d, "withCall", "call")

    @classmethod
    def text(cls, d: Mapping[str, Any]) -> RoamifyAllowance:
        return cls._read(d, "withSMS", "sms")

    @classmethod
    def _read(cls, d: Mapping[str, Any], flag: str, prefix: str) -> RoamifyAllowance:
        return cls(
            included=_bool(d.get(flag)),
            type=_str(d.get(f"{prefix}Type")),
            amount=_amount(d.get(f"{prefix}Amount")),
            unit=_str(d.get(f"{prefix}Unit")),
        )


def money(value: Any) -> Decimal:
    """A price/total. Missing -> 0 (every sample has one); garbage -> WireFormatError."""
    if value is None:
        return Decimal(0)
    number = _number(value)
    if number is None:
        raise WireFormatError("a money amount is not a number")
    return number


def unix_time(value: Any) -> datetime | None:
    """Unix seconds (or milliseconds, or an ISO 8601 string) -> aware UTC datetime."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    number = _number(value)
    if number is None:
        return None
    if abs(number) > _MILLISECONDS_ABOVE:
        number /= 1000
    try:
        return datetime.fromtimestamp(float(number), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def data_in_mb(amount: Any, unit: Any, is_unlimited: Any = None) -> tuple[Decimal | None, bool]:
    """(MB, unlimited) of a data allowance; MB is None when unlimited or not given."""
    if _bool(is_unlimited):
        return None, True
    value = _number(amount)
    if value is None:
        return None, False
    if value >= UNLIMITED_DATA or value < 0:
        return None, True
    factor = MB_PER_UNIT.get((_str(unit) or "MB").upper(), Decimal(1))
    return value * factor, False


def _codes(signals: Any) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for signal in _list(signals):
        code = _str(signal.get("code")) if isinstance(signal, dict) else None
        if code:
            found[code.upper()] = None
    return tuple(found)


def _notes(value: Any) -> tuple[str, ...]:
    return tuple(text for text in (_str(n) for n in _list(value)) if text)


# -- catalog ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoamifyCountry:
    """`GET /api/esim/countries`: regional entries have non-ISO codes (`AFR`)."""

    code: str
    name: str
    geography: str | None

    @classmethod
    def from_json(cls, data: Any) -> RoamifyCountry:
        d = _obj(data, "country")
        code = _req_str(d, "code", "a country")
        return cls(code, _str(d.get("name")) or code, _str(d.get("geography")))


@dataclass(frozen=True, slots=True)
class RoamifyThrottle:
    speed: Decimal | None
    speed_unit: str | None
    threshold: Decimal | None
    threshold_unit: str | None

    @classmethod
    def from_json(cls, data: Any) -> RoamifyThrottle | None:
        if not isinstance(data, dict):
            return None
        throttle = cls(
            _number(data.get("throttleSpeed")),
            _str(data.get("throttleSpeedUnit")),
            _number(data.get("throttleThreshold")),
            _str(data.get("throttleThresholdUnit")),
        )
        return throttle if throttle.speed is not None else None

    def describe(self) -> str:
        """e.g. `512 Kbps after 2 GB`."""
        text = f"{self.speed} {self.speed_unit or ''}".strip()
        if self.threshold is not None:
            text += f" after {self.threshold} {self.threshold_unit or ''}".rstrip()
        return text


@dataclass(frozen=True, slots=True)
class RoamifyPackage:
    """A catalog package, flat, carrying the country fields of its group.

    Parsed from either catalog shape: a package nested in a country group (the group is
    passed as `group`) or a flat package that carries `countryCode`, `countryName`,
    `geography`, `region` and `signals` itself (the paginated shape).
    """

    package_id: str
    name: str
    plan: str | None
    activation: str | None
    days: int
    price: Decimal
    unlimited: bool
    #: None when unlimited (or not given)
    data_mb: Decimal | None
    country_code: str | None
    country_name: str | None
    geography: str | None
    region: str | None
    #: the group's `signals[].code`, upper case, in order, without duplicates
    covered_codes: tuple[str, ...]
    group_id: str | None
    apn_automatic: bool | None
    apn: str | None
    call: RoamifyAllowance
    sms: RoamifyAllowance
    with_hotspot: bool
    with_data_roaming: bool
    with_destination_install: bool
    #: False means the usage endpoints do not work for it; absent counts as True
    with_usage_check: bool
    with_topup: bool
    with_throttle: bool
    throttle: RoamifyThrottle | None
    requires_travel_date: bool
    notes: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any, group: dict[str, Any] | None = None) -> RoamifyPackage:
        d = _obj(data, "package")
        g = group if group is not None else {}

        def place(key: str) -> str | None:
            return _str(d.get(key)) or _str(g.get(key))

        package_id = _req_str(d, "packageId", "a package")
        mb, unlimited = data_in_mb(d.get("dataAmount"), d.get("dataUnit"), d.get("isUnlimited"))
        signals = d.get("signals") if isinstance(d.get("signals"), list) else g.get("signals")
        return cls(
            package_id=package_id,
            name=_str(d.get("package")) or package_id,
            plan=_str(d.get("plan")),
            activation=_str(d.get("activation")),
            days=_int(d.get("day")) or 0,
            price=money(d.get("price")),
            unlimited=unlimited,
            data_mb=mb,
            country_code=place("countryCode"),
            country_name=place("countryName"),
            geography=(place("geography") or "").lower() or None,
            region=place("region"),
            covered_codes=_codes(signals),
            group_id=_str(g.get("id")),
            apn_automatic=_flag(d.get("isAPNAutomatic")),
            apn=_str(d.get("apn")),
            call=RoamifyAllowance.voice(d),
            sms=RoamifyAllowance.text(d),
            with_hotspot=_bool(d.get("withHotspot")),
            with_data_roaming=_bool(d.get("withDataRoaming")),
            with_destination_install=_bool(d.get("withDestinationInstall")),
            with_usage_check=_bool(d.get("withUsageCheck"), default=True),
            with_topup=_bool(d.get("withTopUp")),
            with_throttle=_bool(d.get("withThrottle")),
            throttle=RoamifyThrottle.from_json(d.get("throttle")),
            requires_travel_date=_bool(_sub(d, "requirements").get("travelDate")),
            notes=_notes(d.get("notes")),
        )

    @classmethod
    def many_from_json(cls, items: Any) -> list[RoamifyPackage]:
        """Both shapes at once: an item with a nested `packages` list is a country group
        (flattened, its country fields copied into each package); anything else is a
        flat package."""
        if not isinstance(items, list):
            raise WireFormatError("expected a list of packages")
        found: list[RoamifyPackage] = []
        for item in items:
            entry = _obj(item, "package or country group")
            nested = entry.get("packages")
            if isinstance(nested, list):
                found.extend(cls.from_json(p, entry) for p in nested)
            else:
                found.append(cls.from_json(entry))
        return found


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
        if isinstance(data, list):  # a bare list instead of {packages: [...]}
            items: Any = data
            total = None
        else:
            d = _obj(data, "package list")
            items = d.get("packages")
            if items is None:
                raise WireFormatError("the package list has no packages")
            total = _int(d.get("total"))
            if total is None:
                total = _int(_sub(d, "pagination").get("total"))
        packages = RoamifyPackage.many_from_json(items)
        grouped = any(isinstance(i, dict) and isinstance(i.get("packages"), list) for i in items)
        return cls(tuple(packages), len(items), grouped, total)


@dataclass(frozen=True, slots=True)
class RoamifyApn:
    automatic: bool | None
    name: str | None
    username: str | None
    password: str | None

    def __repr__(self) -> str:  # the APN password stays out of logs
        return f"RoamifyApn(automatic={self.automatic!r}, name={self.name!r})"

    @classmethod
    def from_json(cls, data: Any) -> RoamifyApn:
        d = data if isinstance(data, dict) else {}
        return cls(
            _flag(d.get("apnAutomatic")),
            _str(d.get("apnName")),
            _str(d.get("apnUsername")),
            _str(d.get("apnPassword")),
        )


@dataclass(frozen=True, slots=True)
class RoamifyTopupPackage:
    """`GET /api/esim/topup/packages`: the nested shape (`data{}`, `call{}`, `sms{}`,
    `apn{}`), unlike the flat catalog package."""

    package_id: str
    name: str
    plan: str | None
    activation: str | None
    days: int
    price: Decimal
    unlimited: bool
    data_mb: Decimal | None
    apn: RoamifyApn
    call: RoamifyAllowance
    sms: RoamifyAllowance
    with_hotspot: bool
    with_data_roaming: bool
    with_destination_install: bool
    with_usage_check: bool
    notes: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any) -> RoamifyTopupPackage:
        d = _obj(data, "top-up package")
        package_id = _req_str(d, "packageId", "a top-up package")
        allowance, call, sms = _sub(d, "data"), _sub(d, "call"), _sub(d, "sms")
        mb, unlimited = data_in_mb(
            allowance.get("dataAmount"), allowance.get("dataUnit"), allowance.get("isUnlimited")
        )
        return cls(
            package_id=package_id,
            name=_str(d.get("package")) or package_id,
            plan=_str(d.get("plan")),
            activation=_str(d.get("activation")),
            days=_int(d.get("day")) or 0,
            price=money(d.get("price")),
            unlimited=unlimited,
            data_mb=mb,
            apn=RoamifyApn.from_json(d.get("apn")),
            call=RoamifyAllowance.voice(call),
            sms=RoamifyAllowance.text(sms),
            with_hotspot=_bool(d.get("withHotspot")),
            with_data_roaming=_bool(d.get("withDataRoaming")),
            with_destination_install=_bool(d.get("withDestinationInstall")),
            with_usage_check=_bool(d.get("withUsageCheck"), default=True),
            notes=_notes(d.get("notes")),
        )


# -- eSIMs and orders ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoamifyCredentials:
    """The eSIM's `esim{}` object. Every field is None until `/apply` generated the
    profile (Roamify sends empty strings until then). Never logged."""

    lpa: str | None
    smdp_address: str | None
    activation_code: str | None
    qr_code_url: str | None
    pin: str | None
    puk: str | None
    number: str | None
    ios_install_url: str | None
    android_install_url: str | None

    def __repr__(self) -> str:
        return f"RoamifyCredentials(present={self.lpa is not None})"

    @classmethod
    def from_json(cls, data: Any) -> RoamifyCredentials:
        d = data if isinstance(data, dict) else {}
        return cls(
            lpa=_str(d.get("lpaCode")),
            smdp_address=_str(d.get("smdpAddress")),
            activation_code=_str(d.get("activationCode")),
            qr_code_url=_str(d.get("qrCodeUrl")),
            pin=_str(d.get("pin")),
            puk=_str(d.get("puk")),
            number=_str(d.get("number")),
            ios_install_url=_str(d.get("iosQuickInstall")),
            android_install_url=_str(d.get("androidQuickInstall")),
        )


@dataclass(frozen=True, slots=True)
class RoamifyEsim:
    """An eSIM object (`/apply`, `GET /api/esim`, `GET /api/esims`, instant orders)."""

    id: str
    #: None until the profile is generated
    iccid: str | None
    status: str
    activation: str | None
    with_topup: bool
    with_hotspot: bool
    with_data_roaming: bool
    with_destination_install: bool
    with_usage_check: bool
    credentials: RoamifyCredentials
    apn: RoamifyApn
    unlimited: bool
    call: RoamifyAllowance
    sms: RoamifyAllowance
    notes: tuple[str, ...]
    created_at: datetime | None
    updated_at: datetime | None
    expired_at: datetime | None

    def __repr__(self) -> str:  # credentials stay out of logs and tracebacks
        return f"RoamifyEsim(id={self.id!r}, iccid={self.iccid!r}, status={self.status!r})"

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

    @classmethod
    def from_json(cls, data: Any) -> RoamifyEsim:
        d = _obj(data, "eSIM")
        call, sms = _sub(d, "call"), _sub(d, "sms")
        return cls(
            id=_str(d.get("id")) or _req_str(d, "esimId", "an eSIM"),
            iccid=_str(d.get("iccid")),
            status=(_str(d.get("status")) or "UNKNOWN").upper(),
            activation=_str(d.get("activation")),
            with_topup=_bool(d.get("withTopUp")),
            with_hotspot=_bool(d.get("withHotspot")),
            with_data_roaming=_bool(d.get("withDataRoaming")),
            with_destination_install=_bool(d.get("withDestinationInstall")),
            with_usage_check=_bool(d.get("withUsageCheck"), default=True),
            credentials=RoamifyCredentials.from_json(d.get("esim")),
            apn=RoamifyApn.from_json(d.get("apn")),
            unlimited=_bool(_sub(d, "data").get("isUnlimited")),
            call=RoamifyAllowance.voice(call),
            sms=RoamifyAllowance.text(sms),
            notes=_notes(d.get("notes")),
            created_at=unix_time(d.get("createdAt")),
            updated_at=unix_time(d.get("updatedAt")),
            expired_at=unix_time(d.get("expiredAt")),
        )


@dataclass(frozen=True, slots=True)
class RoamifyOrderItem:
    """One item per eSIM (quantity 3 -> three items, each with its `esimId`)."""

    esim_id: str | None
    package_id: str
    name: str | None
    type: str | None
    price: Decimal
    currency: str
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, data: Any) -> RoamifyOrderItem:
        d = _obj(data, "order item")
        return cls(
            esim_id=_str(d.get("esimId")),
            package_id=_req_str(d, "packageId", "an order item"),
            name=_str(d.get("package")),
            type=_str(d.get("type")),
            price=money(d.get("price")),
            currency=(_str(d.get("currency")) or "USD").upper(),
            created_at=unix_time(d.get("createdAt")),
            updated_at=unix_time(d.get("updatedAt")),
        )


@dataclass(frozen=True, slots=True)
class RoamifyOrder:
    """An order (create, top-up, get, list). An instant order carries `esims` (full eSIM
    objects) instead of `items`."""

    id: str
    reference_id: str | None
    order_type: str | None
    status: str
    total: Decimal
    currency: str
    created_at: datetime | None
    updated_at: datetime | None
    items: tuple[RoamifyOrderItem, ...]
    esims: tuple[RoamifyEsim, ...]

    @property
    def esim_ids(self) -> tuple[str, ...]:
        ids = [i.esim_id for i in self.items if i.esim_id] + [e.id for e in self.esims]
        return tuple(dict.fromkeys(ids))

    @classmethod
    def from_json(cls, data: Any) -> RoamifyOrder:
        d = _obj(data, "order")
        return cls(
            id=_req_str(d, "id", "an order"),
            reference_id=_str(d.get("referenceId")),
            order_type=_str(d.get("orderType")),
            status=(_str(d.get("status")) or "PENDING").upper(),
            total=money(d.get("total")),
            currency=(_str(d.get("currency")) or "USD").upper(),
            created_at=unix_time(d.get("createdAt")),
            updated_at=unix_time(d.get("updatedAt")),
            items=tuple(RoamifyOrderItem.from_json(i) for i in _list(d.get("items"))),
            esims=tuple(RoamifyEsim.from_json(e) for e in _list(d.get("esims"))),
        )


# -- usage and account ---------------------------------------------------------------

_COMPACT_DATE = re.compile(r"^\d{8}$")


def _usage_date(value: Any) -> date | None:
    """`20250102` (docs sample) or `2025-01-02` (Apidog)."""
    text = _str(value)
    if text is None:
        return None
    try:
        if _COMPACT_DATE.match(text):
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RoamifyDataUsage:
    """One day of `usage/details` `dataUsages[]`; `raw_date` is kept as sent."""

    raw_date: str | None
    date: date | None
    usage: Decimal
    location: str | None

    @classmethod
    def from_json(cls, data: Any) -> RoamifyDataUsage:
        d = _obj(data, "data usage entry")
        return cls(
            _str(d.get("date")),
            _usage_date(d.get("date")),
            _number(d.get("usage")) or Decimal(0),
            _str(d.get("location")),
        )


@dataclass(frozen=True, slots=True)
class RoamifyUsage:
    """`GET /api/esim/usage` (and `/usage/details`, which adds `dataUsages`).

    Amounts are as sent: the unit is not documented consistently (providers.md 1.4);
    the gateway decides. A negative or `9007199254740991` data allowance means unlimited
    (`unlimited_data`, and `allowed_data`/`remaining_data` None); negative SMS/voice
    amounts mean not applicable (None).
    """

    id: str | None
    iccid: str
    status: str | None
    started_at: datetime | None
    expired_at: datetime | None
    unlimited_data: bool
    allowed_data: Decimal | None
    remaining_data: Decimal | None
    allowed_sms: int | None
    remaining_sms: int | None
    allowed_voice: Decimal | None
    remaining_voice: Decimal | None
    #: None for the summary endpoint (no `dataUsages` key)
    data_usages: tuple[RoamifyDataUsage, ...] | None

    @classmethod
    def from_json(cls, data: Any) -> RoamifyUsage:
        d = _obj(data, "usage")

        def amount(key: str) -> Decimal | None:
            number = _number(d.get(key))
            return None if number is None or number < 0 or number >= UNLIMITED_DATA else number

        allowed = _number(d.get("allowedData"))
        unlimited = allowed is not None and (allowed < 0 or allowed >= UNLIMITED_DATA)
        allowed_sms, remaining_sms = amount("allowedSms"), amount("remainingSms")
        usages = d.get("dataUsages")
        return cls(
            id=_str(d.get("id")),
            iccid=_req_str(d, "iccid", "a usage report"),
            status=_str(d.get("status")),
            started_at=unix_time(d.get("startedAt")),
            expired_at=unix_time(d.get("expiredAt")),
            unlimited_data=unlimited or _bool(d.get("isUnlimited")),
            allowed_data=None if unlimited else amount("allowedData"),
            remaining_data=None if unlimited else amount("remainingData"),
            allowed_sms=int(allowed_sms) if allowed_sms is not None else None,
            remaining_sms=int(remaining_sms) if remaining_sms is not None else None,
            allowed_voice=amount("allowedVoice"),
            remaining_voice=amount("remainingVoice"),
            data_usages=(
                tuple(RoamifyDataUsage.from_json(u) for u in usages if isinstance(u, dict))
                if isinstance(usages, list)
                else None
            ),
        )


@dataclass(frozen=True, slots=True)
class RoamifyBalance:
    balance: Decimal
    currency: str

    @classmethod
    def from_json(cls, data: Any) -> RoamifyBalance:
        d = _obj(data, "balance")
        if d.get("balance") is None:
            raise WireFormatError("the balance has no balance")
        return cls(money(d.get("balance")), (_str(d.get("currency")) or "USD").upper())


@dataclass(frozen=True, slots=True)
class RoamifyHealth:
    """`GET /api/health`: the body is undocumented beyond "contains the status", so any
    2xx answer is healthy unless a status says otherwise; `status` keeps what was sent."""

    healthy: bool
    status: str | None

    @classmethod
    def from_json(cls, body: Any) -> RoamifyHealth:
        if not isinstance(body, dict):
            return cls(True, _str(body))
        inner = body.get("data")
        status = _str(inner.get("status")) if isinstance(inner, dict) else None
        status = status or _str(body.get("status"))
        bad = {"failed", "fail", "error", "down", "unhealthy", "degraded"}
        return cls((status or "").lower() not in bad, status)


@dataclass(frozen=True, slots=True)
class RoamifyRate:
    """`GET /api/rates?source=&target=`: units of `target` per one `source`."""

    source: str
    target: str
    rate: Decimal
    at: datetime | None

    @classmethod
    def from_json(cls, data: Any) -> RoamifyRate:
        d = _obj(data, "exchange rate")
        rate = _number(d.get("rate"))
        if rate is None or rate <= 0:
            raise WireFormatError("the exchange rate has no positive rate")
        return cls(
            (_str(d.get("source")) or "USD").upper(),
            _req_str(d, "target", "an exchange rate").upper(),
            rate,
            unix_time(d.get("datetime")),
        )


@dataclass(frozen=True, slots=True)
class RoamifyShareLink:
    """`POST /api/esim/link`: `{iccid, esimId, link, whatsappLink, key, accessCode,
    createdAt, updatedAt}`. The link and access code open the eSIM: never logged."""

    iccid: str | None
    esim_id: str | None
    link: str
    whatsapp_link: str | None
    key: str | None
    access_code: str | None
    created_at: datetime | None
    updated_at: datetime | None

    def __repr__(self) -> str:
        return f"RoamifyShareLink(iccid={self.iccid!r})"

    @classmethod
    def from_json(cls, data: Any) -> RoamifyShareLink:
        d = _obj(data, "eSIM link")
        return cls(
            iccid=_str(d.get("iccid")),
            esim_id=_str(d.get("esimId")),
            link=_req_str(d, "link", "an eSIM link"),
            whatsapp_link=_str(d.get("whatsappLink")),
            key=_str(d.get("key")),
            access_code=_str(d.get("accessCode")),
            created_at=unix_time(d.get("createdAt")),
            updated_at=unix_time(d.get("updatedAt")),
        )
