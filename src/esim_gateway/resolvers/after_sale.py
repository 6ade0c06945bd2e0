"""After-sale: refunds (with their fee rules shown before confirming), provider balances,
and top-up offers for an eSIM.

A refund is made exactly once per (caller, idempotency key): the reference sent upstream
(SimplifyTrip's `returnTrackId`) is derived from the key, so a retried or timed-out
request finds the refund it already made instead of asking twice.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from esim_gateway.context import Context
from esim_gateway.domain import (
    Balance,
    CatalogPackage,
    EsimProfile,
    Money,
    ProviderName,
    RefundRecord,
)
from esim_gateway.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    ProviderUnavailable,
    ResourceNotFound,
    UnsupportedOperation,
)
from esim_gateway.ledger.orders import OrderRecord
from esim_gateway.providers.base import RefundGateway
from esim_gateway.resolvers.orders import order_lines, require_visible_order

__all__ = [
    "RefundQuote",
    "balances",
    "cancel_refund",
    "quote_refund",
    "request_refund",
    "topup_offers",
]

MAX_ICCIDS = 50


@dataclass(frozen=True, slots=True)
class RefundQuote:
    order: OrderRecord
    iccids: tuple[str, ...]
    fee: Money
    amount: Money
    rules: str


def _refunds(context: Context, provider: ProviderName) -> RefundGateway:
    gateway = context.providers.get(provider)
    if not gateway.capabilities.refund or not isinstance(gateway, RefundGateway):
        raise UnsupportedOperation(
            provider.value, "refund", f"{provider.value} has no documented refund API."
        )
    return gateway


async def _lines_for(
    context: Context, order: OrderRecord, iccids: Sequence[str]
) -> tuple[list[tuple[str, list[str]]], Decimal, str]:
    """Group the ICCIDs by order line; also the refundable total and its currency."""
    if not iccids:
        raise InvalidInput("iccids", "Name at least one eSIM to refund.")
    if len(iccids) > MAX_ICCIDS or len(set(iccids)) != len(iccids):
        raise InvalidInput("iccids", f"Up to {MAX_ICCIDS} distinct ICCIDs.")
    grouped: dict[str, list[str]] = {}
    total, currency = Decimal(0), order.currency or ""
    found: set[str] = set()
    for line in await order_lines(context, order):
        for esim in line.esims:
            if esim.iccid in iccids:
                grouped.setdefault(line.line_id, []).append(esim.iccid)
                found.add(esim.iccid)
                if line.unit_price is not None:
                    total += line.unit_price.amount
                    currency = line.unit_price.currency
    missing = [i for i in iccids if i not in found]
    if missing:
        raise InvalidInput("iccids", f"{missing[0]} is not an eSIM of this order.")
    return list(grouped.items()), total, currency


async def quote_refund(context: Context, order_id: str, iccids: Sequence[str]) -> RefundQuote:
    order = await require_visible_order(context, order_id)
    gateway = _refunds(context, order.provider)
    _, total, currency = await _lines_for(context, order, iccids)
    fee = gateway.refund_fee_per_esim.amount * len(iccids)
    return RefundQuote(
        order=order,
        iccids=tuple(iccids),
        fee=Money(fee, gateway.refund_fee_per_esim.currency),
        amount=Money(max(total - fee, Decimal(0)), currency),
        rules=(
            f"A fee of {gateway.refund_fee_per_esim.amount:,} "
            f"{gateway.refund_fee_per_esim.currency} per returned eSIM; each eSIM is "
            "refunded max(price - fee, 0). Orders must be completed and under 6 months"
            " old, one open request per order; the provider's reviewers may add a fee."
        ),
    )


def _reference(owner: str, key: str) -> str:
    return "rf-" + hashlib.sha256(f"{owner}\x00{key}".encode()).hexdigest()[:32]


async def request_refund(
    context: Context,
    order_id: str,
    iccids: Sequence[str],
    reason: str | None,
    idempotency_key: str | None,
) -> RefundRecord:
    if reason is not None and len(reason) > 500:
        raise InvalidInput("reason", "A reason is at most 500 characters.")
    key = idempotency_key or str(uuid.uuid4())
    if not key.strip() or len(key) > 200:
        raise InvalidInput("idempotencyKey", "An idempotency key is 1 to 200 characters.")
    order = await require_visible_order(context, order_id)
    gateway = _refunds(context, order.provider)
    if order.provider_order_id is None:
        raise InvalidInput("orderId", "This order was not placed with the provider.")
    lines, _, _ = await _lines_for(context, order, iccids)
    reference = _reference(context.principal.id, key)
    provider = order.provider
    try:
        existing = await context.providers.read(provider, lambda: gateway.get_refund(reference))
    except NotFound:
        existing = None
    if existing is not None:
        return existing
    provider_order_id = order.provider_order_id
    try:
        return await context.providers.write(
            provider,
            lambda: gateway.request_refund(reference, provider_order_id, lines, reason),
        )
    except (ProviderUnavailable, ProviderError) as exc:
        if isinstance(exc, ProviderError) and exc.status < 500 and exc.status != 429:
            raise
        # the outcome is unknown: the provider may hold it under our reference
        return await context.providers.read(provider, lambda: gateway.get_refund(reference))


async def cancel_refund(context: Context, refund_id: str) -> RefundRecord:
    if not refund_id or len(refund_id) > 200:
        raise InvalidInput("refundId", "Not a refund id.")
    for provider in context.providers.enabled():
        gateway = context.providers.get(provider)
        if not gateway.capabilities.refund or not isinstance(gateway, RefundGateway):
            continue
        try:
            refund = await context.providers.read(
                provider, functools.partial(gateway.get_refund, refund_id)
            )
        except NotFound:
            continue
        order = (
            await context.ledger.orders.by_provider_order_id(provider, refund.order_id)
            if refund.order_id
            else None
        )
        if order is None or not context.principal.can_see(order.owner):
            break
        return await context.providers.write(
            provider, functools.partial(gateway.cancel_refund, refund.refund_id)
        )
    raise ResourceNotFound("No refund with this id.")


async def balances(context: Context) -> list[tuple[Balance, bool]]:
    """Every provider's balances (operators only), each with a low-balance flag from the
    latest partner webhook."""
    if not context.principal.is_operator:
        raise Forbidden("Provider balances are for operators.")
    found: list[tuple[Balance, bool]] = []
    for provider in context.providers.enabled():
        gateway = context.providers.get(provider)
        event = await context.ledger.events.latest(
            provider, ["partner/low_balance", "partner/insufficient_balance", "partner/top_up"]
        )
        low = event is not None and not event.event_type.endswith("top_up")
        for balance in await context.providers.read(provider, gateway.balances):
            found.append((balance, low))
    return found


async def topup_offers(context: Context, profile: EsimProfile) -> Sequence[CatalogPackage]:
    gateway = context.providers.get(profile.provider)
    if not gateway.capabilities.topup:
        raise UnsupportedOperation(profile.provider.value, "topup")
    if profile.provider is ProviderName.ROAMIFY and not profile.topup_allowed:
        return ()
    iccid = profile.iccid
    return await context.providers.read(profile.provider, lambda: gateway.topup_packages(iccid))
