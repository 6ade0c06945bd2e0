"""Roamify in provider-neutral terms (`providers.base.ProviderGateway`).

A purchase is two steps upstream: `POST /api/esim/order` (money is spent; one item per
eSIM) and `POST /api/esim/apply` (the profiles are generated). `submit_order` does the
first and `fulfil_order` the second, so a failed `apply` is retried on its own (it is
idempotent upstream) and the purchase never is.

Decisions where providers.md is silent:

* Status: DESIGN.md's mapping; a status Roamify adds later counts as `PROCESSING`
  (still in progress) with the raw value kept in `provider_status`.
* `daily`: Roamify has no daily flag. A package is daily when its label or plan says so
  (`daily`, `per day`, `/day`, `a day`), e.g. `1 GB/Day - 7 Days`; `data_mb` is then
  the per-day allowance. Notes are not read: unlimited plans' notes mention a per-day
  fair-use threshold, which does not make the allowance daily.
* Usage units: data in MB and voice in minutes, as the usage webhook declares
  (`data_units: "MB"`, `voice_units: "minutes"`) and the sandbox reports; Apidog's
  KB/seconds is the minority reading (providers.md 1.4).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from esim_gateway.domain import (
    Balance,
    CatalogPackage,
    DestinationKind,
    EsimProfile,
    EsimUsage,
    Money,
    OrderLine,
    OrderState,
    PlaceOrder,
    ProviderName,
    ProviderOrder,
    ShareLink,
    TopupRequest,
    install_links,
)
from esim_gateway.errors import NotFound, UnsupportedOperation
from esim_gateway.ops.slices import map_in_slices
from esim_gateway.providers.base import Capabilities
from esim_gateway.providers.roamify.client import RoamifyClient
from esim_gateway.providers.roamify.models import (
    RoamifyEsim,
    RoamifyOrder,
    RoamifyPackage,
    RoamifyTopupPackage,
    RoamifyUsage,
)

__all__ = [
    "ROAMIFY_CAPABILITIES",
    "RoamifyGateway",
    "catalog_package",
    "esim_profile",
    "install_links",
    "is_daily",
    "order_state",
    "provider_order",
]

#: orders listed per reference lookup: one is expected, more are duplicates to report
MAX_LISTED = 50

ROAMIFY_CAPABILITIES = Capabilities(
    topup=True,
    cancel=False,
    refund=False,
    usage=True,
    instant_fulfilment=True,
    order_listing=True,
)

STATES: dict[str, OrderState] = {
    "PENDING": OrderState.PENDING,
    "COMPLETED": OrderState.COMPLETED,
    "CANCELLED": OrderState.CANCELLED,
    "REFUNDED": OrderState.REFUNDED,
    "REQUIRE_ACTION": OrderState.ACTION_REQUIRED,
    "ARCHIVED": OrderState.ARCHIVED,
}
GEOGRAPHY: dict[str, DestinationKind] = {
    "local": DestinationKind.LOCAL,
    "regional": DestinationKind.REGIONAL,
    "global": DestinationKind.GLOBAL,
}
_DAILY = re.compile(r"\bdaily\b|\bper\s+day\b|/\s*day\b|\ba\s+day\b", re.IGNORECASE)
_ISO2 = re.compile(r"^[A-Z]{2}$")
#: `GET /api/esims` returns 50 by default; ask for at least the order's eSIMs
_LIST_LIMIT = 50


def order_state(status: str) -> OrderState:
    """DESIGN.md's mapping; a status not known yet counts as still in progress."""
    return STATES.get(status.strip().upper(), OrderState.PROCESSING)


def is_daily(name: str | None, plan: str | None) -> bool:
    """The `daily` heuristic (module docstring): the label or plan says per day."""
    return any(_DAILY.search(text) for text in (name, plan) if text)


def _whole_mb(mb: Decimal | None) -> int | None:
    return int(mb.to_integral_value(ROUND_HALF_UP)) if mb is not None else None


def catalog_package(p: RoamifyPackage) -> CatalogPackage:
    code = (p.country_code or "").upper()
    default = DestinationKind.LOCAL if _ISO2.match(code) else DestinationKind.REGIONAL
    destination = GEOGRAPHY.get(p.geography or "", default)
    covered = tuple(c for c in p.covered_codes if _ISO2.match(c))
    if destination is DestinationKind.LOCAL and _ISO2.match(code):
        countries: tuple[str, ...] = (code,)
    else:
        countries = covered
    local = destination is DestinationKind.LOCAL
    return CatalogPackage(
        provider=ProviderName.ROAMIFY,
        package_id=p.package_id,
        name=p.name,
        destination=destination,
        country_codes=countries,
        days=p.days,
        data_mb=None if p.unlimited else _whole_mb(p.data_mb),
        unlimited=p.unlimited,
        price=Money(p.price, "USD"),
        region_code=None if local else (code or None),
        region_name=None if local else (p.country_name or p.region),
        daily=is_daily(p.name, p.plan),
        throttle=p.throttle.describe() if p.throttle is not None and p.with_throttle else None,
        voice=p.call.included,
        sms=p.sms.included,
        hotspot=p.with_hotspot,
        topup=p.with_topup,
        activation=p.activation,
        requires_travel_date=p.requires_travel_date,
        usage_check=p.with_usage_check,
        notes=p.notes,
    )


