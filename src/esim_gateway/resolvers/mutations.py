"""Use cases behind the mutations: validate, record in the ledger, then drive the purchase.

Validation happens before anything is written or sent: a rejected input leaves no ledger
row and makes no upstream call (except reading the catalog snapshot).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime

from esim_gateway.context import Context
from esim_gateway.domain import OrderState, ProviderName
from esim_gateway.errors import (
    CancellationNotAllowed,
    CancelRefusal,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    ProviderError,
    ProviderFailure,
    ResourceNotFound,
    UnsupportedOperation,
)
from esim_gateway.ledger.orders import NewOrder, OrderRecord, Step, request_hash
from esim_gateway.providers.base import CancelRule
from esim_gateway.purchasing.scheduler import cancel_scheduled, check_scheduled_at
from esim_gateway.resolvers.esims import check_iccid
from esim_gateway.resolvers.orders import require_visible_order
from esim_gateway.resolvers.quotes import check_quote, parse_quote_id, quote_payload

__all__ = ["Line", "cancel_order", "check_order_lines", "create_order", "topup"]

MAX_LINES = 20
MAX_QUANTITY = {ProviderName.ROAMIFY: 10, ProviderName.SIMPLIFYTRIP: 500}
MAX_KEY_LENGTH = 200
MAX_ID_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Line:
    package_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class MutationOutcome:
    record: OrderRecord
    failure: ProviderFailure | None


def _check_key(key: str | None) -> str:
    if key is None:
        return str(uuid.uuid4())
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            "idempotencyKey", f"An idempotency key is 1 to {MAX_KEY_LENGTH} printable characters."
        )
    return key


def _check_lines(provider: ProviderName, lines: list[Line]) -> None:
    if not lines:
        raise InvalidInput("items", "An order needs at least one item.")
    if len(lines) > MAX_LINES:
        raise InvalidInput("items", f"An order has at most {MAX_LINES} items.")
    seen: set[str] = set()
    top = MAX_QUANTITY[provider]
    for index, line in enumerate(lines):
        if not line.package_id.strip() or len(line.package_id) > MAX_ID_LENGTH:
            raise InvalidInput(f"items[{index}].packageId", "A package id is 1 to 200 characters.")
        if line.quantity < 1 or line.quantity > top:
            raise InvalidInput(f"items[{index}].quantity", f"Quantity must be between 1 and {top}.")
        if line.package_id in seen:
            raise InvalidInput(
                f"items[{index}].packageId", "Each package may appear once; raise its quantity."
            )
        seen.add(line.package_id)


def _enabled(context: Context, provider: ProviderName) -> None:
    context.providers.get(provider)  # raises ProviderUnavailable when not configured


async def _replay_or_conflict(
    context: Context, key: str, kind: str, payload: dict[str, object]
) -> OrderRecord | None:
    existing = await context.ledger.orders.by_key(context.principal.id, key)
    if existing is None:
        return None
    if existing.kind != kind or existing.request_hash != request_hash(payload):
        raise IdempotencyConflict(key)
    return existing


async def _run(context: Context, record: OrderRecord, wait: bool) -> MutationOutcome:
    driver = context.services.driver
    if not wait:
        # the purchase goes on in the background; the caller follows it by subscription
        driver.start(record)
        return MutationOutcome(record, None)
    outcome = await driver.wait(record, context.settings.order_deadline)
    return MutationOutcome(outcome.record, outcome.failure)


def rejection_of(record: OrderRecord) -> ProviderError | None:
    """The provider's refusal stored with an order, rebuilt for a replayed request."""
    if record.step is not Step.REJECTED or record.error_status is None:
        return None
    return ProviderError(
        record.provider.value,
        record.error_status,
        record.error_code or "",
        record.failure_reason or "",
        retryable=False,
    )


async def _claim_and_run(
    context: Context,
    provider: ProviderName,
    kind: str,
    key: str,
    payload: dict[str, object],
    wait: bool = True,
    *,
    scheduled_at: datetime | None = None,
    check: Callable[[], Awaitable[None]] | None = None,
    quote_id: str | None = None,
) -> MutationOutcome:
    """`check` runs before a new order is recorded, never for a replay (a retry of an
    order already recorded answers that order, whatever its quote says now). A new order
    takes `quote_id` as it is recorded: `QuoteUsed` when another order has it."""
    replay = await _replay_or_conflict(context, key, kind, payload)
    if replay is None:
        if check is not None:
            await check()
        replay, created = await context.ledger.orders.claim(
            NewOrder(
                owner=context.principal.id,
                kind=kind,
                provider=provider,
                idempotency_key=key,
                request=payload,
                scheduled_at=scheduled_at,
                quote_id=quote_id,
            )
        )
        if not created and replay.request_hash != request_hash(payload):
            raise IdempotencyConflict(key)
    if replay.step.is_terminal or replay.step is Step.SCHEDULED:
        return MutationOutcome(replay, rejection_of(replay))
    return await _run(context, replay, wait)


