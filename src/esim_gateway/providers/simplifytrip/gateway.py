"""SimplifyTrip in provider-neutral terms (`providers.base.ProviderGateway`).

* Orders: `trackId` is the gateway's reference, each line's `subTrackId` is
  `<reference>-<index>`. eSIM fulfilment is asynchronous upstream (PROCESSING ->
  SUCCESS | ERROR), so `fulfil_order` only re-reads the order; the profiles arrive in
  its items' `eSims`.
* Statuses follow DESIGN.md exactly (`ORDER_STATES`); anything else reads PROCESSING and
  the raw value is kept in `provider_status`. Returns are tracked upstream in
  `returnStatus`, which does not change the order state here.
* Top-ups are SimplifyTrip *recharges*: SIM_RECHARGE skus on physical SIM cards (no
  eSIM top-up is documented).
* Catalog destination (the docs have no such field), decided per product:
  GLOBAL when a region's id or name says global/world or the countries span at least
  `GLOBAL_CONTINENTS` continents; REGIONAL when it has a region or several countries;
  LOCAL otherwise.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal

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
    RefundRecord,
    TopupRequest,
    install_links,
)
from esim_gateway.errors import DuplicateReference, NotFound, ProviderError
from esim_gateway.ops.slices import map_in_slices
from esim_gateway.providers.base import CancelRule, Capabilities
from esim_gateway.providers.simplifytrip.client import PROVIDER, ReturnLine, SimplifyTripClient
from esim_gateway.providers.simplifytrip.models import (
    STCancelledOrder,
    STCreatedOrder,
    STEsim,
    STEsimStatus,
    STOrder,
    STOrderItem,
    STProduct,
    STReturnRequest,
    STVariation,
)

__all__ = [
    "CURRENCY",
    "GLOBAL_CONTINENTS",
    "ORDER_STATES",
    "SIMPLIFYTRIP_CAPABILITIES",
    "SimplifyTripGateway",
    "destination_of",
    "order_state",
]

SIMPLIFYTRIP_CAPABILITIES = Capabilities(
    topup=True,
    cancel=True,
    refund=True,
    usage=True,
    instant_fulfilment=False,
    order_listing=False,
    unique_reference=True,
    # providers.md 2.4: only physical-SIM orders still NEW, every item SIM and NEW;
    # anything else is a 404 "No eligible order or request found"
    cancel_rule=CancelRule(
        product_types=frozenset({"SIM"}),
        statuses=frozenset({"NEW"}),
        topup_product_type="SIM_RECHARGE",
    ),
)
#: DESIGN.md section 4
ORDER_STATES = {
    "NEW": OrderState.PENDING,
    "PROCESSING": OrderState.PROCESSING,
    "CONFIRMED": OrderState.PROCESSING,
    "DELIVERING": OrderState.PROCESSING,
    "SUCCESS": OrderState.COMPLETED,
    "ERROR": OrderState.FAILED,
    "CANCELED": OrderState.CANCELLED,
    "REFUNDED": OrderState.REFUNDED,
    "PARTIALLY_REFUNDED": OrderState.PARTIALLY_REFUNDED,
    "REFUNDING": OrderState.PROCESSING,
}
CURRENCY = "VND"
GLOBAL_CONTINENTS = 4
_GLOBAL_WORDS = ("GLOBAL", "WORLD")
_ESIM = "ESIM"
_SIM = "SIM"


def order_state(status: str | None) -> OrderState:
    """DESIGN.md's mapping; an unknown (or missing) status reads PROCESSING."""
    if not status:
        return OrderState.PROCESSING
    return ORDER_STATES.get(status.strip().upper(), OrderState.PROCESSING)


def destination_of(product: STProduct) -> DestinationKind:
    """See the module docstring: the docs give no destination kind."""
    if any(word in f"{r.id} {r.name}".upper() for r in product.regions for word in _GLOBAL_WORDS):
        return DestinationKind.GLOBAL
    continents = {c.continent.strip().lower() for c in product.countries if c.continent}
    if len(continents) >= GLOBAL_CONTINENTS:
        return DestinationKind.GLOBAL
    if product.regions or len({c.id for c in product.countries}) > 1:
        return DestinationKind.REGIONAL
    return DestinationKind.LOCAL


def _money(amount: Decimal | None) -> Money | None:
    return Money(amount, CURRENCY) if amount is not None else None


