"""The Roamify simulator's routes: same paths, query parameters, envelopes and errors as
providers.md section 1.

Where the contract is silent or ambiguous the simulator chooses, and says so here:

* `GET /api/esim/packages` without `page`/`pageSize` answers the older country-grouped
  shape (`data.packages[]` of groups, each with its `packages[]`). With either parameter it
  pages over the flat package list (defaults page 1, pageSize 50, at most 500): each item is
  a package object plus its group's `countryCode`, `countryName`, `geography`, `region` and
  `signals`, under `data.packages[]`, with no total/page metadata (the paginated shape is
  undocumented). A client stops at a page shorter than `pageSize`.
* Filters take the values of `/api/esim/countries` (`country` = a name, case-insensitive;
  `countryCode` = a code); free text, an unknown `geography` or a non-numeric `days`/`gbs`
  is a 400. `packageId` ignores the other filters; `gbs` is ignored with `isUnlimited=true`.
* `referenceId` is not unique: a repeated one creates another order (the real API's
  behaviour is unknown, so the gateway must never rely on upstream de-duplication);
  lookups and `apply` by reference use the newest order with it.
* Validation errors use the observed Joi-style body `{"error": "..."}` with status 400,
  including an unknown `packageId` in an order (`"items[0].packageId" ...`), a top-up
  `packageId` not offered for that ICCID, a missing `startDate` for a travel-date package
  (this one adds `"code": "TRAVEL_DATE_REQUIRED"`) and a body that is not JSON. Business
  errors use `{"message", "status": "failed", "code"?}`: 404 "Order not found" / "eSIM not
  found", 422 `INSUFFICIENT_BALANCE` (nothing is created or charged), 422
  `TOPUP_NOT_SUPPORTED` (package without `withTopUp`), 422 `ESIM_NOT_ACTIVE` (top-up of a
  revoked/expired/deleted eSIM), 422 `USAGE_NOT_SUPPORTED` (`withUsageCheck=false`).
* An eSIM exists from its order on: status NEW, `iccid` "" and empty-string credentials,
  `expiredAt` null. `apply` gives it a 19-digit ICCID (`8940...`, Luhn-valid) and its
  profile (NEW -> READY); applying again returns it unchanged. Instant orders accept an
  optional `startDate` too (for travel-date packages; without it they are refused).
* Usage amounts (`allowedData`, `remainingData`, `dataUsages[].usage`) are in **MB**
  (providers.md notes KB vs MB); unlimited plans report `allowedData`/`remainingData` -1.
  `startedAt`/`expiredAt` of usage are the plan window (null until installed).
* `GET /api/esim/topup/packages` offers the eSIM's destination's fixed-data plans of up to
  30 days (nested shape); an eSIM without `withTopUp` gets an empty list.
* `GET /api/esim/event` and `/api/esim/events` both answer (GET, unwrapped body).
* `POST /api/esim/sms` (response undocumented) answers `data {iccid, message, status}`.
* `GET /api/currencies` and `GET /api/rates` use static rates (`RATES`, units per USD:
  VND 25,400, EUR 0.92, GBP 0.79, JPY 151.2, ...); `datetime`/`from`/`to` are ignored.
* `GET /api/health` answers `{"status": "success", "data": {"status": "ok"}}`.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from esim_gateway.sandbox._kit import Refused, json_response, refusals
from esim_gateway.sandbox.roamify.state import SMDP, RoamifyEsim, RoamifyOrder, RoamifyState

__all__ = ["RATES", "UNAUTHORIZED", "esim_json", "order_json", "routes"]

UNAUTHORIZED = "Unauthorized, please make sure your have provided the correct api key"
MAX_ITEMS = 10
MAX_QUANTITY = 10
MAX_PAGE_SIZE = 500
GEOGRAPHIES = ("local", "regional", "global")
INACTIVE = ("REVOKED", "EXPIRED", "DELETED")
#: (model, deviceType, os, brand, name)
_DEVICES = (
    ("iPhone16,1", "phone", "ios", "Apple", "iPhone 15 Pro"),
    ("iPhone15,4", "phone", "ios", "Apple", "iPhone 15"),
    ("iPad14,3", "tablet", "ios", "Apple", "iPad Pro 11-inch (4th generation)"),
    ("Pixel 8", "phone", "android", "Google", "Pixel 8"),
    ("SM-S921B", "phone", "android", "Samsung", "Galaxy S24"),
    ("SM-R930", "watch", "android", "Samsung", "Galaxy Watch6"),
)
DEVICES = [
    {"model": m, "deviceType": t, "os": o, "brand": b, "name": n} for m, t, o, b, n in _DEVICES
]
#: static exchange rates, units of the currency per one USD
RATES: dict[str, tuple[str, Decimal]] = {
    "USD": ("US Dollar", Decimal(1)),
    "VND": ("Vietnamese Dong", Decimal(25400)),
    "EUR": ("Euro", Decimal("0.92")),
    "GBP": ("British Pound", Decimal("0.79")),
    "JPY": ("Japanese Yen", Decimal("151.2")),
    "AUD": ("Australian Dollar", Decimal("1.52")),
    "SGD": ("Singapore Dollar", Decimal("1.34")),
    "THB": ("Thai Baht", Decimal("36.1")),
}


# -- bodies --------------------------------------------------------------------------


def ok(data: Any, status: int = 200) -> Response:
    return json_response({"status": "success", "data": data}, status)


def joi(message: str, code: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if code is not None:
        body["code"] = code
    return json_response(body, 400)


def failed(status: int, message: str, code: str | None = None) -> Response:
    body: dict[str, Any] = {"message": message, "status": "failed"}
    if code is not None:
        body["code"] = code
    return json_response(body, status)


def _money(value: Decimal) -> float | int:
    number = float(value)
    return int(number) if number.is_integer() else round(number, 2)


def order_json(state: RoamifyState, order: RoamifyOrder) -> dict[str, Any]:
    """The Order object (providers.md 1.5): one `items[]` entry per eSIM."""
    items = []
    for esim_id, package_id in zip(order.esim_ids, order.item_package_ids, strict=True):
        package, _ = state.catalog.packages[package_id]
        items.append(
            {
                "esimId": esim_id,
                "packageId": package_id,
                "package": package["package"],
                "type": "esim",
                "price": package["price"],
                "currency": "USD",
                "createdAt": order.created_at,
                "updatedAt": order.updated_at,
            }
        )
    return {
        "id": order.id,
        "referenceId": order.reference_id,
        "orderType": "api",
        "status": order.status,
        "total": _money(order.total),
        "currency": "USD",
        "createdAt": order.created_at,
        "updatedAt": order.updated_at,
        "items": items,
    }


def esim_json(state: RoamifyState, esim: RoamifyEsim) -> dict[str, Any]:
    """The eSIM object (providers.md 1.5); credentials are "" until applied."""
    package, _ = state.catalog.packages[esim.package_id]
    lpa = f"LPA:1${SMDP}${esim.activation_code}" if esim.applied else ""
    return {
        "id": esim.id,
        "iccid": esim.iccid,
        "status": esim.status,
        "activation": package["activation"],
        "withTopUp": package["withTopUp"],
        "withHotspot": package["withHotspot"],
        "withDataRoaming": package["withDataRoaming"],
        "withDestinationInstall": package["withDestinationInstall"],
        "withUsageCheck": package["withUsageCheck"],
        "esim": {
            "lpaCode": lpa,
            "smdpAddress": SMDP if esim.applied else "",
            "activationCode": esim.activation_code,
            "qrCodeUrl": (
                f"https://qr.sandbox.roamify.example/partners/{esim.id}/iccid/public"
                if esim.applied
                else ""
            ),
            "pin": esim.pin,
            "puk": esim.puk,
            "number": "",
            "iosQuickInstall": (
                f"https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={lpa}"
                if lpa
                else ""
            ),
            "androidQuickInstall": (
                f"https://esimsetup.android.com/esim_qrcode_provisioning?carddata={lpa}"
                if lpa
                else ""
            ),
        },
        "apn": {
            "apnAutomatic": package["isAPNAutomatic"],
            "apnName": package["apn"],
            "apnUsername": "",
            "apnPassword": "",
        },
        "data": {"isUnlimited": package["isUnlimited"]},
        "call": {"withCall": package["withCall"], "callType": package["callType"]},
        "sms": {"withSMS": package["withSMS"], "smsType": package["smsType"]},
        "notes": list(package["notes"]),
        "createdAt": esim.created_at,
        "updatedAt": esim.updated_at,
        "expiredAt": esim.expired_at,
    }


def _topup_json(package: dict[str, Any]) -> dict[str, Any]:
    """The nested shape of `GET /api/esim/topup/packages` (unlike the flat catalog)."""
    return {
        "packageId": package["packageId"],
        "package": package["package"],
        "plan": package["plan"],
        "activation": package["activation"],
        "day": package["day"],
        "price": package["price"],
        "withHotspot": package["withHotspot"],
        "withDataRoaming": package["withDataRoaming"],
        "withDestinationInstall": package["withDestinationInstall"],
        "withUsageCheck": package["withUsageCheck"],
        "apn": {
            "apnAutomatic": package["isAPNAutomatic"],
            "apnName": package["apn"],
            "apnUsername": "",
            "apnPassword": "",
        },
        "data": {
            "isUnlimited": package["isUnlimited"],
            "dataAmount": package["dataAmount"],
            "dataUnit": package["dataUnit"],
        },
        "call": {
            "withCall": package["withCall"],
            "callType": package["callType"],
            "callAmount": package["callAmount"],
            "callUnit": package["callUnit"],
        },
        "sms": {
            "withSMS": package["withSMS"],
            "smsType": package["smsType"],
            "smsAmount": package["smsAmount"],
            "smsUnit": package["smsUnit"],
        },
        "notes": list(package["notes"]),
    }


# -- request parsing -------------------------------------------------------------------


def _state(request: Request) -> RoamifyState:
    state: RoamifyState = request.app.state.roamify
    return state


def refuse(message: str, code: str | None = None) -> Refused:
    """A Joi-style 400 (`joi`), raised."""
    return Refused(joi(message, code))


async def _json_body(request: Request) -> dict[str, Any]:
    """The JSON object body; null optional values count as absent (Joi's `allow(null)`)."""
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise refuse("Unexpected token in JSON body: the body must be valid JSON") from None
    if not isinstance(body, dict):
        raise refuse('"value" must be of type object')
    return {k: v for k, v in body.items() if v is not None}


def _unknown_key(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Joi refuses keys outside the schema, after the known keys were validated (so a
    body with `packageId` at the top level still says `"items" is required`)."""
    for key in body:
        if key not in allowed:
            raise refuse(f'"{key}" is not allowed')


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise refuse(f'"{key}" must be a string')
    return value


def _required_str(body: dict[str, Any], key: str, where: str = "") -> str:
    name = f"{where}.{key}" if where else key
    value = body.get(key)
    if value is None:
        raise refuse(f'"{name}" is required')
    if not isinstance(value, str) or not value:
        raise refuse(f'"{name}" must be a non-empty string')
    return value


def _start_date(body: dict[str, Any]) -> str | None:
    start = _optional_str(body, "startDate")
    if isinstance(start, str):
        try:
            datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            raise refuse('"startDate" must be in ISO 8601 date format') from None
    return start


def _parse_items(body: dict[str, Any], state: RoamifyState) -> list[tuple[str, int]]:
    items = body.get("items")
    if items is None:
        raise refuse('"items" is required')
    if not isinstance(items, list):
        raise refuse('"items" must be an array')
    if not items:
        raise refuse('"items" must contain at least 1 items')
    if len(items) > MAX_ITEMS:
        raise refuse(f'"items" must contain less than or equal to {MAX_ITEMS} items')
    return [_parse_item(f"items[{index}]", item, state) for index, item in enumerate(items)]


def _parse_item(where: str, item: Any, state: RoamifyState) -> tuple[str, int]:
    if not isinstance(item, dict):
        raise refuse(f'"{where}" must be of type object')
    for key in item:
        if key not in ("packageId", "quantity"):
            raise refuse(f'"{where}.{key}" is not allowed')
    package_id = _required_str(item, "packageId", where)
    quantity = _quantity(where, item.get("quantity"))
    if package_id not in state.catalog.packages:
        raise refuse(f'"{where}.packageId" package {package_id} was not found')
    return package_id, quantity


def _quantity(where: str, quantity: Any) -> int:
    if quantity is None:
        raise refuse(f'"{where}.quantity" is required')
    if isinstance(quantity, bool) or not isinstance(quantity, int | float):
        raise refuse(f'"{where}.quantity" must be a number')
    if not float(quantity).is_integer():
        raise refuse(f'"{where}.quantity" must be an integer')
    if quantity < 1:
        raise refuse(f'"{where}.quantity" must be greater than or equal to 1')
    if quantity > MAX_QUANTITY:
        raise refuse(f'"{where}.quantity" must be less than or equal to {MAX_QUANTITY}')
    return int(quantity)


def _bool_param(value: str | None) -> bool | None:
    return None if value is None else value.strip().lower() in ("true", "1")


def _number_param(request: Request, key: str) -> float | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return None
    try:
        number = float(raw)
    except ValueError:
        raise refuse(f'"{key}" must be a number') from None
    if not math.isfinite(number):
        raise refuse(f'"{key}" must be a number')
    return number


def _limit(request: Request) -> int | Response:
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        return joi('"limit" must be a number')
    return limit if limit >= 1 else joi('"limit" must be greater than or equal to 1')


def _esim_from_query(state: RoamifyState, request: Request) -> RoamifyEsim | Response:
    iccid = request.query_params.get("iccid")
    esim_id = request.query_params.get("esimId")
    if not iccid and not esim_id:
        return joi('"iccid" or "esimId" is required')
    esim = state.esim_by_iccid(iccid) if iccid else state.esim_by_id(esim_id or "")
    return esim if esim is not None else failed(404, "eSIM not found")


# -- catalog ---------------------------------------------------------------------------


async def countries(request: Request) -> Response:
    geography = request.query_params.get("geography")
    if geography is not None and geography not in GEOGRAPHIES:
        return joi('"geography" must be one of [local, regional, global]')
    found = [
        c
        for c in _state(request).catalog.countries
        if geography is None or c["geography"] == geography
    ]
    return ok({"countries": found})


def _package_filter(request: Request) -> dict[str, Any]:
    """The packages query, validated against the countries list like the real API."""
    q = request.query_params
    state = _state(request)
    spec: dict[str, Any] = {"packageId": q.get("packageId") or None}
    country = q.get("country")
    if country:
        names = {c["name"].lower() for c in state.catalog.countries}
        if country.lower() not in names:
            raise refuse('"country" must be a country name from /api/esim/countries')
        spec["country"] = country.lower()
    code = q.get("countryCode")
    if code:
        codes = {c["code"] for c in state.catalog.countries}
        if code.upper() not in codes:
            raise refuse('"countryCode" must be a code from /api/esim/countries')
        spec["countryCode"] = code.upper()
    geography = q.get("geography")
    if geography:
        if geography not in GEOGRAPHIES:
            raise refuse('"geography" must be one of [local, regional, global]')
        spec["geography"] = geography
    spec.update({key: _number_param(request, key) for key in ("days", "gbs")})
    spec["isUnlimited"] = _bool_param(q.get("isUnlimited"))
    return spec


def _unfiltered(spec: dict[str, Any]) -> bool:
    return not any(value is not None for value in spec.values())


def _matches(group: dict[str, Any], package: dict[str, Any], spec: dict[str, Any]) -> bool:
    if spec["packageId"]:
        return bool(package["packageId"] == spec["packageId"])
    if "country" in spec and group["countryName"].lower() != spec["country"]:
        return False
    if "countryCode" in spec and group["countryCode"] != spec["countryCode"]:
        return False
    if "geography" in spec and group["geography"] != spec["geography"]:
        return False
    return _plan_matches(package, spec)


def _plan_matches(package: dict[str, Any], spec: dict[str, Any]) -> bool:
    """days / isUnlimited / gbs (gbs is ignored when isUnlimited=true)."""
    if spec.get("days") is not None and package["day"] != spec["days"]:
        return False
    unlimited = spec.get("isUnlimited")
    if unlimited is not None and package["isUnlimited"] != unlimited:
        return False
    if spec.get("gbs") is not None and unlimited is not True:
        if package["isUnlimited"]:
            return False
        gb = package["dataAmount"] / (1 if package["dataUnit"] == "GB" else 1024)
        return bool(abs(gb - spec["gbs"]) < 1e-6)
    return True


def _grouped(groups: list[dict[str, Any]], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The older shape: each country group with its matching packages."""
    result = []
    for group in groups:
        chosen = [p for p in group["packages"] if _matches(group, p, spec)]
        if chosen:
            result.append({**group, "packages": chosen})
    return result


def _paging(request: Request) -> tuple[int, int]:
    """(page, pageSize) of the paginated shape."""
    q = request.query_params
    try:
        page = int(q.get("page") or "1")
        size = int(q.get("pageSize") or "50")
    except ValueError:
        raise refuse('"page" and "pageSize" must be numbers') from None
    if page < 1:
        raise refuse('"page" must be greater than or equal to 1')
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise refuse(f'"pageSize" must be between 1 and {MAX_PAGE_SIZE}')
    return page, size


@refusals
async def packages(request: Request) -> Response:
    q = request.query_params
    spec = _package_filter(request)
    groups = _state(request).catalog.groups
    if "page" not in q and "pageSize" not in q:
        return ok({"packages": _grouped(groups, spec)})
    page, size = _paging(request)
    pairs = (
        ((g, p) for g in groups for p in g["packages"])
        if _unfiltered(spec)
        else ((g, p) for g in groups for p in g["packages"] if _matches(g, p, spec))
    )
    # lazily, only as far as the page: a client paging through the whole catalog would
    # otherwise make the simulator match every plan once per page
    on_page = itertools.islice(pairs, (page - 1) * size, page * size)
    return ok(
        {
            "packages": [
                {
                    **p,
                    "countryCode": g["countryCode"],
                    "countryName": g["countryName"],
                    "geography": g["geography"],
                    "region": g["region"],
                    "signals": g["signals"],
                }
                for g, p in on_page
            ]
        }
    )


# -- orders ----------------------------------------------------------------------------

ORDER_KEYS = ("items", "referenceId")


@refusals
async def create_order(request: Request) -> Response:
    return await _create(request, instant=False)


@refusals
async def create_instant_order(request: Request) -> Response:
    return await _create(request, instant=True)


def _affordable(state: RoamifyState, total: Decimal) -> None:
    """Refuses (422, with the `insufficient_balance` webhook) what the balance cannot pay."""
    if total > state.balance:
        state.refuse_for_balance()
        raise Refused(failed(422, "Insufficient balance", "INSUFFICIENT_BALANCE"))


async def _create(request: Request, *, instant: bool) -> Response:
    state = _state(request)
    body = await _json_body(request)
    items = _parse_items(body, state)
    reference = _optional_str(body, "referenceId")
    start = _start_date(body)
    _unknown_key(body, (*ORDER_KEYS, "startDate") if instant else ORDER_KEYS)
    if instant and start is None:
        for package_id, _ in items:
            if _needs_travel_date(state.catalog.packages[package_id][0]):
                raise _travel_date_required()
    _affordable(state, state.order_total(items))
    order = state.new_order(items, reference, "instant" if instant else "order")
    if not instant:
        return ok(order_json(state, order))
    esims = [esim_json(state, state.apply(state.esims[i], start)) for i in order.esim_ids]
    header = {k: v for k, v in order_json(state, order).items() if k != "items"}
    return ok({**header, "esims": esims})


def _needs_travel_date(package: dict[str, Any]) -> bool:
    return bool(package.get("requirements", {}).get("travelDate"))


def _travel_date_required() -> Refused:
    return refuse(
        '"startDate" is required: this package needs a travel date (requirements.travelDate)',
        "TRAVEL_DATE_REQUIRED",
    )


async def get_order(request: Request) -> Response:
    state = _state(request)
    order_id = request.query_params.get("orderId")
    reference = request.query_params.get("referenceId")
    if not order_id and not reference:
        return joi('"orderId" or "referenceId" is required')
    order = state.orders.get(order_id) if order_id else state.newest_order(reference or "")
    if order is None or not order.visible:
        return failed(404, "Order not found")
    return ok(order_json(state, order))


async def list_orders(request: Request) -> Response:
    state = _state(request)
    limit = _limit(request)
    if isinstance(limit, Response):
        return limit
    status = request.query_params.get("status")
    reference = request.query_params.get("referenceId")
    found = [
        o
        for o in reversed(state.orders.values())
        if o.visible
        and (status is None or o.status == status)
        and (reference is None or o.reference_id == reference)
    ]
    return ok({"orders": [order_json(state, o) for o in found[:limit]]})


# -- eSIMs -----------------------------------------------------------------------------


async def get_esim(request: Request) -> Response:
    state = _state(request)
    esim = _esim_from_query(state, request)
    return esim if isinstance(esim, Response) else ok(esim_json(state, esim))


async def list_esims(request: Request) -> Response:
    state = _state(request)
    limit = _limit(request)
    if isinstance(limit, Response):
        return limit
    status = request.query_params.get("status")
    reference = request.query_params.get("referenceId")
    found = [
        state.refresh(e)
        for e in reversed(state.esims.values())
        if reference is None or e.reference_id == reference
    ]
    found = [e for e in found if status is None or e.status == status]
    return ok([esim_json(state, e) for e in found[:limit]])


def _apply_targets(state: RoamifyState, esim_id: str | None, reference: str) -> list[RoamifyEsim]:
    """The eSIM named by id, or every eSIM of the newest order with the reference."""
    if esim_id:
        esim = state.esim_by_id(esim_id)
        if esim is None:
            raise Refused(failed(404, "eSIM not found"))
        return [esim]
    order = state.newest_order(reference)
    if order is None:
        raise Refused(failed(404, "Order not found"))
    return [state.esims[i] for i in order.esim_ids]


@refusals
async def apply(request: Request) -> Response:
    state = _state(request)
    body = await _json_body(request)
    esim_id = _optional_str(body, "esimId")
    reference = _optional_str(body, "referenceId")
    start = _start_date(body)
    if not esim_id and not reference:
        raise refuse('"esimId" is required')
    _unknown_key(body, ("esimId", "referenceId", "startDate"))
    targets = _apply_targets(state, esim_id, str(reference))
    for esim in targets:
        package, _ = state.catalog.packages[esim.package_id]
        if not esim.applied and start is None and _needs_travel_date(package):
            raise _travel_date_required()
    applied = [esim_json(state, state.apply(esim, start)) for esim in targets]
    return ok(applied[0] if esim_id else applied)


# -- top-ups ---------------------------------------------------------------------------


def _topup_offers(state: RoamifyState, esim: RoamifyEsim) -> list[dict[str, Any]]:
    """Compatible top-ups: the destination's fixed-data plans of at most 30 days."""
    package, group = state.catalog.packages[esim.package_id]
    if not package["withTopUp"] or not esim.applied:
        return []
    return [
        p
        for p in group["packages"]
        if not p["isUnlimited"] and p["day"] <= 30 and not _needs_travel_date(p)
    ]


@refusals
async def topup_packages(request: Request) -> Response:
    state = _state(request)
    iccid = request.query_params.get("iccid")
    if not iccid:
        return joi('"iccid" is required')
    esim = state.esim_by_iccid(iccid)
    if esim is None:
        return failed(404, "eSIM not found")
    offers = _topup_offers(state, esim)
    package_id = request.query_params.get("packageId")
    if package_id:
        return ok([_topup_json(p) for p in offers if p["packageId"] == package_id])
    spec: dict[str, Any] = {"isUnlimited": _bool_param(request.query_params.get("isUnlimited"))}
    spec.update({key: _number_param(request, key) for key in ("days", "gbs")})
    return ok([_topup_json(p) for p in offers if _plan_matches(p, spec)])


@refusals
async def create_topup(request: Request) -> Response:
    state = _state(request)
    body = await _json_body(request)
    iccid = _required_str(body, "iccid")
    package_id = _required_str(body, "packageId")
    reference = _optional_str(body, "referenceId")
    _unknown_key(body, ("iccid", "packageId", "referenceId"))
    esim = state.esim_by_iccid(iccid)
    if esim is None:
        return failed(404, "eSIM not found")
    if not state.catalog.packages[esim.package_id][0]["withTopUp"]:
        return failed(422, "This eSIM does not support top-ups", "TOPUP_NOT_SUPPORTED")
    if esim.status in INACTIVE:
        return failed(422, f"The eSIM is {esim.status.lower()}", "ESIM_NOT_ACTIVE")
    offers = {p["packageId"]: p for p in _topup_offers(state, esim)}
    if package_id not in offers:
        return joi(f'"packageId" {package_id} is not a top-up package for this eSIM')
    _affordable(state, Decimal(str(offers[package_id]["price"])))
    order = state.topup(esim, offers[package_id], reference)
    return ok(order_json(state, order))


# -- usage, history, events, links -----------------------------------------------------


def _usage_or_error(state: RoamifyState, request: Request) -> RoamifyEsim | Response:
    iccid = request.query_params.get("iccid")
    if not iccid:
        return joi('"iccid" is required')
    esim = state.esim_by_iccid(iccid)
    if esim is None:
        return failed(404, "eSIM not found")
    if not state.catalog.packages[esim.package_id][0]["withUsageCheck"]:
        return failed(422, "Usage check is not available for this package", "USAGE_NOT_SUPPORTED")
    return esim


def _usage_json(state: RoamifyState, esim: RoamifyEsim) -> dict[str, Any]:
    unlimited = esim.allowed_mb == float("inf")
    used = state.used_mb(esim)
    start, end = state.plan_window(esim)
    package, _ = state.catalog.packages[esim.package_id]
    sms = package["smsAmount"] if package["withSMS"] else 0
    voice = package["callAmount"] if package["withCall"] else 0
    return {
        "id": esim.id,
        "iccid": esim.iccid,
        "status": esim.status,
        "startedAt": start,
        "expiredAt": end,
        "allowedData": -1 if unlimited else round(esim.allowed_mb, 2),
        "remainingData": -1 if unlimited else round(esim.allowed_mb - used, 2),
        "allowedSms": sms,
        "remainingSms": sms,
        "allowedVoice": voice,
        "remainingVoice": voice,
    }


async def usage(request: Request) -> Response:
    state = _state(request)
    esim = _usage_or_error(state, request)
    return esim if isinstance(esim, Response) else ok(_usage_json(state, esim))


async def usage_details(request: Request) -> Response:
    state = _state(request)
    esim = _usage_or_error(state, request)
    if isinstance(esim, Response):
        return esim
    return ok({**_usage_json(state, esim), "dataUsages": state.daily_usage(esim)})


async def history(request: Request) -> Response:
    state = _state(request)
    esim = _esim_from_query(state, request)
    if isinstance(esim, Response):
        return esim
    return ok([{"esimId": esim.id, **h} for h in esim.history])


async def events(request: Request) -> Response:
    """Not wrapped in the success envelope, as Roamify's own sample."""
    state = _state(request)
    q = request.query_params
    esim: RoamifyEsim | None = None
    if q.get("iccid"):
        esim = state.esim_by_iccid(q["iccid"])
    elif q.get("esimId"):
        esim = state.esim_by_id(q["esimId"])
    elif q.get("referenceId"):
        order = state.newest_order(q["referenceId"])
        esim = state.esims[order.esim_ids[0]] if order and order.esim_ids else None
    else:
        return joi('one of "iccid", "esimId" or "referenceId" is required')
    if esim is None:
        return failed(404, "eSIM not found")
    return json_response(
        {
            "iccid": esim.iccid,
            "esimId": esim.id,
            "referenceId": esim.reference_id,
            "events": [
                {
                    "iccid": esim.iccid,
                    "eid": "",
                    "status": status,
                    "timeStamp": at,
                    "dateTime": datetime.fromtimestamp(at, UTC).isoformat(),
                }
                for status, at in esim.status_log
            ],
            "locations": [esim.location] if esim.installed_at is not None else [],
        }
    )


@refusals
async def link(request: Request) -> Response:
    state = _state(request)
    body = await _json_body(request)
    iccid, esim_id = body.get("iccid"), body.get("esimId")
    if not iccid and not esim_id:
        return joi('"iccid" or "esimId" is required')
    esim = state.esim_by_iccid(str(iccid)) if iccid else state.esim_by_id(str(esim_id))
    if esim is None:
        return failed(404, "eSIM not found")
    key = esim.id.replace("-", "")[:12].upper()
    now = state.now()
    url = f"https://dev.esims.link/sandbox/{key}"
    return ok(
        {
            "iccid": esim.iccid,
            "esimId": esim.id,
            "link": url,
            "whatsappLink": f"https://wa.me/?text={url}",
            "key": key,
            "accessCode": f"{int(esim.id.replace('-', '')[-8:], 16) % 10000:04d}",
            "createdAt": now,
            "updatedAt": now,
        }
    )


@refusals
async def sms(request: Request) -> Response:
    state = _state(request)
    body = await _json_body(request)
    iccid, message = body.get("iccid"), body.get("message")
    if not isinstance(iccid, str) or not iccid:
        return joi('"iccid" is required')
    if not isinstance(message, str) or not message:
        return joi('"message" is required')
    if state.esim_by_iccid(iccid) is None:
        return failed(404, "eSIM not found")
    return ok({"iccid": iccid, "message": message, "status": "sent"})


# -- account and misc ------------------------------------------------------------------


async def devices(request: Request) -> Response:
    return ok(DEVICES)


async def balance(request: Request) -> Response:
    return ok({"balance": _money(_state(request).balance), "currency": "USD"})


async def health(request: Request) -> Response:
    return ok({"status": "ok"})


async def currencies(request: Request) -> Response:
    return ok([{"code": code, "name": name} for code, (name, _) in RATES.items()])


async def rates(request: Request) -> Response:
    source = request.query_params.get("source", "USD").upper()
    target = request.query_params.get("target", "").upper()
    if not target:
        return joi('"target" is required')
    if source not in RATES or target not in RATES:
        return joi('"source" and "target" must be currencies from /api/currencies')
    rate = RATES[target][1] / RATES[source][1]
    return ok(
        {
            "source": source,
            "target": target,
            "rate": float(rate),
            "datetime": datetime.fromtimestamp(_state(request).clock(), UTC).isoformat(),
        }
    )


def routes() -> list[Route]:
    return [
        Route("/api/esim/countries", countries, methods=["GET"]),
        Route("/api/esim/packages", packages, methods=["GET"]),
        Route("/api/esim/order", create_order, methods=["POST"]),
        Route("/api/esim/order", get_order, methods=["GET"]),
        Route("/api/esim/order/instant", create_instant_order, methods=["POST"]),
        Route("/api/esim/order/topup", create_topup, methods=["POST"]),
        Route("/api/esim/orders", list_orders, methods=["GET"]),
        Route("/api/esim/apply", apply, methods=["POST"]),
        Route("/api/esim", get_esim, methods=["GET"]),
        Route("/api/esims", list_esims, methods=["GET"]),
        Route("/api/esim/usage", usage, methods=["GET"]),
        Route("/api/esim/usage/details", usage_details, methods=["GET"]),
        Route("/api/esim/topup/packages", topup_packages, methods=["GET"]),
        Route("/api/esim/history", history, methods=["GET"]),
        Route("/api/esim/event", events, methods=["GET"]),
        Route("/api/esim/events", events, methods=["GET"]),
        Route("/api/esim/link", link, methods=["POST"]),
        Route("/api/esim/sms", sms, methods=["POST"]),
        Route("/api/compatible-devices", devices, methods=["GET"]),
        Route("/api/balance", balance, methods=["GET"]),
        Route("/api/health", health, methods=["GET"]),
        Route("/api/currencies", currencies, methods=["GET"]),
        Route("/api/rates", rates, methods=["GET"]),
    ]
