"""Outbound webhook endpoints and deliveries: operators only.

Registering checks everything before writing anything: the event names, and the URL
against the mode's policy (https, and in live mode no private or loopback address).
"""

from __future__ import annotations

from collections.abc import Sequence

from esim_gateway.context import Context
from esim_gateway.domain import EVENT_TYPES, new_secret
from esim_gateway.errors import Forbidden, InvalidInput, ResourceNotFound, UnknownEvent
from esim_gateway.ledger.outbox import DeliveryPage, DeliveryRecord, DeliveryStatus, EndpointRecord
from esim_gateway.outbound.urls import UrlPolicy

__all__ = [
    "create_endpoint",
    "deliveries",
    "endpoints",
    "redeliver",
    "rotate_secret",
    "set_enabled",
]

MAX_DESCRIPTION = 200
MAX_DELIVERIES = 100


def _require_operator(context: Context) -> None:
    # the open sandbox (no keys configured) lets its demo principal try webhooks out
    if context.services.authenticator.is_open:
        return
    if not context.principal.is_operator:
        raise Forbidden("Webhook endpoints are for operators.")


def _policy(context: Context) -> UrlPolicy:
    return context.services.webhook_policy


async def create_endpoint(
    context: Context, url: str, events: Sequence[str], description: str | None
) -> EndpointRecord:
    _require_operator(context)
    if not events:
        raise InvalidInput("events", "Subscribe to at least one event.")
    for event in events:
        if event not in EVENT_TYPES:
            raise UnknownEvent(event, EVENT_TYPES)
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidInput("description", f"At most {MAX_DESCRIPTION} characters.")
    await _policy(context).check(url)
    return await context.ledger.outbound.create_endpoint(
        url, tuple(dict.fromkeys(events)), description, context.principal.id, secret=new_secret()
    )


async def endpoints(context: Context) -> list[EndpointRecord]:
    _require_operator(context)
    return await context.ledger.outbound.endpoints()


async def set_enabled(context: Context, endpoint_id: str, enabled: bool) -> EndpointRecord:
    _require_operator(context)
    record = await context.ledger.outbound.set_enabled(endpoint_id, enabled)
    if record is None:
        raise ResourceNotFound("No webhook endpoint with this id.")
    return record


async def rotate_secret(context: Context, endpoint_id: str) -> EndpointRecord:
    _require_operator(context)
    record = await context.ledger.outbound.rotate_secret(endpoint_id, new_secret())
    if record is None:
        raise ResourceNotFound("No webhook endpoint with this id.")
    return record


async def deliveries(
    context: Context,
    *,
    endpoint_id: str | None,
    status: DeliveryStatus | None,
    order_id: str | None,
    first: int,
    after: str | None = None,
) -> DeliveryPage:
    _require_operator(context)
    if not 1 <= first <= MAX_DELIVERIES:
        raise InvalidInput("first", f"Between 1 and {MAX_DELIVERIES}.")
    try:
        return await context.ledger.outbound.deliveries(
            endpoint_id=endpoint_id,
            status=status,
            subject=f"order:{order_id}" if order_id is not None else None,
            first=first,
            after=after,
        )
    except ValueError:
        raise InvalidInput("after", "Not a cursor this API returned.") from None


async def redeliver(context: Context, delivery_id: str) -> DeliveryRecord:
    _require_operator(context)
    try:
        number = int(delivery_id)
    except ValueError:
        raise InvalidInput("deliveryId", "Not a webhook delivery id.") from None
    record = await context.ledger.outbound.redeliver(number)
    if record is None:
        raise ResourceNotFound("No webhook delivery with this id.")
    context.services.webhook_dispatcher.wake()
    return record