def _topup_package(p: RoamifyTopupPackage) -> CatalogPackage:
    """Top-up offers carry no destination; they apply to the eSIM they were asked for."""
    return CatalogPackage(
        provider=ProviderName.ROAMIFY,
        package_id=p.package_id,
        name=p.name,
        destination=DestinationKind.LOCAL,
        country_codes=(),
        days=p.days,
        data_mb=None if p.unlimited else _whole_mb(p.data_mb),
        unlimited=p.unlimited,
        price=Money(p.price, "USD"),
        daily=is_daily(p.name, p.plan),
        voice=p.call.included,
        sms=p.sms.included,
        hotspot=p.with_hotspot,
        topup=True,
        activation=p.activation,
        usage_check=p.with_usage_check,
        notes=p.notes,
    )


def esim_profile(
    e: RoamifyEsim,
    *,
    order_id: str | None = None,
    reference: str | None = None,
    package_id: str | None = None,
) -> EsimProfile:
    """Credentials only when present; install links from Roamify, else from the LPA."""
    creds = e.credentials
    ios, android = install_links(creds.lpa)
    return EsimProfile(
        provider=ProviderName.ROAMIFY,
        iccid=e.iccid or "",
        status=e.status,
        esim_id=e.id,
        order_id=order_id,
        order_reference=reference,
        package_id=package_id,
        lpa=creds.lpa,
        smdp_address=creds.smdp_address,
        activation_code=creds.activation_code,
        qr_code_url=creds.qr_code_url,
        ios_install_url=creds.ios_install_url or ios,
        android_install_url=creds.android_install_url or android,
        pin=creds.pin,
        puk=creds.puk,
        apn=e.apn.name,
        expires_at=e.expired_at,
        topup_allowed=e.with_topup,
        apn_automatic=e.apn.automatic,
        data_roaming=e.with_data_roaming,
        hotspot=e.with_hotspot,
    )


def _line(
    order: RoamifyOrder,
    key: str,
    package_id: str,
    quantity: int,
    esim_ids: tuple[str, ...],
    *,
    name: str | None = None,
    unit_price: Money | None = None,
    esims: tuple[EsimProfile, ...] = (),
) -> OrderLine:
    return OrderLine(
        line_id=f"{order.id}:{key}",
        package_id=package_id,
        quantity=quantity,
        package_name=name,
        unit_price=unit_price,
        state=order_state(order.status),
        provider_status=order.status,
        esim_ids=esim_ids,
        esims=esims,
    )


def _lines_from_items(order: RoamifyOrder) -> tuple[OrderLine, ...]:
    """One line per packageId, in first-seen order (Roamify sends one item per eSIM)."""
    grouped: dict[str, list[int]] = {}
    for index, item in enumerate(order.items):
        grouped.setdefault(item.package_id, []).append(index)
    lines = []
    for package_id, indexes in grouped.items():
        items = [order.items[i] for i in indexes]
        first = items[0]
        lines.append(
            _line(
                order,
                package_id,
                package_id,
                len(items),
                tuple(i.esim_id for i in items if i.esim_id),
                name=first.name,
                unit_price=Money(first.price, first.currency),
            )
        )
    return tuple(lines)


def _lines_from_esims(
    order: RoamifyOrder, requested: Sequence[tuple[str, int]] = ()
) -> tuple[OrderLine, ...]:
    """An instant order lists eSIMs, which do not name their package. With the request
    at hand they are assigned to its lines in order (Roamify answers in item order);
    without it, or when the counts differ, they form one line of unknown package."""
    profiles = [
        esim_profile(e, order_id=order.id, reference=order.reference_id) for e in order.esims
    ]
    if requested and sum(q for _, q in requested) == len(profiles):
        lines, start = [], 0
        for package_id, quantity in requested:
            chunk = tuple(
                replace(p, package_id=package_id) for p in profiles[start : start + quantity]
            )
            start += quantity
            lines.append(
                _line(
                    order,
                    package_id,
                    package_id,
                    quantity,
                    tuple(p.esim_id or "" for p in chunk),
                    esims=chunk,
                )
            )
        return tuple(lines)
    return (
        _line(
            order,
            "instant",
            "",
            len(profiles),
            tuple(e.id for e in order.esims),
            esims=tuple(profiles),
        ),
    )