def check_order_lines(
    context: Context, provider: ProviderName, lines: list[Line], start_date: date | None
) -> None:
    """The checks of an order's input that need no catalog (quotes share them)."""
    _check_lines(provider, lines)
    _enabled(context, provider)
    if start_date is not None and start_date < date.today():
        raise InvalidInput("startDate", "The travel start date is in the past.")


async def create_order(
    context: Context,
    provider: ProviderName,
    lines: list[Line],
    idempotency_key: str | None,
    start_date: date | None = None,
    *,
    wait: bool = True,
    quote_id: str | None = None,
    scheduled_at: datetime | None = None,
) -> MutationOutcome:
    """Place an order now, or (`scheduled_at`) record it to be placed then; with
    `quote_id`, only at the quoted price."""
    key = _check_key(idempotency_key)
    check_order_lines(context, provider, lines, start_date)
    when = check_scheduled_at(context.settings, scheduled_at) if scheduled_at else None
    if when is not None and start_date is not None and start_date < when.date():
        raise InvalidInput("startDate", "The travel start date is before scheduledAt.")
    catalog = context.services.catalog
    for index, line in enumerate(lines):
        package = await catalog.get(provider, line.package_id)
        if package is None:
            raise InvalidInput(
                f"items[{index}].packageId", f"No {provider.value} package with this id."
            )
        if package.requires_travel_date and start_date is None:
            raise InvalidInput(
                "startDate", f"Package {line.package_id} needs the travel start date."
            )
    items = [(line.package_id, line.quantity) for line in lines]
    payload: dict[str, object] = quote_payload(items, start_date)
    check: Callable[[], Awaitable[None]] | None = None
    if quote_id is not None:
        payload["quoteId"] = quote_id
        check = functools.partial(check_quote, context, quote_id, provider, items, start_date)
    if when is not None:
        payload["scheduledAt"] = when.isoformat()
    return await _claim_and_run(
        context,
        provider,
        "order",
        key,
        payload,
        wait,
        scheduled_at=when,
        check=check,
        quote_id=parse_quote_id(quote_id) if quote_id is not None else None,
    )


async def topup(
    context: Context,
    iccid: str,
    package_id: str,
    idempotency_key: str | None,
    *,
    wait: bool = True,
) -> MutationOutcome:
    key = _check_key(idempotency_key)
    iccid = check_iccid(iccid)
    if not package_id.strip() or len(package_id) > MAX_ID_LENGTH:
        raise InvalidInput("packageId", "A package id is 1 to 200 characters.")
    owner_order = await context.ledger.orders.order_for_iccid(iccid)
    if owner_order is not None and not context.principal.can_see(owner_order.owner):
        raise ResourceNotFound("No eSIM with this ICCID.")
    provider = owner_order.provider if owner_order is not None else None
    if provider is None:
        # Not bought through the gateway: SimplifyTrip physical SIMs are recharged by ICCID.
        provider = ProviderName.SIMPLIFYTRIP
    gateway = context.providers.get(provider)
    if not gateway.capabilities.topup:
        raise UnsupportedOperation(provider.value, "topup")
    if (
        owner_order is None
        and not context.principal.is_operator
        and provider is not ProviderName.SIMPLIFYTRIP
    ):
        raise ResourceNotFound("No eSIM with this ICCID.")
    replay = await _replay_or_conflict(
        context, key, "topup", {"iccid": iccid, "packageId": package_id}
    )
    if replay is not None:
        return await _claim_and_run(
            context, replay.provider, "topup", key, {"iccid": iccid, "packageId": package_id}, wait
        )
    compatible = await context.providers.read(provider, lambda: gateway.topup_packages(iccid))
    if package_id not in {p.package_id for p in compatible}:
        raise InvalidInput("packageId", "This package is not a top-up for this eSIM.")
    return await _claim_and_run(
        context, provider, "topup", key, {"iccid": iccid, "packageId": package_id}, wait
    )