def _package(product: STProduct, variation: STVariation, *, topup: bool = False) -> CatalogPackage:
    region = product.regions[0] if product.regions else None
    name = variation.name or (
        f"{product.name} {variation.data or variation.sku} {variation.days} days"
    )
    return CatalogPackage(
        provider=ProviderName.SIMPLIFYTRIP,
        package_id=variation.sku,
        name=name,
        destination=destination_of(product),
        country_codes=tuple(dict.fromkeys(c.id for c in product.countries)),
        days=variation.days,
        data_mb=variation.data_mb,
        unlimited=variation.unlimited,
        price=Money(variation.price, CURRENCY),
        region_code=region.id if region else None,
        region_name=region.name if region else None,
        daily=variation.package == "DAILY",
        throttle=variation.throttle_speed,
        voice=variation.sms_call,
        sms=variation.sms_call,
        hotspot=variation.hotspot,
        topup=topup,
        product_type=product.type,
        notes=(product.notes,) if product.notes else (),
    )


def _profile(
    esim: STEsim,
    *,
    order_id: str,
    reference: str | None,
    item: STOrderItem,
) -> EsimProfile:
    lpa = esim.qr_code_content
    returned = esim.return_status and esim.return_status.upper() != "NONE"
    return EsimProfile(
        provider=ProviderName.SIMPLIFYTRIP,
        iccid=esim.iccid,
        status=(esim.return_status if returned else item.status) or "SUCCESS",
        order_id=order_id,
        order_reference=reference,
        package_id=item.sku,
        lpa=lpa,
        smdp_address=esim.smdp_address,
        activation_code=esim.activation_code,
        qr_code_url=esim.qr_code_img,
        ios_install_url=install_links(lpa)[0],
        android_install_url=install_links(lpa)[1],
        pin=esim.pin,
        puk=esim.puk,
        apn=esim.plan_apn,
    )


def _is_esim(kind: str | None) -> bool:
    return kind is None or kind.upper() == _ESIM


def _from_details(order: STOrder) -> ProviderOrder:
    lines = tuple(
        OrderLine(
            line_id=item.id,
            package_id=item.sku,
            quantity=item.quantity,
            unit_price=_money(item.price),
            state=order_state(item.status) if item.status else None,
            provider_status=item.status,
            sub_reference=item.sub_track_id,
            esim_ids=tuple(e.iccid for e in item.esims) or item.iccids,
            esims=tuple(
                _profile(e, order_id=order.id, reference=order.track_id, item=item)
                for e in item.esims
            ),
        )
        for item in order.items
    )
    state = order_state(order.status)
    wanted = sum(i.quantity for i in order.items if _is_esim(i.type))
    have = sum(len(i.esims) for i in order.items if _is_esim(i.type))
    return ProviderOrder(
        provider=ProviderName.SIMPLIFYTRIP,
        order_id=order.id,
        reference=order.track_id,
        state=state,
        provider_status=order.status,
        total=_money(order.total),
        created_at=order.created_at,
        updated_at=order.updated_at,
        failure_reason=order.error if state is OrderState.FAILED else None,
        lines=lines,
        esims_included=have >= wanted,
        refunds=tuple(_refund(r) for r in order.returns),
        refund_status=order.return_status,
    )


def _from_created(created: STCreatedOrder, *, default_status: str | None = None) -> ProviderOrder:
    """The create/recharge answer. The older 200 shape has no statuses: an eSIM order is
    then PROCESSING and a physical-SIM one NEW (providers.md 2.4)."""
    kinds = {(i.type or "eSIM").upper() for i in created.items}
    inferred = default_status or ("NEW" if kinds == {_SIM} else "PROCESSING")
    status = created.status or inferred
    return ProviderOrder(
        provider=ProviderName.SIMPLIFYTRIP,
        order_id=created.order_id,
        reference=created.track_id,
        state=order_state(status),
        provider_status=status,
        lines=tuple(
            OrderLine(
                line_id=item.sub_order_id,
                package_id=item.sku,
                quantity=item.quantity,
                state=order_state(item.status or status),
                provider_status=item.status or status,
                sub_reference=item.sub_track_id,
            )
            for item in created.items
        ),
        esims_included=False,
    )


