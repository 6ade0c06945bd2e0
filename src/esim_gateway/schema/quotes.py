"""The answer of `quoteOrder`: prices per line and in total, and whether it can be bought."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from esim_gateway import domain
from esim_gateway.context import Context
from esim_gateway.resolvers import quotes
from esim_gateway.schema.enums import Provider
from esim_gateway.schema.types import Money, Package, package_from

__all__ = ["OrderQuote", "order_quote_from"]


@strawberry.type(description="What can be done later with the eSIMs bought on a line.")
class PurchaseCapabilities:
    topup: bool
    cancel: bool = strawberry.field(description="Whether the order can be cancelled once placed.")
    usage: bool


@strawberry.type(
    description=(
        "One line of a quote. Prices are null when the package is not listed; `retail*`"
        " are null when no markup is configured for the provider."
    )
)
class QuoteLine:
    package_id: str
    quantity: int
    listed: bool = strawberry.field(description="Whether the provider lists the package now.")
    package: Package | None
    unit_price: Money | None = strawberry.field(description="In the provider's currency.")
    unit_price_usd: Money | None
    total: Money | None
    total_usd: Money | None
    retail_unit_price: Money | None
    retail_total: Money | None
    capabilities: PurchaseCapabilities | None


@strawberry.type(
    description=(
        "A priced order, not bought. Pass `quoteId` to `createOrder` (before `expiresAt`) to"
        " buy at exactly this price: a moved price is refused with `PriceChangedError`."
    )
)
class OrderQuote:
    quote_id: strawberry.ID | None = strawberry.field(
        description="Null when a line has no price (its package is not listed)."
    )
    provider: Provider
    expires_at: datetime | None
    lines: list[QuoteLine]
    total: Money | None
    total_usd: Money | None
    retail_total: Money | None
    can_fulfil: bool = strawberry.field(
        description="Whether the provider can fulfil the order now; `problems` says why not."
    )
    problems: list[str]
    balance_sufficient: bool | None = strawberry.field(
        description=(
            "Whether the reseller's balance with the provider covers the total; null when"
            " the provider reports no balance in that currency, or it could not be read."
        )
    )


def _money(value: domain.Money | None) -> Money | None:
    return Money(amount=value.amount, currency=value.currency) if value is not None else None


def _priced(
    context: Context, provider: domain.ProviderName, price: domain.Money | None
) -> tuple[Money | None, Money | None, Money | None]:
    """The price, its USD value, and its retail price (when a markup is set)."""
    if price is None:
        return None, None, None
    prices = context.services.prices
    usd = prices.usd(price)
    retail = prices.retail(provider, price) if prices.has_markup(provider) else None
    return (
        _money(price),
        Money(amount=usd, currency="USD") if usd is not None else None,
        _money(retail),
    )


def _line(context: Context, provider: domain.ProviderName, line: quotes.QuotedLine) -> QuoteLine:
    package = line.package
    unit, unit_usd, retail_unit = _priced(context, provider, line.unit_price)
    total, total_usd, _ = _priced(context, provider, line.total)
    capabilities = line.capabilities
    return QuoteLine(
        package_id=line.package_id,
        quantity=line.quantity,
        listed=package is not None,
        package=package_from(package, context) if package is not None else None,
        unit_price=unit,
        unit_price_usd=unit_usd,
        total=total,
        total_usd=total_usd,
        retail_unit_price=retail_unit,
        # the retail price of one eSIM times the quantity: what each eSIM is sold at
        retail_total=Money(amount=retail_unit.amount * line.quantity, currency=retail_unit.currency)
        if retail_unit is not None
        else None,
        capabilities=PurchaseCapabilities(
            topup=capabilities.topup, cancel=capabilities.cancel, usage=capabilities.usage
        )
        if capabilities is not None
        else None,
    )


def order_quote_from(quote: quotes.OrderQuote, context: Context) -> OrderQuote:
    lines = [_line(context, quote.provider, line) for line in quote.lines]
    total, total_usd, _ = _priced(context, quote.provider, quote.total)
    retail_totals = [line.retail_total for line in lines]
    retail_total = None
    if retail_totals and all(r is not None for r in retail_totals) and total is not None:
        retail_total = Money(
            amount=sum((r.amount for r in retail_totals if r is not None), Decimal(0)),
            currency=total.currency,
        )
    record = quote.quote
    return OrderQuote(
        quote_id=strawberry.ID(record.id) if record is not None else None,
        provider=Provider(quote.provider.value),
        expires_at=record.expires_at if record is not None else None,
        lines=lines,
        total=total,
        total_usd=total_usd,
        retail_total=retail_total,
        can_fulfil=quote.can_fulfil,
        problems=list(quote.problems),
        balance_sufficient=quote.balance_sufficient,
    )
