"""Quotes: what an order would cost and whether it can be bought now, without buying.

`quote_order` takes the same input as `createOrder` and spends nothing: it prices each
line from the catalog snapshot, reads the provider's balance where it reports one, and
stores the quote in the ledger (so any replica honours it) for `Settings.quote_ttl`
seconds. `createOrder(quoteId)` calls `check_quote`, which re-prices the order and
refuses (`QuoteExpired`, `PriceChanged`) rather than let the provider charge another
amount than the one quoted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from esim_gateway.context import Context
from esim_gateway.domain import CatalogPackage, Money, ProviderName
from esim_gateway.errors import (
    InvalidInput,
    PriceChanged,
    ProviderFailure,
    QuoteExpired,
    ResourceNotFound,
)
from esim_gateway.ledger.quotes import QuoteRecord
from esim_gateway.purchasing.repricing import moved_price, order_total

__all__ = [
    "LineCapabilities",
    "OrderQuote",
    "QuotedLine",
    "check_quote",
    "parse_quote_id",
    "quote_order",
]


@dataclass(frozen=True, slots=True)
class LineCapabilities:
    """What can be done later with the eSIMs of a line."""

    topup: bool
    cancel: bool
    usage: bool


@dataclass(frozen=True, slots=True)
class QuotedLine:
    package_id: str
    quantity: int
    #: None when the provider does not list the package (any more)
    package: CatalogPackage | None
    capabilities: LineCapabilities | None

    @property
    def unit_price(self) -> Money | None:
        return self.package.price if self.package is not None else None

    @property
    def total(self) -> Money | None:
        price = self.unit_price
        return Money(price.amount * self.quantity, price.currency) if price else None


@dataclass(frozen=True, slots=True)
class OrderQuote:
    provider: ProviderName
    lines: tuple[QuotedLine, ...]
    #: None when a line has no price (not listed): there is nothing firm to hold
    quote: QuoteRecord | None
    #: True/False where the provider reports a balance in the order's currency
    balance_sufficient: bool | None
    #: why the provider cannot fulfil the order now; empty when it can
    problems: tuple[str, ...]

    @property
    def total(self) -> Money | None:
        return self.quote.total if self.quote is not None else None

    @property
    def can_fulfil(self) -> bool:
        return not self.problems


def _capabilities(context: Context, package: CatalogPackage) -> LineCapabilities:
    provider = context.providers.get(package.provider).capabilities
    rule = provider.cancel_rule
    return LineCapabilities(
        topup=provider.topup and package.topup,
        # SimplifyTrip cancels physical-SIM orders only, while NEW (not eSIMs, not
        # recharges, which succeed at once); Roamify cancels none
        cancel=provider.cancel and rule is not None and rule.cancels_product(package.product_type),
        usage=provider.usage and package.usage_check,
    )


async def _balance_sufficient(
    context: Context, provider: ProviderName, total: Money
) -> bool | None:
    gateway = context.providers.get(provider)
    try:
        balances = await context.providers.read(provider, gateway.balances)
    except ProviderFailure:
        return None  # unknown: the quote says so rather than guess
    same = [b.balance.amount for b in balances if b.balance.currency == total.currency]
    return max(same) >= total.amount if same else None


def quote_payload(items: Sequence[tuple[str, int]], start_date: date | None) -> dict[str, Any]:
    """The part of an order a quote covers, as the ledger stores an order's request."""
    payload: dict[str, Any] = {
        "items": [{"packageId": package_id, "quantity": quantity} for package_id, quantity in items]
    }
    if start_date is not None:
        payload["startDate"] = start_date.isoformat()
    return payload


async def quote_order(
    context: Context,
    provider: ProviderName,
    items: Sequence[tuple[str, int]],
    start_date: date | None,
) -> OrderQuote:
    """Price the order and say whether it can be bought now. Input was checked already
    (the same rules as `createOrder`); an unlisted package is an answer, not an error."""
    catalog = context.services.catalog
    lines: list[QuotedLine] = []
    problems: list[str] = []
    for package_id, quantity in items:
        package = await catalog.get(provider, package_id)
        if package is None:
            problems.append(f"Package {package_id} is not listed by {provider.value}.")
            lines.append(QuotedLine(package_id, quantity, None, None))
            continue
        if package.requires_travel_date and start_date is None:
            problems.append(f"Package {package_id} needs the travel start date.")
        lines.append(QuotedLine(package_id, quantity, package, _capabilities(context, package)))
    listed = [(line.package, line.quantity) for line in lines if line.package is not None]
    total = order_total(listed) if len(listed) == len(lines) else None
    quote = None
    balance_sufficient = None
    if total is not None:
        balance_sufficient = await _balance_sufficient(context, provider, total)
        if balance_sufficient is False:
            problems.append(f"The {provider.value} balance does not cover this order.")
        now = datetime.now(UTC)
        quote = QuoteRecord(
            id=str(uuid.uuid4()),
            owner=context.principal.id,
            provider=provider,
            request=quote_payload(items, start_date),
            unit_prices={package.package_id: package.price for package, _ in listed},
            total=total,
            created_at=now,
            expires_at=now + timedelta(seconds=context.settings.quote_ttl),
        )
        await context.ledger.quotes.save(quote)
    return OrderQuote(provider, tuple(lines), quote, balance_sufficient, tuple(problems))


def parse_quote_id(quote_id: str) -> str:
    try:
        return str(uuid.UUID(quote_id))
    except ValueError:
        raise InvalidInput("quoteId", "Not a quote id this API returned.") from None


async def check_quote(
    context: Context,
    quote_id: str,
    provider: ProviderName,
    items: Sequence[tuple[str, int]],
    start_date: date | None,
) -> None:
    """Refuse an order that does not match its quote, or whose price moved since."""
    quote = await context.ledger.quotes.get(parse_quote_id(quote_id))
    # another principal's quote is indistinguishable from one that does not exist
    if quote is None or quote.owner != context.principal.id:
        raise ResourceNotFound("No quote with this id.")
    if quote.provider is not provider or quote.request != quote_payload(items, start_date):
        raise InvalidInput("quoteId", "This quote is for another order: quote this one first.")
    if datetime.now(UTC) >= quote.expires_at:
        raise QuoteExpired(quote.id, quote.expires_at)
    moved_to = await moved_price(context.services.catalog, quote)
    if moved_to is not None:
        raise PriceChanged(quote.id, quote.total.amount, moved_to, quote.total.currency)