async def cancel_order(context: Context, order_id: str, reason: str | None) -> OrderRecord:
    if reason is not None and len(reason) > 500:
        raise InvalidInput("reason", "A reason is at most 500 characters.")
    record = await require_visible_order(context, order_id)
    withdrawn = await cancel_scheduled(context, record, reason)
    if withdrawn is not None:
        return withdrawn
    gateway = context.providers.get(record.provider)
    rule = gateway.capabilities.cancel_rule
    if not gateway.capabilities.cancel or rule is None:
        raise UnsupportedOperation(
            record.provider.value,
            "cancel",
            f"{record.provider.value} has no order cancellation: an order placed there"
            " cannot be cancelled (one still scheduled can, before it is placed).",
        )
    if record.provider_order_id is None:
        raise InvalidInput("orderId", "This order was not placed with the provider.")
    if record.state in (OrderState.CANCELLED, OrderState.REFUNDED):
        return record
    kinds = _product_types(context, record, rule)
    _check_cancellable(record, rule, kinds, record.state, record.provider_status)
    provider_order_id = record.provider_order_id
    try:
        cancelled = await context.providers.write(
            record.provider, lambda: gateway.cancel_order(provider_order_id, reason)
        )
    except NotFound:
        # refused although the ledger's view allowed it: that view may be behind (a SIM
        # shipped since); the provider's current status says why in our words, if it can
        try:
            current = await context.providers.read(
                record.provider, lambda: gateway.get_order(provider_order_id)
            )
        except ProviderFailure:
            current = None
        if current is not None:
            _check_cancellable(record, rule, kinds, current.state, current.provider_status)
        raise
    return await context.ledger.orders.update(
        record.id,
        state=cancelled.state,
        provider_status=cancelled.provider_status,
        step=Step.SETTLED,
        note=f"cancelled: {reason}" if reason else "cancelled",
    )


def _product_types(
    context: Context, record: OrderRecord, rule: CancelRule
) -> tuple[str, ...] | None:
    """What the order bought, by product type, from the catalog snapshot held (a check
    that calls no provider); None when a package is not in it: only the provider knows."""
    if record.kind == "topup":
        return (rule.topup_product_type,)
    found: list[str] = []
    for item in record.request.get("items", []):
        package = context.services.catalog.listed(record.provider, str(item["packageId"]))
        if package is None:
            return None
        found.append(package.product_type)
    return tuple(found) or None


#: how the messages name an order of each product type: (one, several)
_ORDER_OF = {
    "ESIM": ("an eSIM order", "eSIM orders"),
    "SIM": ("a physical-SIM order", "physical-SIM orders"),
    "SIM_RECHARGE": ("a SIM recharge", "SIM recharges"),
}


def _order_of(product_type: str, *, several: bool = False) -> str:
    one, many = _ORDER_OF.get(product_type.upper(), (f"a {product_type} order", "such orders"))
    return many if several else one


def _check_cancellable(
    record: OrderRecord,
    rule: CancelRule,
    product_types: tuple[str, ...] | None,
    state: OrderState,
    provider_status: str | None,
) -> None:
    """Raise `CancellationNotAllowed` when the provider's rule leaves the order out."""
    provider = record.provider.value
    refused = next((t for t in product_types or () if not rule.cancels_product(t)), None)
    allowed = " and ".join(sorted(_order_of(t, several=True) for t in rule.product_types))
    statuses = " or ".join(sorted(rule.statuses))
    if refused is not None:
        what = _order_of(refused) + (" (a top-up)" if record.kind == "topup" else "")
        reason, message = (
            CancelRefusal.ORDER_KIND,
            f"{provider} cancels only {allowed} still {statuses}, and this is {what}:"
            " nothing was changed.",
        )
    elif not rule.cancels_status(provider_status):
        reason, message = (
            CancelRefusal.ORDER_STATUS,
            f"{provider} cancels {allowed} only while they are {statuses}, and this one is"
            f" {provider_status or state.value} ({state.value}): nothing was changed.",
        )
    else:
        return
    raise CancellationNotAllowed(
        provider,
        order_kind=record.kind,
        product_type=refused or (product_types[0] if product_types else None),
        state=state.value,
        provider_status=provider_status,
        reason=reason,
        message=message,
    )
