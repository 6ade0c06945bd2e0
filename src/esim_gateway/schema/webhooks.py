"""Outbound webhooks in the schema: endpoints, deliveries, replay (operators only).

`Query` and `Mutation` in root.py inherit these fields.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import orjson
import strawberry
from strawberry.types import Info

from esim_gateway.context import Context
from esim_gateway.ledger.outbound_events import order_global_id
from esim_gateway.ledger.outbox import (
    DeliveryRecord,
    DeliveryStatus,
    EndpointRecord,
    encode_delivery_cursor,
)
from esim_gateway.resolvers import webhooks as resolvers
from esim_gateway.schema.errors import (
    ForbiddenError,
    NotFoundError,
    UnknownEventError,
    UrlNotAllowedError,
    ValidationError,
)
from esim_gateway.schema.ids import parse_order_id
from esim_gateway.schema.types import PageInfo

__all__ = ["WebhookMutations", "WebhookQueries"]

GInfo = Info[Context, None]


@strawberry.enum
class WebhookDeliveryStatus(enum.Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@strawberry.type(description="A receiver of the gateway's outbound webhooks.")
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: EndpointRecord) -> WebhookEndpoint:
        return cls(
            id=strawberry.ID(record.id),
            url=record.url,
            events=list(record.events),
            description=record.description,
            enabled=record.enabled,
            created_by=record.created_by,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


@strawberry.type(
    description=(
        "An endpoint with its signing secret (`whsec_...`), shown only here: when it is"
        " created and when its secret is rotated."
    )
)
class WebhookEndpointSecret:
    endpoint: WebhookEndpoint
    secret: str


@strawberry.type
class WebhookEndpointList:
    endpoints: list[WebhookEndpoint]


@strawberry.type(description="One event sent (or to be sent) to one endpoint.")
class WebhookDelivery:
    id: strawberry.ID
    webhook_id: str = strawberry.field(
        description="The `webhook-id` header: the same on every attempt and replay."
    )
    event_type: str
    endpoint_id: strawberry.ID
    order_id: strawberry.ID | None
    status: WebhookDeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: str = strawberry.field(description="The JSON body, as sent.")

    @classmethod
    def from_record(cls, record: DeliveryRecord) -> WebhookDelivery:
        order_id = record.subject.removeprefix("order:")
        return cls(
            id=strawberry.ID(str(record.id)),
            webhook_id=record.message_id,
            event_type=record.event_type,
            endpoint_id=strawberry.ID(record.endpoint_id),
            order_id=strawberry.ID(order_global_id(order_id))
            if record.subject.startswith("order:")
            else None,
            status=WebhookDeliveryStatus(record.status.value),
            attempts=record.attempts,
            next_attempt_at=record.next_attempt_at,
            last_attempt_at=record.last_attempt_at,
            last_status_code=record.last_status_code,
            last_error=record.last_error,
            delivered_at=record.delivered_at,
            created_at=record.created_at,
            payload=orjson.dumps(record.payload).decode(),
        )


@strawberry.type
class WebhookDeliveryList:
    deliveries: list[WebhookDelivery]
    page_info: PageInfo = strawberry.field(
        description="`endCursor` goes in `after` for the next (older) page."
    )


CreateWebhookEndpointResult = Annotated[
    WebhookEndpointSecret
    | ValidationError
    | UnknownEventError
    | UrlNotAllowedError
    | ForbiddenError,
    strawberry.union("CreateWebhookEndpointResult"),
]
WebhookEndpointResult = Annotated[
    WebhookEndpoint | NotFoundError | ForbiddenError, strawberry.union("WebhookEndpointResult")
]
RotateWebhookSecretResult = Annotated[
    WebhookEndpointSecret | NotFoundError | ForbiddenError,
    strawberry.union("RotateWebhookSecretResult"),
]
WebhookEndpointsResult = Annotated[
    WebhookEndpointList | ForbiddenError, strawberry.union("WebhookEndpointsResult")
]
WebhookDeliveriesResult = Annotated[
    WebhookDeliveryList | ValidationError | ForbiddenError,
    strawberry.union("WebhookDeliveriesResult"),
]
RedeliverWebhookResult = Annotated[
    WebhookDelivery | ValidationError | NotFoundError | ForbiddenError,
    strawberry.union("RedeliverWebhookResult"),
]


def _secret(record: EndpointRecord) -> WebhookEndpointSecret:
    return WebhookEndpointSecret(endpoint=WebhookEndpoint.from_record(record), secret=record.secret)


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Registered webhook endpoints (operators).")
    async def webhook_endpoints(self, info: GInfo) -> WebhookEndpointsResult:
        records = await resolvers.endpoints(info.context)
        return WebhookEndpointList(endpoints=[WebhookEndpoint.from_record(r) for r in records])

    @strawberry.field(
        description=(
            "Webhook deliveries, newest first (operators); `after` pages on, like `orders`."
            " Delivered ones are kept for ESIM_GATEWAY_WEBHOOK_RETENTION_DAYS."
        )
    )
    async def webhook_deliveries(
        self,
        info: GInfo,
        endpoint_id: strawberry.ID | None = None,
        status: WebhookDeliveryStatus | None = None,
        order_id: strawberry.ID | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> WebhookDeliveriesResult:
        page = await resolvers.deliveries(
            info.context,
            endpoint_id=endpoint_id,
            status=DeliveryStatus(status.value) if status is not None else None,
            order_id=parse_order_id(order_id, "orderId") if order_id is not None else None,
            first=first,
            after=after,
        )
        return WebhookDeliveryList(
            deliveries=[WebhookDelivery.from_record(r) for r in page.records],
            page_info=PageInfo(
                has_next_page=page.has_next,
                end_cursor=encode_delivery_cursor(page.records[-1]) if page.records else None,
            ),
        )


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description=(
            "Register a receiver for some events (operators). Deliveries follow Standard"
            " Webhooks: verify `webhook-signature` with the returned secret."
        )
    )
    async def create_webhook_endpoint(
        self, info: GInfo, url: str, events: list[str], description: str | None = None
    ) -> CreateWebhookEndpointResult:
        return _secret(await resolvers.create_endpoint(info.context, url, events, description))

    @strawberry.mutation(description="Stop delivering to an endpoint; pending deliveries wait.")
    async def disable_webhook_endpoint(
        self, info: GInfo, id: strawberry.ID
    ) -> WebhookEndpointResult:
        return WebhookEndpoint.from_record(await resolvers.set_enabled(info.context, id, False))

    @strawberry.mutation(description="Deliver to an endpoint again, starting with what waited.")
    async def enable_webhook_endpoint(
        self, info: GInfo, id: strawberry.ID
    ) -> WebhookEndpointResult:
        return WebhookEndpoint.from_record(await resolvers.set_enabled(info.context, id, True))

    @strawberry.mutation(
        description="A new signing secret; the old one is signed with too for 24 hours."
    )
    async def rotate_webhook_secret(
        self, info: GInfo, id: strawberry.ID
    ) -> RotateWebhookSecretResult:
        return _secret(await resolvers.rotate_secret(info.context, id))

    @strawberry.mutation(
        description="Send a delivery again now (same `webhook-id`, fresh retry schedule)."
    )
    async def redeliver_webhook(
        self, info: GInfo, delivery_id: strawberry.ID
    ) -> RedeliverWebhookResult:
        return WebhookDelivery.from_record(await resolvers.redeliver(info.context, delivery_id))
