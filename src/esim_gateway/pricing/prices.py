"""Prices: conversion to USD for comparison, and the travel business's retail markup.

Rounding rules (stated in the schema too):
* `priceUsd` = price / (units of the currency per USD), rounded half-even to cents;
* `retailPrice` = price x (1 + percent/100) + fixed, in the provider's currency, rounded
  half-up to the currency's minor unit (cents for USD, whole dong for VND).
Amounts are `Decimal` throughout; no float ever touches money.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from esim_gateway.config import Markup
from esim_gateway.domain import Money, ProviderName
from esim_gateway.pricing.currency import minor_unit

__all__ = ["Prices", "Rate"]

CENT = Decimal("0.01")


@functools.lru_cache(maxsize=65536)
def _to_usd(amount: Decimal, units_per_usd: Decimal) -> Decimal:
    # memoised: a catalog has few distinct prices and sorting converts each many times
    return (amount / units_per_usd).quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Rate:
    currency: str
    units_per_usd: Decimal
    as_of: datetime
    source: str


class Prices:
    def __init__(
        self,
        rates: Iterable[tuple[str, Decimal]],
        markups: Mapping[str, Markup] | None = None,
        *,
        source: str = "static",
        as_of: datetime | None = None,
    ) -> None:
        stamp = as_of or datetime.now(UTC)
        self._rates = {
            code.upper(): Rate(code.upper(), value, stamp, source) for code, value in rates
        }
        self._rates.setdefault("USD", Rate("USD", Decimal(1), stamp, source))
        self._markups = dict(markups or {})
        #: bumped whenever a rate changes, so values derived from rates can be cached
        self.generation = 0

    def update_rates(self, rates: Iterable[Rate]) -> None:
        for rate in rates:
            if rate.units_per_usd > 0:
                self._rates[rate.currency.upper()] = rate
                self.generation += 1

    def rate(self, currency: str) -> Rate | None:
        return self._rates.get(currency.upper())

    def usd(self, price: Money) -> Decimal | None:
        rate = self.rate(price.currency)
        if rate is None:
            return None
        return _to_usd(price.amount, rate.units_per_usd)

    def has_markup(self, provider: ProviderName) -> bool:
        return provider.value in self._markups

    def retail(self, provider: ProviderName, price: Money) -> Money:
        markup = self._markups.get(provider.value)
        if markup is None:
            return price
        amount = price.amount * (1 + markup.percent / 100) + markup.fixed
        quantized = amount.quantize(minor_unit(price.currency), rounding=ROUND_HALF_UP)
        return Money(max(quantized, Decimal(0)), price.currency)
