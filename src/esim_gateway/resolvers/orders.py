"""Reading orders: ownership, provider details through loaders, listing from the ledger."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from esim_gateway.context import Context
from esim_gateway.domain import EsimProfile, OrderLine, OrderState, ProviderName, ProviderOrder
from esim_gateway.errors import GatewayError, InvalidInput, ProviderFailure, ResourceNotFound
from esim_gateway.ledger.orders import OrderRecord, Page

__all__ = [
    "details_failure",
    "list_orders",
    "order_esims",
    "order_lines",
    "require_visible_order",
    "visible_order",
]

MAX_PAGE = 100


async def visible_order(context: Context, order_id: str) -> OrderRecord | None:
    """The order if it exists and the caller may see it; None otherwise (indistinguishable)."""
    try:
        order_id = str(uuid.UUID(order_id))
    except ValueError:
        return None
    # A fresh cached order needs no batch: the loader would only schedule one to read
    # the same cache (issue 12, 'loaders': ~3 event-loop turns and a task per order read)
    record = context.ledger.orders.cached(order_id) or await context.loaders.ledger_orders.load(
        order_id
    )
    if record is None or not context.principal.can_see(record.owner):
        return None
    return record


async def require_visible_order(context: Context, order_id: str) -> OrderRecord:
    record = await visible_order(context, order_id)
    if record is None:
        raise ResourceNotFound("No order with this id.")
    return record


async def by_reference(context: Context, provider: ProviderName, reference: str) -> OrderRecord:
    if not reference or len(reference) > 200:
        raise InvalidInput("reference", "A reference is 1 to 200 characters.")
    record = await context.ledger.orders.by_reference(provider, reference)
    if record is None or not context.principal.can_see(record.owner):
        raise ResourceNotFound("No order with this reference.")
    return record


def check_page_size(first: int | None, default: int = 20) -> int:
    if first is None:
        return default
    if first < 1 or first > MAX_PAGE:
        raise InvalidInput("first", f"`first` must be between 1 and {MAX_PAGE}.")
    return first


async def list_orders(
    context: Context,
    *,
    provider: ProviderName | None,
    state: OrderState | None,
    reference: str | None,
    first: int | None,
    after: str | None,
) -> Page:
    size = check_page_size(first)
    owner = None if context.principal.is_operator else context.principal.id
    try:
        return await context.ledger.orders.page(
            owner=owner,
            provider=provider,
            state=state,
            reference=reference,
            first=size,
            after=after,
        )
    except ValueError:
        raise InvalidInput("after", "Not a cursor this API returned.") from None


async def _provider_order_or_failure(context: Context, record: OrderRecord) -> object:
    """The provider's order, or the failure reading it (aiodataloader re-raises an
    exception found in a key's slot; the order's own fields must still resolve)."""
    if record.provider_order_id is None:
        return None
    try:
        return await context.loaders.provider_orders.load(
            (record.provider, record.provider_order_id)
        )
    except GatewayError as exc:
        return exc


async def details_failure(context: Context, record: OrderRecord) -> ProviderFailure | None:
    result = await _provider_order_or_failure(context, record)
    return result if isinstance(result, ProviderFailure) else None


def _ledger_lines(record: OrderRecord) -> list[OrderLine]:
    if record.kind == "topup":
        return [
            OrderLine(
                line_id=f"{record.id}-0", package_id=str(record.request["packageId"]), quantity=1
            )
        ]
    return [
        OrderLine(
            line_id=f"{record.id}-{index}",
            package_id=str(line["packageId"]),
            quantity=int(line["quantity"]),
        )
        for index, line in enumerate(record.request.get("items", []))
    ]


async def order_lines(
    context: Context, record: OrderRecord, *, with_esims: bool = True
) -> Sequence[OrderLine]:
    """The provider's lines (with eSIMs where it includes them), else the ledger's.

    `with_esims=False` skips attaching eSIMs the provider lists separately (Roamify), so
    a query that does not ask for them costs no extra upstream call.
    """
    result = await _provider_order_or_failure(context, record)
    if result is None or isinstance(result, Exception):
        return _ledger_lines(record)
    from esim_gateway.domain import ProviderOrder

    assert isinstance(result, ProviderOrder)
    if result.esims_included or record.kind == "topup" or not with_esims:
        return result.lines
    esims = await order_esims(context, record)
    by_id = {e.esim_id: e for e in esims}
    return [
        OrderLine(
            line_id=line.line_id,
            package_id=line.package_id,
            quantity=line.quantity,
            package_name=line.package_name,
            unit_price=line.unit_price,
            state=line.state,
            provider_status=line.provider_status,
            sub_reference=line.sub_reference,
            esim_ids=line.esim_ids,
            esims=tuple(by_id[i] for i in line.esim_ids if i in by_id)
            or (tuple(esims) if len(result.lines) == 1 else ()),
        )
        for line in result.lines
    ]


async def order_esims(context: Context, record: OrderRecord) -> Sequence[EsimProfile]:
    if record.provider_order_id is None or record.kind == "topup":
        return ()
    try:
        result = await context.loaders.order_esims.load((record.provider, record.provider_order_id))
    except GatewayError:
        return ()  # `Order.providerError` says why
    if isinstance(result, Exception):
        raise result
    return [e for e in result if e.iccid]


async def provider_order(context: Context, record: OrderRecord) -> ProviderOrder | None:
    """The provider's view of the order, or None when it cannot be read just now."""
    result = await _provider_order_or_failure(context, record)
    return result if isinstance(result, ProviderOrder) else None
