"""Object types. Fields read from the ledger record or from provider data via loaders."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from esim_gateway import domain, errors
from esim_gateway.context import Context
from esim_gateway.ledger.orders import OrderEvent, OrderRecord
from esim_gateway.pricing.currency import canonical_amount
from esim_gateway.resolvers import esims as esim_resolvers
from esim_gateway.resolvers import orders as order_resolvers
from esim_gateway.schema import install as install_schema
from esim_gateway.schema.enums import Destination as DestinationKind
from esim_gateway.schema.enums import OrderKind, OrderStatus, Provider
from esim_gateway.schema.errors import NotFoundError, ProviderError, UnsupportedOperationError
from esim_gateway.schema.install import (
    InstallationResult,
    InstallLink,
    ProviderShareLinkResult,
)

GInfo = Info[Context, None]


@strawberry.type(
    description="An amount in a currency. `amount` is exact (a decimal string) and has the"
    " currency's ISO 4217 minor units (USD `5.00`, VND `125000`), more digits only where the"
    " amount has them: the same string for the same amount on every path."
)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        # one string per amount: a ledger NUMERIC reads back as 5.0000, a provider says 5
        self.amount = canonical_amount(self.amount, self.currency)

    @classmethod
    def from_base(cls, money: domain.Money | None) -> Money | None:
        return cls(amount=money.amount, currency=money.currency) if money else None


@strawberry.type(
    description="Usage normalised to MB, minutes and messages; null where the provider is silent."
)
class EsimUsage:
    iccid: str
    status: str | None
    unlimited: bool
    data_allowed_mb: Decimal | None
    data_used_mb: Decimal | None
    data_remaining_mb: Decimal | None
    sms_allowed: int | None
    sms_used: int | None
    sms_remaining: int | None
    voice_allowed_minutes: Decimal | None
    voice_used_minutes: Decimal | None
    voice_remaining_minutes: Decimal | None
    plan_start: datetime | None
    plan_end: datetime | None

    @classmethod
    def from_base(cls, usage: domain.EsimUsage) -> EsimUsage:
        return cls(
            iccid=usage.iccid,
            status=usage.status,
            unlimited=usage.unlimited,
            data_allowed_mb=usage.data_allowed_mb,
            data_used_mb=usage.data_used_mb,
            data_remaining_mb=usage.data_remaining_mb,
            sms_allowed=usage.sms_allowed,
            sms_used=usage.sms_used,
            sms_remaining=usage.sms_remaining,
            voice_allowed_minutes=usage.voice_allowed_minutes,
            voice_used_minutes=usage.voice_used_minutes,
            voice_remaining_minutes=usage.voice_remaining_minutes,
            plan_start=usage.plan_start,
            plan_end=usage.plan_end,
        )


EsimUsageResult = Annotated[
    EsimUsage | ProviderError | UnsupportedOperationError | NotFoundError,
    strawberry.union("EsimUsageResult"),
]


def _owner_only(name: str) -> Any:
    """A credential field: visible to the eSIM's owner and to operators only, and to
    nobody when its owner is unknown (`Principal.may_see_credentials`)."""

    def resolve(root: Esim, info: GInfo) -> str | None:
        if not info.context.principal.may_see_credentials(root.owner):
            return None
        value: str | None = getattr(root.profile, name)
        return value

    return strawberry.field(resolver=resolve)


@strawberry.type(description="An eSIM and what a traveller needs to install it.")
class Esim(relay.Node):
    profile: strawberry.Private[domain.EsimProfile]
    owner: strawberry.Private[str | None]

    # The global id is "Esim:<ICCID>": an ICCID names one SIM for its whole life, so the
    # id is the same on every read and clients' caches normalise eSIMs by it.
    @classmethod
    def resolve_id(cls, root: Esim, *, info: GInfo) -> str:
        return root.profile.iccid

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # strawberry's overloads are broader
        cls, *, info: GInfo, node_ids: Iterable[str], required: bool = False
    ) -> list[Esim | None]:
        results: list[Esim | None] = []
        for iccid in node_ids:
            try:
                profile, record = await esim_resolvers.find_esim(info.context, iccid)
            except (errors.ResourceNotFound, errors.InvalidInput):
                results.append(None)  # not yours, or not an ICCID: as if it did not exist
                continue
            results.append(esim_from(profile, record.owner))
        return results

    @strawberry.field
    def iccid(self) -> str:
        return self.profile.iccid

    @strawberry.field
    def provider(self) -> Provider:
        return Provider(self.profile.provider.value)

    @strawberry.field(description="The provider's eSIM status, as it sent it.")
    def status(self) -> str:
        return self.profile.status

    lpa: str | None = _owner_only("lpa")

    @strawberry.field
    def smdp_address(self) -> str | None:
        return self.profile.smdp_address

    activation_code: str | None = _owner_only("activation_code")
    qr_code_url: str | None = _owner_only("qr_code_url")
    ios_install_url: str | None = _owner_only("ios_install_url")
    android_install_url: str | None = _owner_only("android_install_url")
    pin: str | None = _owner_only("pin")
    puk: str | None = _owner_only("puk")

    @strawberry.field
    def apn(self) -> str | None:
        return self.profile.apn

    @strawberry.field
    def expires_at(self) -> datetime | None:
        return self.profile.expires_at

    @strawberry.field(description="Whether the provider allows topping this eSIM up.")
    def topup_allowed(self) -> bool:
        return self.profile.topup_allowed

    @strawberry.field(
        description="The LPA string as an SVG QR code, generated locally (no download)."
    )
    def qr_code_svg(self, info: GInfo) -> str | None:
        if not info.context.principal.may_see_credentials(self.owner):
            return None
        return esim_resolvers.qr_svg(self.profile.lpa)

    @strawberry.field(description="Packages that can top this eSIM up (Roamify).")
    async def topup_packages(self, info: GInfo) -> list[Package]:
        from esim_gateway.resolvers.after_sale import topup_offers

        if not info.context.principal.may_see_credentials(self.owner):
            return []
        try:
            offers = await topup_offers(info.context, self.profile)
        except (errors.ProviderFailure, errors.UnsupportedOperation):
            return []
        return [package_from(p, info.context) for p in offers]

    installation: InstallationResult = strawberry.field(
        resolver=install_schema.resolve_installation,
        description="Step-by-step install instructions (iOS, Android, manual codes, network"
        " settings) in `language`, built from what the provider sent.",
    )
    install_links: list[InstallLink] = strawberry.field(
        resolver=install_schema.resolve_install_links,
        description="Links to this eSIM's install page, newest first, revoked and expired"
        " ones included (their `url` is never shown again).",
    )
    provider_share_link: ProviderShareLinkResult | None = strawberry.field(
        resolver=install_schema.resolve_provider_share_link,
        description="The provider's own hosted install page, where it has one (Roamify);"
        " null for callers who may not see the eSIM's credentials.",
    )

    @strawberry.field(description="Data, SMS and voice usage; batched per request.")
    async def usage(self, info: GInfo) -> EsimUsageResult:
        try:
            usage = await esim_resolvers.usage(info.context, self.profile)
        except errors.ProviderFailure as exc:
            from esim_gateway.schema.errors import provider_error_from

            return provider_error_from(exc)
        except errors.UnsupportedOperation as exc:
            return UnsupportedOperationError(
                message=exc.message, provider=Provider(exc.provider), operation=exc.operation
            )
        return EsimUsage.from_base(usage)


def esim_from(profile: domain.EsimProfile, owner: str | None) -> Esim:
    return Esim(profile=profile, owner=owner)


def _unit_price(root: OrderItem) -> Money | None:
    # made when asked for: a canonical amount costs ~4 us a line (issue 12, 'execution')
    return Money.from_base(root.line.unit_price)


@strawberry.type(description="One ordered package and its eSIMs.")
class OrderItem:
    line: strawberry.Private[domain.OrderLine]
    record: strawberry.Private[OrderRecord]
    id: strawberry.ID
    package_id: str = strawberry.field(description="Roamify packageId or SimplifyTrip sku.")
    package_name: str | None
    quantity: int
    unit_price: Money | None = strawberry.field(resolver=_unit_price)
    status: OrderStatus | None
    provider_status: str | None

    @strawberry.field(description="This item's eSIMs (read only when asked for).")
    async def esims(self, info: GInfo) -> list[Esim]:
        if self.line.esims or not self.line.esim_ids:
            profiles: Sequence[domain.EsimProfile] = self.line.esims
        else:
            wanted = set(self.line.esim_ids)
            profiles = [
                p
                for p in await order_resolvers.order_esims(info.context, self.record)
                if p.esim_id in wanted
            ]
        return [esim_from(p, self.record.owner) for p in profiles]


@strawberry.type(description="A change of an order's status, newest last.")
class OrderStatusChange:
    at: datetime
    status: OrderStatus
    provider_status: str | None
    note: str | None

    @classmethod
    def from_event(cls, event: OrderEvent) -> OrderStatusChange:
        return cls(
            at=event.at,
            status=OrderStatus(event.state.value),
            provider_status=event.provider_status,
            note=event.note,
        )


@strawberry.type(
    description=(
        "A second order the provider holds under this order's reference: bought twice."
        " Found by the gateway's watch of the reference, recorded, counted"
        " (`esim_gateway_duplicate_purchases_total`) and cancelled where the provider allows."
    )
)
class DuplicatePurchase:
    provider_order_id: str
    detected_at: datetime
    action: str = strawberry.field(
        description="What was done: cancelled, or reported (and why it was not cancelled)."
    )


@strawberry.type(description="An order the gateway placed (a purchase or a top-up).")
class Order(relay.Node):
    order_id: relay.NodeID[str]
    record: strawberry.Private[OrderRecord]

    @classmethod
    def from_record(cls, record: OrderRecord) -> Order:
        return cls(order_id=record.id, record=record)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # strawberry's overloads are broader
        cls, *, info: GInfo, node_ids: Iterable[str], required: bool = False
    ) -> list[Order | None]:
        results: list[Order | None] = []
        for node_id in node_ids:
            record = await order_resolvers.visible_order(info.context, node_id)
            results.append(cls.from_record(record) if record is not None else None)
        return results

    @strawberry.field
    def provider(self) -> Provider:
        return Provider(self.record.provider.value)

    @strawberry.field
    def kind(self) -> OrderKind:
        return OrderKind(self.record.kind)

    @strawberry.field
    def provider_order_id(self) -> str | None:
        return self.record.provider_order_id

    @strawberry.field(
        description="What the gateway sent upstream: Roamify referenceId / SimplifyTrip trackId."
    )
    def reference(self) -> str:
        return self.record.reference

    @strawberry.field
    def idempotency_key(self) -> str:
        return self.record.idempotency_key

    @strawberry.field
    def status(self) -> OrderStatus:
        return OrderStatus(self.record.state.value)

    @strawberry.field
    def provider_status(self) -> str | None:
        return self.record.provider_status

    @strawberry.field
    def total(self) -> Money | None:
        if self.record.total_amount is None or self.record.currency is None:
            return None
        return Money(amount=self.record.total_amount, currency=self.record.currency)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.record.updated_at

    @strawberry.field
    def failure_reason(self) -> str | None:
        return self.record.failure_reason

    @strawberry.field(description="When a scheduled order is (or was) placed; null otherwise.")
    def scheduled_at(self) -> datetime | None:
        return self.record.scheduled_at

    @strawberry.field(
        description="The id of the quote this order was bought under, if any (a field name"
        " of its own: `quoteId` is non-null on the quote errors of the same union)."
    )
    def from_quote(self) -> strawberry.ID | None:
        quote = self.record.request.get("quoteId")
        return strawberry.ID(str(quote)) if quote is not None else None

    @strawberry.field(description="Every status change, oldest first.")
    async def status_history(self, info: GInfo) -> list[OrderStatusChange]:
        return [
            OrderStatusChange.from_event(e)
            for e in await info.context.ledger.orders.history(self.record.id)
        ]

    @strawberry.field(
        description="Provider orders beyond the first found under this order's reference."
    )
    async def duplicate_purchases(self, info: GInfo) -> list[DuplicatePurchase]:
        return [
            DuplicatePurchase(
                provider_order_id=d.provider_order_id, detected_at=d.detected_at, action=d.action
            )
            for d in await info.context.ledger.orders.duplicates(self.record.id)
        ]

    @strawberry.field(
        description=(
            "Set when the provider's details of this order could not be read just now;"
            " `items` then come from the gateway's own record and `esims` is empty."
        )
    )
    async def provider_error(self, info: GInfo) -> ProviderError | None:
        failure = await order_resolvers.details_failure(info.context, self.record)
        if failure is None:
            return None
        from esim_gateway.schema.errors import provider_error_from

        return provider_error_from(failure, self.record.id)

    @strawberry.field(
        description="Refunds of this order, newest first (SimplifyTrip return requests)."
    )
    async def refunds(self, info: GInfo) -> list[Refund]:
        order = await order_resolvers.provider_order(info.context, self.record)
        return [Refund.from_record(r) for r in order.refunds] if order else []

    @strawberry.field(
        description="The provider's refund summary: NONE, PARTIAL or FULL (SimplifyTrip)."
    )
    async def refund_status(self, info: GInfo) -> str | None:
        order = await order_resolvers.provider_order(info.context, self.record)
        return order.refund_status if order else None

    @strawberry.field
    async def items(self, info: GInfo) -> list[OrderItem]:
        lines = await order_resolvers.order_lines(info.context, self.record, with_esims=False)
        return [
            OrderItem(
                line=line,
                record=self.record,
                id=strawberry.ID(line.line_id),
                package_id=line.package_id,
                package_name=line.package_name,
                quantity=line.quantity,
                status=OrderStatus(line.state.value) if line.state else None,
                provider_status=line.provider_status,
            )
            for line in lines
        ]

    @strawberry.field
    async def esims(self, info: GInfo) -> list[Esim]:
        profiles = await order_resolvers.order_esims(info.context, self.record)
        return [esim_from(p, self.record.owner) for p in profiles]


@strawberry.type(description="A currency's rate against the US dollar.")
class ExchangeRate:
    currency: str
    units_per_usd: Decimal
    as_of: datetime
    source: str = strawberry.field(description="`static` (configuration) or `roamify`.")


@strawberry.type(description="A plan that can be bought.")
class Package(relay.Node):
    # Plain attributes, filled once in `package_from`: a page of plans resolves
    # hundreds of these fields, and attribute fields skip the resolver machinery.
    global_key: relay.NodeID[str]
    # The same ID relay.Node's resolver would give, as an attribute: that resolver is a
    # tenth of a catalog page's execution time.
    id: relay.GlobalID = strawberry.field(description="The Globally Unique ID of this object")
    package: strawberry.Private[domain.CatalogPackage]
    provider: Provider
    package_id: str = strawberry.field(
        description="Roamify packageId or SimplifyTrip sku: use it in orders."
    )
    name: str
    destination: DestinationKind
    country_codes: list[str] = strawberry.field(
        description="ISO 3166-1 alpha-2 codes of every country covered."
    )
    region_code: str | None
    days: int
    data_mb: int | None = strawberry.field(description="Data allowance in MB; null when unlimited.")
    unlimited: bool
    daily: bool = strawberry.field(description="True when the allowance renews daily.")
    throttle: str | None
    voice: bool
    sms: bool
    hotspot: bool
    topup: bool = strawberry.field(description="Whether eSIMs of this plan can be topped up.")
    activation: str | None
    requires_travel_date: bool = strawberry.field(
        description="The order must carry `startDate` for this plan."
    )
    price: Money = strawberry.field(description="The provider's price, in its currency.")
    price_usd: Money | None = strawberry.field(
        description="The price converted to USD with `usdRate`, rounded half-even"
        " to cents; null when no rate is known for the currency."
    )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # strawberry's overloads are broader
        cls, *, info: GInfo, node_ids: Iterable[str], required: bool = False
    ) -> list[Package | None]:
        from esim_gateway.resolvers import catalog

        found = [await catalog.package_by_key(info.context, key) for key in node_ids]
        return [package_from(p, info.context) if p else None for p in found]

    @strawberry.field(description="The rate used for `priceUsd`, with its source and time.")
    def usd_rate(self, info: GInfo) -> ExchangeRate | None:
        rate = info.context.services.prices.rate(self.package.price.currency)
        if rate is None:
            return None
        return ExchangeRate(
            currency=rate.currency,
            units_per_usd=rate.units_per_usd,
            as_of=rate.as_of,
            source=rate.source,
        )

    @strawberry.field(description="USD per GB of data; null for unlimited plans.")
    def price_per_gb_usd(self, info: GInfo) -> Decimal | None:
        from esim_gateway.resolvers.catalog import price_per_gb_usd

        return price_per_gb_usd(info.context, self.package)

    @strawberry.field(
        description="The travel business's price: price x (1 + percent/100) + fixed, per the"
        " configured markup of the provider, in the provider's currency, rounded half-up to"
        " its minor unit (cents; whole dong). Equal to `price` without a markup."
    )
    def retail_price(self, info: GInfo) -> Money:
        retail = info.context.services.prices.retail(self.package.provider, self.package.price)
        return Money(amount=retail.amount, currency=retail.currency)


#: Packages already built, by id() of their catalog package: pages of the same destinations
#: are served again and again from one snapshot. The entry keeps its catalog package alive
#: and is used only for that very object at the same USD price, so it is never stale.
_BUILT_PACKAGES: dict[int, tuple[domain.CatalogPackage, Decimal | None, Package]] = {}
_BUILT_PACKAGES_MAX = 4096


def package_from(package: domain.CatalogPackage, context: Context) -> Package:
    usd = context.services.prices.usd(package.price)
    hit = _BUILT_PACKAGES.get(id(package))
    if hit is not None and hit[0] is package and hit[1] == usd:
        return hit[2]
    built = _build_package(package, usd)
    if len(_BUILT_PACKAGES) >= _BUILT_PACKAGES_MAX:
        _BUILT_PACKAGES.clear()
    _BUILT_PACKAGES[id(package)] = (package, usd, built)
    return built


def _build_package(package: domain.CatalogPackage, usd: Decimal | None) -> Package:
    from esim_gateway.resolvers import catalog

    key = catalog.package_key(package)
    return Package(
        global_key=key,
        id=relay.GlobalID("Package", key),
        package=package,
        provider=Provider(package.provider.value),
        package_id=package.package_id,
        name=package.name,
        destination=DestinationKind(package.destination.value),
        country_codes=list(package.country_codes),
        region_code=package.region_code,
        days=package.days,
        data_mb=None if package.unlimited else package.data_mb,
        unlimited=package.unlimited,
        daily=package.daily,
        throttle=package.throttle,
        voice=package.voice,
        sms=package.sms,
        hotspot=package.hotspot,
        topup=package.topup,
        activation=package.activation,
        requires_travel_date=package.requires_travel_date,
        price=Money(amount=package.price.amount, currency=package.price.currency),
        price_usd=Money(amount=usd, currency="USD") if usd is not None else None,
    )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Order]:
        return [edge.node for edge in self.edges]


@strawberry.type
class PackageEdge:
    cursor: str
    node: Package


@strawberry.type
class PackageConnection:
    edges: list[PackageEdge]
    page_info: PageInfo
    total_count: int
    provider_errors: list[ProviderError] = strawberry.field(
        description="Providers whose catalog could not be read; the others' plans are listed."
    )

    @strawberry.field
    def nodes(self) -> list[Package]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="A plan that meets a traveller's request, and why.")
class Offer:
    package: Package
    reasons: list[str]


@strawberry.type(description="A country or region plans are sold for.")
class Destination:
    code: str = strawberry.field(description="ISO 3166-1 alpha-2, or the provider's region code.")
    name: str
    kind: DestinationKind
    country_codes: list[str]
    plans: int = strawberry.field(description="How many plans cover it.")


@strawberry.type(description="A refund (a SimplifyTrip return request).")
class Refund:
    id: strawberry.ID
    reference: str | None = strawberry.field(description="What the gateway sent upstream.")
    status: str = strawberry.field(
        description="The provider's status: REQUESTED, REFUNDING, COMPLETED, REJECTED or CANCELED."
    )
    fee: Money
    extra_fee: Money
    amount: Money = strawberry.field(description="What will be (or was) paid back.")
    iccids: list[str]
    reason: str | None
    rejection_reason: str | None
    created_at: datetime | None

    @classmethod
    def from_record(cls, r: domain.RefundRecord) -> Refund:
        def money(m: domain.Money) -> Money:
            return Money(amount=m.amount, currency=m.currency)

        return cls(
            id=strawberry.ID(r.refund_id),
            reference=r.reference,
            status=r.status,
            fee=money(r.fee),
            extra_fee=money(r.extra_fee),
            amount=money(r.amount),
            iccids=list(r.iccids),
            reason=r.reason,
            rejection_reason=r.rejection_reason,
            created_at=r.created_at,
        )


@strawberry.type(description="What a refund would cost and pay back, before asking for it.")
class RefundQuote:
    order_id: strawberry.ID
    iccids: list[str]
    fee: Money
    amount: Money
    rules: str


@strawberry.type(description="A provider account's balance (operators only).")
class ProviderBalance:
    provider: Provider
    account_id: str
    kind: str
    balance: Money
    low: bool = strawberry.field(
        description="True after the provider's low- or insufficient-balance webhook,"
        " until a top-up event."
    )