def _from_cancelled(cancelled: STCancelledOrder) -> ProviderOrder:
    return ProviderOrder(
        provider=ProviderName.SIMPLIFYTRIP,
        order_id=cancelled.id,
        reference=cancelled.track_id,
        state=order_state(cancelled.status),
        provider_status=cancelled.status,
        created_at=cancelled.created_at,
        updated_at=cancelled.updated_at,
        lines=tuple(
            OrderLine(
                line_id=item.id,
                package_id=item.sku,
                quantity=item.quantity,
                state=order_state(item.status) if item.status else None,
                provider_status=item.status,
                sub_reference=item.sub_track_id,
            )
            for item in cancelled.items
        ),
        esims_included=True,
    )


def _usage(status: STEsimStatus) -> EsimUsage:
    plan, product = status.sim_status, status.product_info
    used = status.used_mb
    unlimited = product.unlimited if product else False
    allowed: Decimal | None = None
    # a DAILY package's allowance is per day: no total to compare the usage with
    if product and product.data_mb is not None and (product.package or "").upper() != "DAILY":
        allowed = Decimal(product.data_mb)
    remaining = (
        max(allowed - used, Decimal(0)) if allowed is not None and used is not None else None
    )
    return EsimUsage(
        provider=ProviderName.SIMPLIFYTRIP,
        iccid=status.iccid,
        status=(plan.plan_status if plan else None) or status.activity_status,
        unlimited=unlimited,
        data_allowed_mb=allowed,
        data_used_mb=used,
        data_remaining_mb=remaining,
        plan_start=plan.plan_start if plan else None,
        plan_end=plan.plan_end if plan else None,
    )


#: "trackId <x> already exists" (providers.md 2.x: duplicate references -> 400)
_DUPLICATE_TRACK_ID = re.compile(r"\btrackId\b.*\balready exists\b", re.IGNORECASE)


@contextlib.contextmanager
def _duplicate_reference() -> Iterator[None]:
    """A purchase refused because its trackId is taken was placed by an earlier send."""
    try:
        yield
    except ProviderError as exc:
        if exc.status == 400 and _DUPLICATE_TRACK_ID.search(exc.message):
            raise DuplicateReference(
                exc.provider,
                exc.status,
                exc.error_code,
                exc.message,
                retryable=False,
                retry_after=exc.retry_after,
            ) from exc
        raise


def _not_found(message: str) -> NotFound:
    return NotFound(PROVIDER, 404, "NOT_FOUND", message, retryable=False)


