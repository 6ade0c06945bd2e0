"""Root Query, Mutation and Subscription types."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date, datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from esim_gateway import errors
from esim_gateway.context import Context
from esim_gateway.domain import DestinationKind, OrderState, ProviderName
from esim_gateway.resolvers import after_sale, mutations
from esim_gateway.resolvers import catalog as catalog_resolvers
from esim_gateway.resolvers import esims as esim_resolvers
from esim_gateway.resolvers import orders as order_resolvers
from esim_gateway.resolvers import quotes as quote_resolvers
from esim_gateway.schema.enums import Destination, OrderStatus, PackageOrderBy, Provider
from esim_gateway.schema.errors import (
    CancellationNotAllowedError,
    ForbiddenError,
    IdempotencyConflictError,
    NotFoundError,
    PriceChangedError,
    ProviderError,
    QuoteExpiredError,
    QuoteUsedError,
    UnsupportedOperationError,
    ValidationError,
    provider_error_from,
)
from esim_gateway.schema.ids import order_global_id, parse_order_id
from esim_gateway.schema.install import InstallLinkMutations
from esim_gateway.schema.quotes import OrderQuote, order_quote_from
from esim_gateway.schema.types import Destination as DestinationType
from esim_gateway.schema.types import (
    Esim,
    Money,
    Offer,
    Order,
    OrderConnection,
    OrderEdge,
    Package,
    PackageConnection,
    PackageEdge,
    PageInfo,
    ProviderBalance,
    Refund,
    RefundQuote,
    esim_from,
    package_from,
)
from esim_gateway.schema.webhooks import WebhookMutations, WebhookQueries

GInfo = Info[Context, None]

OrderResult = Annotated[
    Order | NotFoundError | ValidationError | ProviderError, strawberry.union("OrderResult")
]
EsimResult = Annotated[
    Esim | NotFoundError | ValidationError | ProviderError, strawberry.union("EsimResult")
]
CreateOrderResult = Annotated[
    Order
    | ValidationError
    | NotFoundError
    | ProviderError
    | IdempotencyConflictError
    | UnsupportedOperationError
    | ForbiddenError
    | QuoteExpiredError
    | PriceChangedError
    | QuoteUsedError,
    strawberry.union("CreateOrderResult"),
]
QuoteOrderResult = Annotated[
    OrderQuote
    | ValidationError
    | NotFoundError
    | ProviderError
    | UnsupportedOperationError
    | ForbiddenError,
    strawberry.union("QuoteOrderResult"),
]
TopupResult = Annotated[
    Order
    | ValidationError
    | NotFoundError
    | ProviderError
    | IdempotencyConflictError
    | UnsupportedOperationError
    | ForbiddenError,
    strawberry.union("TopupResult"),
]
CancelOrderResult = Annotated[
    Order
    | ValidationError
    | NotFoundError
    | ProviderError
    | UnsupportedOperationError
    | CancellationNotAllowedError
    | ForbiddenError,
    strawberry.union("CancelOrderResult"),
]


@strawberry.input
class OrderFilter:
    provider: Provider | None = None
    status: OrderStatus | None = None
    reference: str | None = None


@strawberry.input
class PackageFilter:
    provider: Provider | None = None
    country: str | None = strawberry.field(default=None, description="ISO 3166-1 alpha-2.")
    min_days: int | None = None
    max_days: int | None = None
    min_data_mb: int | None = None
    unlimited: bool | None = None
    topup: bool | None = None
    destination: Destination | None = None


@strawberry.input
class OrderLineInput:
    package_id: str = strawberry.field(description="Roamify packageId or SimplifyTrip sku.")
    quantity: int


@strawberry.input
class CreateOrderInput:
    provider: Provider
    items: list[OrderLineInput]
    idempotency_key: str | None = strawberry.field(
        default=None,
        description=(
            "Repeat it to retry safely: the same key and payload return the same order and"
            " never buy twice. Generated when absent (and returned on the order)."
        ),
    )
    start_date: date | None = strawberry.field(
        default=None, description="Travel start date; required by some Roamify plans."
    )
    quote_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "A `quoteOrder` answer for this same order: buy only at the quoted price"
            " (`QuoteExpiredError` / `PriceChangedError` otherwise, and nothing is bought)."
            " A quote buys once: another order with it is a `QuoteUsedError`."
        ),
    )
    scheduled_at: datetime | None = strawberry.field(
        default=None,
        description=(
            "Place the order at this time (with a UTC offset; in the future, within the"
            " configured horizon, 90 days by default) instead of now. It is recorded as"
            " SCHEDULED, calls no provider until then, and `cancelOrder` withdraws it for"
            " free until it is placed."
        ),
    )


@strawberry.input
class QuoteOrderInput:
    provider: Provider
    items: list[OrderLineInput]
    start_date: date | None = strawberry.field(
        default=None, description="Travel start date; required by some Roamify plans."
    )


@strawberry.input
class TopupInput:
    iccid: str
    package_id: str
    idempotency_key: str | None = None


@strawberry.type(description="A provider's catalog snapshot.")
class CatalogStatus:
    provider: Provider
    plans: int
    fetched_at: datetime | None
    age_seconds: float | None
    last_error: str | None = strawberry.field(
        description="Why the last refresh failed; the previous snapshot is still served."
    )


@strawberry.type
class ProviderBalanceList:
    balances: list[ProviderBalance]


@strawberry.input
class RequestRefundInput:
    order_id: strawberry.ID
    iccids: list[str]
    reason: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class CancelRefundInput:
    refund_id: strawberry.ID


RefundResult = Annotated[
    Refund | ValidationError | NotFoundError | ProviderError | UnsupportedOperationError,
    strawberry.union("RefundResult"),
]
RefundQuoteResult = Annotated[
    RefundQuote | ValidationError | NotFoundError | ProviderError | UnsupportedOperationError,
    strawberry.union("RefundQuoteResult"),
]
ProviderBalancesResult = Annotated[
    ProviderBalanceList | ForbiddenError | ProviderError,
    strawberry.union("ProviderBalancesResult"),
]


@strawberry.input
class CancelOrderInput:
    order_id: strawberry.ID
    reason: str | None = None


def _provider(value: Provider | None) -> ProviderName | None:
    return ProviderName(value.value) if value is not None else None


def _order_or_failure(outcome: mutations.MutationOutcome) -> Order | ProviderError:
    if outcome.failure is not None and (
        outcome.record.state is OrderState.FAILED or outcome.record.provider_order_id is None
    ):
        return provider_error_from(outcome.failure, outcome.record.id)
    return Order.from_record(outcome.record)


@strawberry.type
class Query(WebhookQueries):
    @strawberry.field(description="Any object by its global id (Order, Package, Esim).")
    async def node(self, info: GInfo, id: strawberry.ID) -> relay.Node | None:
        try:
            gid = relay.GlobalID.from_id(id)
        except Exception:  # malformed base64 / format: like an id that does not exist
            return None
        kinds: dict[str, type[Order] | type[Package] | type[Esim]] = {
            "Order": Order,
            "Package": Package,
            "Esim": Esim,
        }
        kind = kinds.get(gid.type_name)
        if kind is None:
            return None
        found = await kind.resolve_nodes(info=info, node_ids=[gid.node_id])
        return next(iter(found), None)

    @strawberry.field(description="An order of the caller (operators: any order).")
    async def order(self, info: GInfo, id: strawberry.ID) -> OrderResult:
        record = await order_resolvers.require_visible_order(info.context, parse_order_id(id))
        return Order.from_record(record)

    @strawberry.field(description="An order by the reference the gateway sent upstream.")
    async def order_by_reference(
        self, info: GInfo, provider: Provider, reference: str
    ) -> OrderResult:
        record = await order_resolvers.by_reference(
            info.context, ProviderName(provider.value), reference
        )
        return Order.from_record(record)

    @strawberry.field(description="The caller's orders, newest first (operators: everyone's).")
    async def orders(
        self,
        info: GInfo,
        filter: OrderFilter | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> OrderConnection:
        flt = filter or OrderFilter()
        page = await order_resolvers.list_orders(
            info.context,
            provider=_provider(flt.provider),
            state=OrderState(flt.status.value) if flt.status else None,
            reference=flt.reference,
            first=first,
            after=after,
        )
        from esim_gateway.ledger.orders import encode_cursor

        edges = [
            OrderEdge(cursor=encode_cursor(r), node=Order.from_record(r)) for r in page.records
        ]
        return OrderConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None
            ),
        )

    @strawberry.field(description="One of the caller's eSIMs by ICCID.")
    async def esim(self, info: GInfo, iccid: str) -> EsimResult:
        profile, record = await esim_resolvers.find_esim(info.context, iccid)
        return esim_from(profile, record.owner)

    @strawberry.field(
        description="Plans of every provider; cheapest first (in USD) unless `orderBy` says."
    )
    async def packages(
        self,
        info: GInfo,
        filter: PackageFilter | None = None,
        first: int | None = 20,
        after: str | None = None,
        order_by: PackageOrderBy = PackageOrderBy.PRICE_USD,
    ) -> PackageConnection:
        flt = filter or PackageFilter()
        page = await catalog_resolvers.search_packages(
            info.context,
            catalog_resolvers.PackageQuery(
                provider=_provider(flt.provider),
                country=flt.country,
                min_days=flt.min_days,
                max_days=flt.max_days,
                min_data_mb=flt.min_data_mb,
                unlimited=flt.unlimited,
                topup=flt.topup,
                destination=DestinationKind(flt.destination.value) if flt.destination else None,
            ),
            first,
            after,
            catalog_resolvers.PackageOrder(order_by.value),
        )
        edges = [
            PackageEdge(cursor=cursor, node=package_from(p, info.context))
            for p, cursor in page.packages
        ]
        return PackageConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None
            ),
            total_count=page.total,
            provider_errors=[provider_error_from(f) for f in page.failures],
        )

    @strawberry.field(
        description=(
            "The cheapest plans across both providers that meet or exceed the request"
            " (country covered, at least `days`, at least `dataMb` or unlimited), each with"
            " the reasons it qualifies."
        )
    )
    async def best_offers(
        self, info: GInfo, country: str, days: int, data_mb: int, limit: int = 5
    ) -> list[Offer]:
        offers = await catalog_resolvers.best_offers(info.context, country, days, data_mb, limit)
        return [
            Offer(package=package_from(o.package, info.context), reasons=list(o.reasons))
            for o in offers
        ]

    @strawberry.field(
        description="The fee and amount a refund of these eSIMs would have, before asking."
    )
    async def refund_quote(
        self, info: GInfo, order_id: strawberry.ID, iccids: list[str]
    ) -> RefundQuoteResult:
        quote = await after_sale.quote_refund(
            info.context, parse_order_id(order_id, "orderId"), iccids
        )
        return RefundQuote(
            order_id=strawberry.ID(order_global_id(quote.order.id)),
            iccids=list(quote.iccids),
            fee=Money(amount=quote.fee.amount, currency=quote.fee.currency),
            amount=Money(amount=quote.amount.amount, currency=quote.amount.currency),
            rules=quote.rules,
        )

    @strawberry.field(description="Provider balances, with low-balance flags (operators).")
    async def provider_balances(self, info: GInfo) -> ProviderBalancesResult:
        found = await after_sale.balances(info.context)
        return ProviderBalanceList(
            balances=[
                ProviderBalance(
                    provider=Provider(b.provider.value),
                    account_id=b.account_id,
                    kind=b.kind,
                    balance=Money(amount=b.balance.amount, currency=b.balance.currency),
                    low=low,
                )
                for b, low in found
            ]
        )

    @strawberry.field(
        description="How fresh each provider's catalog snapshot is, and its last failure."
    )
    def catalog_status(self, info: GInfo) -> list[CatalogStatus]:
        from datetime import UTC, datetime

        return [
            CatalogStatus(
                provider=Provider(s.provider.value),
                plans=s.plans,
                fetched_at=datetime.fromtimestamp(s.fetched_at, UTC) if s.fetched_at else None,
                age_seconds=s.age_seconds,
                last_error=s.last_error,
            )
            for s in info.context.services.catalog.status()
        ]

    @strawberry.field(description="Countries that plans cover, by name.")
    async def countries(self, info: GInfo) -> list[DestinationType]:
        return [_destination(d) for d in await catalog_resolvers.countries(info.context)]

    @strawberry.field(description="Regions of regional and global plans, with their countries.")
    async def regions(self, info: GInfo) -> list[DestinationType]:
        return [_destination(d) for d in await catalog_resolvers.regions(info.context)]


def _destination(d: catalog_resolvers.Destination) -> DestinationType:
    return DestinationType(
        code=d.code,
        name=d.name,
        kind=Destination(d.kind.value),
        country_codes=list(d.country_codes),
        plans=d.plans,
    )


@strawberry.type
class Mutation(InstallLinkMutations, WebhookMutations):
    @strawberry.mutation(
        description=(
            "Buy eSIMs. Returns within the configured deadline: an order whose eSIMs are not"
            " ready yet comes back PENDING or PROCESSING and completes in the background."
            " With `wait: false` it returns at once (PENDING), to be followed with"
            " `orderUpdated`."
        )
    )
    async def create_order(
        self,
        info: GInfo,
        input: CreateOrderInput,
        wait: Annotated[
            bool,
            strawberry.argument(
                description="Wait (up to the deadline) for the purchase to settle."
            ),
        ] = True,
    ) -> CreateOrderResult:
        outcome = await mutations.create_order(
            info.context,
            ProviderName(input.provider.value),
            [mutations.Line(line.package_id, line.quantity) for line in input.items],
            input.idempotency_key,
            input.start_date,
            wait=wait,
            quote_id=input.quote_id,
            scheduled_at=input.scheduled_at,
        )
        return _order_or_failure(outcome)

    @strawberry.mutation(
        description=(
            "Price an order without buying anything: per line and in total, in the"
            " provider's currency and USD (and retail, with a markup), whether the provider"
            " can fulfil it now, and what the eSIMs will support. Its `quoteId` holds the"
            " price for `createOrder` for the configured time (15 minutes by default)."
        )
    )
    async def quote_order(self, info: GInfo, input: QuoteOrderInput) -> QuoteOrderResult:
        provider = ProviderName(input.provider.value)
        lines = [mutations.Line(line.package_id, line.quantity) for line in input.items]
        mutations.check_order_lines(info.context, provider, lines, input.start_date)
        quote = await quote_resolvers.quote_order(
            info.context,
            provider,
            [(line.package_id, line.quantity) for line in lines],
            input.start_date,
        )
        return order_quote_from(quote, info.context)

    @strawberry.mutation(description="Top up an eSIM (Roamify) or recharge a SIM (SimplifyTrip).")
    async def topup(
        self,
        info: GInfo,
        input: TopupInput,
        wait: Annotated[
            bool,
            strawberry.argument(description="Wait (up to the deadline) for the top-up to settle."),
        ] = True,
    ) -> TopupResult:
        outcome = await mutations.topup(
            info.context, input.iccid, input.package_id, input.idempotency_key, wait=wait
        )
        return _order_or_failure(outcome)

    @strawberry.mutation(
        description="Ask for a refund of some eSIMs of an order (see `refundQuote` first)."
        " Repeat the same idempotencyKey to retry safely."
    )
    async def request_refund(self, info: GInfo, input: RequestRefundInput) -> RefundResult:
        record = await after_sale.request_refund(
            info.context,
            parse_order_id(input.order_id, "orderId"),
            input.iccids,
            input.reason,
            input.idempotency_key,
        )
        return Refund.from_record(record)

    @strawberry.mutation(description="Withdraw a refund request still waiting for review.")
    async def cancel_refund(self, info: GInfo, input: CancelRefundInput) -> RefundResult:
        return Refund.from_record(await after_sale.cancel_refund(info.context, input.refund_id))

    @strawberry.mutation(description="Cancel an order where the provider's rules allow it.")
    async def cancel_order(self, info: GInfo, input: CancelOrderInput) -> CancelOrderResult:
        order_id = parse_order_id(input.order_id, "orderId")
        record = await mutations.cancel_order(info.context, order_id, input.reason)
        return Order.from_record(record)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The order now, then again each time its status or eSIMs change."
    )
    async def order_updated(self, info: GInfo, id: strawberry.ID) -> AsyncGenerator[Order, None]:
        context = info.context
        order_id = parse_order_id(id)
        if await order_resolvers.visible_order(context, order_id) is None:
            raise errors.ResourceNotFound("No order with this id.")
        updates = context.services.broker.subscribe(f"order:{order_id}")
        try:
            record = await context.ledger.orders.get(order_id)
            while record is not None:
                context.fresh_loaders()
                yield Order.from_record(record)
                await updates.__anext__()
                record = await context.ledger.orders.get(order_id)
        finally:
            updates.close()

    @strawberry.subscription(description="The eSIM now, then again each time it changes.")
    async def esim_updated(self, info: GInfo, iccid: str) -> AsyncGenerator[Esim, None]:
        context = info.context
        profile, record = await esim_resolvers.find_esim(context, iccid)
        updates = context.services.broker.subscribe(f"esim:{profile.iccid}")
        try:
            while True:
                yield esim_from(profile, record.owner)
                await updates.__anext__()
                context.fresh_loaders()
                profile, record = await esim_resolvers.find_esim(context, iccid)
        finally:
            updates.close()