def provider_order(order: RoamifyOrder, requested: Sequence[tuple[str, int]] = ()) -> ProviderOrder:
    if order.esims:
        lines = _lines_from_esims(order, requested)
        included = all(e.has_profile for e in order.esims)
    else:
        lines, included = _lines_from_items(order), False
    return ProviderOrder(
        provider=ProviderName.ROAMIFY,
        order_id=order.id,
        reference=order.reference_id,
        state=order_state(order.status),
        provider_status=order.status,
        total=Money(order.total, order.currency),
        created_at=order.created_at,
        updated_at=order.updated_at,
        lines=lines,
        esims_included=included,
    )


def _with_profiles(order: ProviderOrder, applied: Iterable[RoamifyEsim]) -> ProviderOrder:
    """The order with each line's `esims` filled from `apply`, matched by esimId."""
    by_id = {e.id: e for e in applied}
    if len(order.lines) == 1 and not order.lines[0].esim_ids:
        # no esimIds to match by (not seen from Roamify): the order's one line gets them all
        line = order.lines[0]
        profiles = tuple(
            esim_profile(e, order_id=order.order_id, reference=order.reference)
            for e in by_id.values()
            if e.has_profile
        )
        filled = replace(line, esim_ids=tuple(by_id), esims=profiles)
        complete = bool(profiles) and len(profiles) == len(by_id) == line.quantity
        return replace(order, lines=(filled,), esims_included=complete)
    lines = []
    complete = True
    for line in order.lines:
        esims = []
        for esim_id in line.esim_ids:
            esim = by_id.get(esim_id)
            if esim is None or not esim.has_profile:
                complete = False
                continue
            esims.append(
                esim_profile(
                    esim,
                    order_id=order.order_id,
                    reference=order.reference,
                    package_id=line.package_id or None,
                )
            )
        lines.append(replace(line, esims=tuple(esims)))
    return replace(order, lines=tuple(lines), esims_included=complete and bool(lines))


