"""What a quoted order costs now: the scheduler re-checks a quote's prices when the order
falls due, and `confirmQuote`/`createOrder(quoteId:)` when it is used."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from esim_gateway.dataloaders.catalog import Catalog
from esim_gateway.domain import CatalogPackage, Money
from esim_gateway.ledger.quotes import QuoteRecord

__all__ = ["moved_price", "order_total"]


def order_total(packages: Sequence[tuple[CatalogPackage, int]]) -> Money | None:
    """The sum of the lines, or None when they are not all in one currency."""
    currencies = {package.price.currency for package, _ in packages}
    if len(currencies) != 1:
        return None
    amount = sum((package.price.amount * quantity for package, quantity in packages), Decimal(0))
    return Money(amount, currencies.pop())


async def moved_price(catalog: Catalog, quote: QuoteRecord) -> Decimal | None:
    """The order's total now, when it is not the quoted one (a package no longer listed
    counts as 0); None when every quoted price still holds."""
    current: list[tuple[CatalogPackage, int]] = []
    for item in quote.request["items"]:
        package = await catalog.get(quote.provider, str(item["packageId"]))
        if package is None:
            return Decimal(0)
        current.append((package, int(item["quantity"])))
    total = order_total(current)
    moved = any(quote.unit_prices.get(p.package_id) != p.price for p, _ in current)
    if total is None or moved or total != quote.total:
        return total.amount if total is not None else Decimal(0)
    return None
