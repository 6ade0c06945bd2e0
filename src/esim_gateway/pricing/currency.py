"""One decimal form per amount and currency, the same on every path.

An amount read back from the ledger (`5.0000`, a NUMERIC column's scale), the one a
provider sent (`5`, `4.99`) and one computed here (`125000.00`) are the same money; a
client comparing or caching answers must see the same string. The canonical form has
the currency's ISO 4217 minor units (USD `5.00`, VND `125000`, KWD `1.500`), and more
digits only where the amount really has them (`4.995` stays exact, never rounded).
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["MINOR_UNITS", "canonical_amount", "minor_unit", "minor_units"]

#: ISO 4217 currencies whose minor unit is not the cent; every other code has 2
_ZERO = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI")
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys((*_ZERO, "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def minor_units(currency: str) -> int:
    """Digits after the decimal point in `currency` (ISO 4217; 2 when unknown)."""
    return MINOR_UNITS.get(currency.upper(), 2)


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of `currency`: 0.01 USD, 1 VND."""
    return Decimal(1).scaleb(-minor_units(currency))


def canonical_amount(amount: Decimal, currency: str) -> Decimal:
    """`amount` with the currency's minor units, or more digits where it has them."""
    if not amount.is_finite():
        return amount
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    return amount.quantize(Decimal(1).scaleb(min(-minor_units(currency), exponent)))