def _difference(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return a - b if a is not None and b is not None else None


def _usage(u: RoamifyUsage) -> EsimUsage:
    used = _difference(u.allowed_data, u.remaining_data)
    if used is None and u.data_usages:
        used = sum((d.usage for d in u.data_usages), Decimal(0))
    sms_used = (
        u.allowed_sms - u.remaining_sms
        if u.allowed_sms is not None and u.remaining_sms is not None
        else None
    )
    return EsimUsage(
        provider=ProviderName.ROAMIFY,
        iccid=u.iccid,
        status=u.status,
        unlimited=u.unlimited_data,
        data_allowed_mb=u.allowed_data,
        data_used_mb=used,
        data_remaining_mb=u.remaining_data,
        sms_allowed=u.allowed_sms,
        sms_used=sms_used,
        sms_remaining=u.remaining_sms,
        voice_allowed_minutes=u.allowed_voice,
        voice_used_minutes=_difference(u.allowed_voice, u.remaining_voice),
        voice_remaining_minutes=u.remaining_voice,
        plan_start=u.started_at,
        plan_end=u.expired_at,
    )


class RoamifyGateway:
    """`ProviderGateway` over a `RoamifyClient`. Raises only `esim_gateway.errors` types."""

    def __init__(self, client: RoamifyClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"RoamifyGateway({self.client!r})"

    @property
    def name(self) -> ProviderName:
        return ProviderName.ROAMIFY

    @property
    def capabilities(self) -> Capabilities:
        return ROAMIFY_CAPABILITIES

    async def catalog(self) -> Sequence[CatalogPackage]:
        return await map_in_slices(catalog_package, await self.client.all_packages())

    async def submit_order(self, request: PlaceOrder) -> ProviderOrder:
        """`POST /api/esim/order` with referenceId = the request's reference. Not retried:
        on `ProviderUnavailable` the caller must `find_order(reference)` first."""
        order = await self.client.create_order(
            [(line.package_id, line.quantity) for line in request.lines], request.reference
        )
        return provider_order(order)

    async def submit_instant_order(self, request: PlaceOrder) -> ProviderOrder:
        """`POST /api/esim/order/instant`: purchase and profiles in one slow call (no
        `apply`). Not for packages that need a travel date."""
        requested = [(line.package_id, line.quantity) for line in request.lines]
        order = await self.client.create_instant_order(requested, request.reference)
        return provider_order(order, requested)

    async def fulfil_order(
        self, order: ProviderOrder, *, start_date: date | None = None
    ) -> ProviderOrder:
        """`apply` by the order's reference (one call for every eSIM), then by esimId for
        any eSIM of the order the answer missed (or for all, without a reference).
        `esims_included` is True when every eSIM came back with its profile."""
        if order.esims_included:
            return order
        wanted = [esim_id for line in order.lines for esim_id in line.esim_ids]
        applied: dict[str, RoamifyEsim] = {}
        if order.reference:
            for esim in await self.client.apply(
                reference_id=order.reference, start_date=start_date
            ):
                applied[esim.id] = esim
        for esim_id in wanted:
            if esim_id not in applied:
                applied[esim_id] = await self.client.apply(esim_id=esim_id, start_date=start_date)
        return _with_profiles(order, applied.values())

    async def get_order(self, order_id: str) -> ProviderOrder:
        return provider_order(await self.client.get_order(order_id=order_id))

    async def find_order(self, reference: str) -> ProviderOrder | None:
        try:
            return provider_order(await self.client.get_order(reference_id=reference))
        except NotFound:
            return None

    async def find_orders(self, reference: str) -> Sequence[ProviderOrder]:
        """`GET /api/esim/orders?referenceId=`: Roamify does not say a referenceId is
        unique, so every order carrying it is listed."""
        found = await self.client.list_orders(reference_id=reference, limit=MAX_LISTED)
        orders = [provider_order(o) for o in found if o.reference_id == reference]
        return sorted(orders, key=lambda o: (o.created_at is None, o.created_at or 0))

    async def order_esims(self, order: ProviderOrder) -> Sequence[EsimProfile]:
        """One `GET /api/esims?referenceId=` for the whole order; eSIMs it does not list
        (or all, without a reference) are read one by one. eSIMs whose profile does not
        exist yet are left out."""
        if order.esims_included:
            return order.esims
        packages = {i: line.package_id or None for line in order.lines for i in line.esim_ids}
        ordered = await self._read_esims(order.reference, packages)
        return [
            esim_profile(
                e,
                order_id=order.order_id,
                reference=order.reference,
                package_id=packages.get(e.id),
            )
            for e in ordered
            if e.iccid
        ]

    async def _read_esims(
        self, reference: str | None, packages: Mapping[str, str | None]
    ) -> list[RoamifyEsim]:
        """The order's eSIMs (`packages`' keys) in its order, then any others its
        reference lists: one listing by reference, then one read per eSIM not listed."""
        found: dict[str, RoamifyEsim] = {}
        if reference:
            listed = await self.client.list_esims(
                reference_id=reference, limit=max(_LIST_LIMIT, len(packages))
            )
            found = {e.id: e for e in listed if not packages or e.id in packages}
        for esim_id in packages:
            if esim_id not in found:
                found[esim_id] = await self.client.get_esim(esim_id=esim_id)
        return [found[i] for i in packages] + [e for i, e in found.items() if i not in packages]

    async def get_esim(self, iccid: str) -> EsimProfile:
        return esim_profile(await self.client.get_esim(iccid=iccid))

    async def topup_packages(self, iccid: str) -> Sequence[CatalogPackage]:
        return [_topup_package(p) for p in await self.client.topup_packages(iccid)]

    async def submit_topup(self, request: TopupRequest) -> ProviderOrder:
        order = await self.client.create_topup_order(
            request.iccid, request.package_id, request.reference
        )
        return provider_order(order)

    async def cancel_order(self, order_id: str, reason: str | None) -> ProviderOrder:
        raise UnsupportedOperation("roamify", "cancel")

    async def usage(self, iccid: str) -> EsimUsage:
        """`GET /api/esim/usage` in MB and minutes (module docstring). Packages without
        `withUsageCheck` are refused by Roamify itself (a `ProviderError`)."""
        return _usage(await self.client.usage(iccid))

    async def balances(self) -> Sequence[Balance]:
        balance = await self.client.balance()
        return [
            Balance(
                ProviderName.ROAMIFY, "main", "PREPAID", Money(balance.balance, balance.currency)
            )
        ]

    async def share_link(self, iccid: str) -> ShareLink:
        """`POST /api/esim/link`: Roamify's own hosted install page for the eSIM."""
        link = await self.client.share_link(iccid=iccid)
        return ShareLink(
            provider=ProviderName.ROAMIFY,
            iccid=link.iccid or iccid,
            url=link.link,
            whatsapp_url=link.whatsapp_link,
            access_code=link.access_code,
            created_at=link.created_at,
        )

    async def usd_rates(self, currencies: Sequence[str]) -> dict[str, Decimal]:
        """Units of each currency per USD, from Roamify's exchange-rate endpoint (one call
        per currency; USD itself is not asked)."""
        rates: dict[str, Decimal] = {}
        for code in dict.fromkeys(c.upper() for c in currencies):
            if code != "USD":
                rates[code] = await self.client.usd_rate(code)
        return rates