class SimplifyTripGateway:
    """`ProviderGateway` over a `SimplifyTripClient`."""

    def __init__(self, client: SimplifyTripClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"SimplifyTripGateway({self.client!r})"

    @property
    def name(self) -> ProviderName:
        return ProviderName.SIMPLIFYTRIP

    @property
    def capabilities(self) -> Capabilities:
        return SIMPLIFYTRIP_CAPABILITIES

    async def catalog(self) -> Sequence[CatalogPackage]:
        """Every variation of every eSIM product."""
        variations = [
            (product, variation)
            for product in await self.client.all_products(type="eSIM")
            if product.type.upper() == _ESIM
            for variation in product.variations
        ]
        return await map_in_slices(lambda pair: _package(*pair), variations)

    async def submit_order(self, request: PlaceOrder) -> ProviderOrder:
        with _duplicate_reference():
            created = await self.client.create_order(
                request.reference,
                [
                    (f"{request.reference}-{index}", line.package_id, line.quantity)
                    for index, line in enumerate(request.lines)
                ],
            )
        return _from_created(created)

    async def fulfil_order(
        self, order: ProviderOrder, *, start_date: date | None = None
    ) -> ProviderOrder:
        """Fulfilment happens upstream on its own: read where it stands."""
        return await self.get_order(order.order_id)

    async def get_order(self, order_id: str) -> ProviderOrder:
        return _from_details(await self.client.get_order(order_id))

    async def find_order(self, reference: str) -> ProviderOrder | None:
        try:
            order = await self.get_order(reference)
        except NotFound:
            return None
        # `GET /orders/:id` also matches SimplifyTrip's own ids: only our trackId counts
        return order if order.reference in (None, reference) else None

    async def find_orders(self, reference: str) -> Sequence[ProviderOrder]:
        """A trackId is unique per merchant and mode: at most one order carries it."""
        found = await self.find_order(reference)
        return [found] if found is not None else []

    async def order_esims(self, order: ProviderOrder) -> Sequence[EsimProfile]:
        if order.esims_included:
            return order.esims
        return (await self.get_order(order.order_id)).esims

    async def get_esim(self, iccid: str) -> EsimProfile:
        status = await self.client.esim_status(iccid)
        order_id = status.order_info.order_id if status.order_info else None
        if order_id is None:
            raise _not_found("The eSIM status names no order")
        details = await self.client.get_order(order_id)
        for item in details.items:
            for esim in item.esims:
                if esim.iccid == iccid:
                    profile = _profile(
                        esim, order_id=details.id, reference=details.track_id, item=item
                    )
                    plan = status.sim_status
                    live = status.activity_status or (plan.plan_status if plan else None)
                    product = status.product_info
                    return replace(
                        profile,
                        status=live or profile.status,
                        expires_at=plan.plan_end if plan else None,
                        apn=profile.apn or (product.apn if product else None),
                        hotspot=product.hotspot if product else None,
                    )
        raise _not_found("The eSIM is not among its order's eSIMs")

    async def topup_packages(self, iccid: str) -> Sequence[CatalogPackage]:
        """The SIM_RECHARGE variations (recharges apply to physical SIM cards)."""
        return [
            _package(product, variation, topup=True)
            for product in await self.client.all_products(type="SIM_RECHARGE")
            if product.type.upper() == "SIM_RECHARGE"
            for variation in product.variations
        ]

    async def submit_topup(self, request: TopupRequest) -> ProviderOrder:
        with _duplicate_reference():
            created = await self.client.recharge(
                request.reference, f"{request.reference}-0", request.package_id, [request.iccid]
            )
        # recharges are processed synchronously (providers.md 2.4)
        return _from_created(created, default_status="SUCCESS")

    async def cancel_order(self, order_id: str, reason: str | None) -> ProviderOrder:
        return _from_cancelled(await self.client.cancel_order(order_id, reason))

    async def usage(self, iccid: str) -> EsimUsage:
        """The eSIM's status; a recharged SIM card's when no eSIM has this ICCID."""
        try:
            status = await self.client.esim_status(iccid)
        except NotFound:
            status = await self.client.sim_status(iccid)
        return _usage(status)

    async def balances(self) -> Sequence[Balance]:
        return [
            Balance(
                ProviderName.SIMPLIFYTRIP,
                account.id,
                account.type,
                Money(account.balance, account.currency),
            )
            for account in await self.client.accounts()
        ]

    # -- return requests (the refund feature builds on these) -----------------------------

    async def create_return(
        self,
        return_track_id: str,
        order_id: str,
        items: Sequence[ReturnLine],
        reason: str | None = None,
    ) -> STReturnRequest:
        return await self.client.create_return(return_track_id, order_id, items, reason)

    async def get_return(self, return_id: str) -> STReturnRequest:
        return await self.client.get_return(return_id)

    async def cancel_return(self, return_id: str) -> STReturnRequest:
        return await self.client.cancel_return(return_id)

    # -- refunds in neutral terms (providers.base.RefundGateway) ----------------------------

    #: providers.md 2.4: 15,000 VND per returned eSIM or SIM (none for SIM recharge)
    refund_fee_per_esim = Money(Decimal(15_000), "VND")

    async def request_refund(
        self,
        reference: str,
        order_id: str,
        lines: Sequence[tuple[str, Sequence[str]]],
        reason: str | None,
    ) -> RefundRecord:
        items: list[ReturnLine] = [(line_id, tuple(iccids), None) for line_id, iccids in lines]
        return _refund(await self.client.create_return(reference, order_id, items, reason))

    async def get_refund(self, refund_id_or_reference: str) -> RefundRecord:
        return _refund(await self.client.get_return(refund_id_or_reference))

    async def cancel_refund(self, refund_id: str) -> RefundRecord:
        return _refund(await self.client.cancel_return(refund_id))


def _refund(r: STReturnRequest) -> RefundRecord:
    return RefundRecord(
        provider=ProviderName.SIMPLIFYTRIP,
        refund_id=r.id,
        reference=r.return_track_id,
        order_id=r.order_id,
        status=r.status,
        fee=Money(r.refund_fee, "VND"),
        extra_fee=Money(r.extra_fee, "VND"),
        amount=Money(r.refund_amount, "VND"),
        iccids=tuple(i for item in r.items for i in item.iccids),
        reason=r.reason,
        rejection_reason=r.rejection_reason,
        created_at=r.created_at,
    )
