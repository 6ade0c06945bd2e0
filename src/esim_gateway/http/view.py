"""The gateway's GraphQL view: Strawberry's ASGI view, with our authentication and context.

HTTP requests (GET and POST) are answered by `esim_gateway.http.endpoint` in one
straight path; this view keeps what is Strawberry's: WebSocket subscriptions
(graphql-transport-ws, trusted documents only when so configured) and the GraphiQL page.
"""

from __future__ import annotations

from typing import Any

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types.unset import UNSET, UnsetType

from esim_gateway.config import Role, Settings
from esim_gateway.context import Context, Services
from esim_gateway.errors import Unauthenticated
from esim_gateway.http.auth import Principal
from esim_gateway.http.endpoint import CSRF_HEADERS, MAX_BODY, GraphQLEndpoint
from esim_gateway.http.persisted import PersistedDocuments, PersistedRefusal
from esim_gateway.ops.forwarded import client_address
from esim_gateway.ops.ratelimit import (
    FailedAuthentications,
    Limiter,
    RateLimiter,
    RedisRateLimiter,
    TooManyFailures,
    limiter_for,
)

__all__ = ["ANONYMOUS", "CSRF_HEADERS", "MAX_BODY", "GatewayGraphQL"]


#: an unauthenticated WebSocket before `connection_init`: owns nothing, sees nothing
ANONYMOUS = Principal("", Role.CUSTOMER)

EXAMPLE_OPERATIONS: tuple[tuple[str, str], ...] = (
    (
        "List plans",
        """# Roamify's plans for Japan, cheapest first (prices in its currency and USD).
# Drop `provider` to see both providers' plans.
query ListPlans {
  packages(filter: { provider: ROAMIFY, country: "JP", minDays: 7 }, first: 10) {
    totalCount
    edges { cursor node { id provider packageId name days dataMb unlimited
      price { amount currency } priceUsd { amount currency } } }
    pageInfo { hasNextPage endCursor }
  }
}""",
    ),
    (
        "Buy an eSIM",
        """# Paste a packageId from "List plans". Repeat the same idempotencyKey to retry safely.
mutation BuyEsim {
  createOrder(input: {
    provider: ROAMIFY
    items: [{ packageId: "PASTE-A-PACKAGE-ID", quantity: 1 }]
    idempotencyKey: "my-first-order"
  }) {
    __typename
    ... on Order { id status providerStatus total { amount currency }
      esims { iccid lpa qrCodeSvg iosInstallUrl androidInstallUrl } }
    ... on Error { message }
    ... on ProviderError { provider errorCode statusCode retryable }
    ... on ValidationError { field }
  }
}""",
    ),
    (
        "Quote first",
        """# A firm price before buying: nothing is spent. Pass the quoteId to createOrder
# (add `quoteId: "..."` to its input) to buy at exactly this price, or be told it moved.
mutation QuoteOrder {
  quoteOrder(input: {
    provider: ROAMIFY
    items: [{ packageId: "PASTE-A-PACKAGE-ID", quantity: 2 }]
  }) {
    __typename
    ... on OrderQuote { quoteId expiresAt canFulfil problems balanceSufficient
      total { amount currency } totalUsd { amount currency } retailTotal { amount currency }
      lines { packageId listed unitPrice { amount currency } capabilities { topup cancel usage } } }
    ... on Error { message }
    ... on ValidationError { field }
  }
}""",
    ),
    (
        "Schedule an order",
        """# Recorded now as SCHEDULED, placed by the gateway at scheduledAt (set it a minute
# ahead, with its UTC offset). cancelOrder withdraws it for free until then.
mutation ScheduleOrder {
  createOrder(input: {
    provider: ROAMIFY
    items: [{ packageId: "PASTE-A-PACKAGE-ID", quantity: 1 }]
    scheduledAt: "2030-01-01T09:00:00Z"
  }) {
    __typename
    ... on Order { id status scheduledAt }
    ... on Error { message }
    ... on ValidationError { field }
  }
}""",
    ),
    (
        "Follow the order",
        """# Paste the order id returned by createOrder
query FollowOrder {
  order(id: "PASTE-THE-ORDER-ID") {
    __typename
    ... on Order { status providerStatus updatedAt
      statusHistory { at status note }
      esims { iccid status lpa qrCodeUrl } }
    ... on Error { message }
  }
}""",
    ),
    (
        "Install link",
        """# Paste an iccid from the order: one link for the traveller (open it on a phone)
mutation ShareInstallLink {
  createInstallLink(iccid: "PASTE-AN-ICCID", expiresIn: 604800) {
    __typename
    ... on InstallLink { id url expiresAt }
    ... on RateLimitedError { retryAfterSeconds }
    ... on Error { message }
  }
}""",
    ),
    (
        "My orders",
        """query MyOrders {
  orders(first: 20) { edges { node { id provider status createdAt total { amount currency } } } }
}""",
    ),
    (
        "Scheduled orders",
        """query ScheduledOrders {
  orders(filter: { status: SCHEDULED }) { edges { node { id status scheduledAt } } }
}""",
    ),
)

AUTH_HINT = (
    "Sandbox mode: you are the demo customer. When API keys are configured, open the"
    ' Headers tab and send {"Authorization": "Bearer <your key>"}.'
)


class _TrustedOnlyTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws where only trusted documents run: the same rule as over HTTP."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        view = self.view
        assert isinstance(view, GatewayGraphQL) and view.documents is not None
        payload = message["payload"]
        principal = self.context.principal
        try:
            text = await view.documents.resolve(
                payload.get("query"),
                None,
                payload.get("extensions"),
                exempt=view.settings.trusted_documents_exempt_operators and principal.is_operator,
            )
        except PersistedRefusal as refusal:
            error = GraphQLError(refusal.message, extensions={"code": refusal.code})
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        if text is not None:
            payload["query"] = text
        await super().handle_subscribe(message)


#: Strawberry's HTTP hooks that `GraphQLEndpoint` never calls: an override would change
#: nothing over HTTP (and, for the shared ones, only WebSockets)
_HTTP_HOOKS = (
    "run",
    "execute_operation",
    "parse_http_body",
    "get_root_value",
    "get_sub_response",
    "process_result",
    "create_response",
)


def _unserved_over_http(view: GraphQL[Any, Any], schema: BaseSchema) -> list[str]:
    """What this view was given that the HTTP endpoint does not implement: the endpoint
    bypasses Strawberry's view, so each would silently do nothing for HTTP requests."""
    unserved = [
        f"an override of {name}"
        for name in _HTTP_HOOKS
        if getattr(type(view), name) is not getattr(GraphQL, name)
    ]
    if not view.allow_queries_via_get:
        unserved.append("allow_queries_via_get=False")
    if view.multipart_uploads_enabled:
        unserved.append("multipart uploads")
    if schema.config.batching_config is not None:
        unserved.append("the schema's batching_config (the endpoint batches by its settings)")
    return unserved


class GatewayGraphQL(GraphQL[Context, None]):
    """The gateway's GraphQL view: HTTP requests go to `GraphQLEndpoint` (one straight
    path, see `esim_gateway.http.endpoint`); WebSocket subscriptions and the GraphiQL
    page are Strawberry's, with our authentication and context."""

    def __init__(
        self,
        schema: BaseSchema,
        *,
        settings: Settings,
        documents: PersistedDocuments | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=True,
            multipart_uploads_enabled=False,
        )
        unserved = _unserved_over_http(self, schema)
        if unserved:
            raise TypeError(
                "GraphQLEndpoint serves HTTP itself and would ignore "
                + ", ".join(unserved)
                + ": teach it (esim_gateway.http.endpoint) first"
            )
        self.settings = settings
        self.limiter: Limiter = (
            RedisRateLimiter(
                settings.rate_limit_redis_url,
                settings.rate_limit_per_second,
                settings.rate_limit_burst,
            )
            if settings.rate_limit_redis_url
            else RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        )
        per_minute = settings.auth_failures_per_minute
        #: failed authentications per client address, over HTTP and WebSocket alike
        self.auth_failures = FailedAuthentications(
            limiter_for(
                settings.rate_limit_redis_url, per_minute / 60.0, per_minute, "auth-failures"
            )
        )
        self.documents = documents
        self.http = GraphQLEndpoint(
            schema,
            settings=settings,
            documents=documents,
            limiter=self.limiter,
            failures=self.auth_failures,
            graphiql=self.render_graphql_ide if settings.graphiql_enabled else None,
        )
        if settings.only_trusted_documents and documents is not None:
            # the legacy graphql-ws protocol would be a way around the rule: not offered
            self.protocols = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
            self.graphql_transport_ws_handler_class = _TrustedOnlyTransportWS

    @property
    def services(self) -> Services | None:
        """The app's services, set by its lifespan (None before it starts)."""
        return self.http.services

    @services.setter
    def services(self, services: Services | None) -> None:
        self.http.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        status, headers, body = await self.http.answer(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        # a WebSocket: it may still authenticate in its connection_init payload
        services = self.services
        if services is None:
            raise RuntimeError("the app's lifespan has not started")
        try:
            principal = await self.http.authenticate(
                request.headers.get("authorization"), client_address(request.scope)
            )
        except (Unauthenticated, TooManyFailures):
            principal = ANONYMOUS
        return self.http.context(principal, request)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws: `{"Authorization": "Bearer ..."}` in connection_init."""
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        if header is not None:
            try:
                scope = context.request.scope if context.request is not None else {}
                context.principal = await self.http.authenticate(str(header), client_address(scope))
            except (Unauthenticated, TooManyFailures):
                raise ConnectionRejectionError() from None
        elif context.principal is ANONYMOUS:
            raise ConnectionRejectionError()
        unset: UnsetType = UNSET
        return unset

    def decode_json(self, data: str | bytes) -> object:
        # orjson's errors are json.JSONDecodeError too, so a body that is not JSON is
        # Strawberry's 400; so is JSON that is not a request (Strawberry would crash)
        decoded = orjson.loads(data)
        if not isinstance(decoded, dict | list):
            raise HTTPException(400, "A GraphQL request (and its variables) must be a JSON object.")
        return decoded

    def encode_json(self, data: object) -> str:
        # str, not bytes: WebSocket frames must be text for graphql-transport-ws clients
        return orjson.dumps(data).decode()

    async def render_graphql_ide(self, request: Request) -> Response:
        from esim_gateway.http.graphiql import graphiql_assets_dir, graphiql_csp, graphiql_html

        assets_url = "/graphiql-assets" if graphiql_assets_dir() is not None else None
        return HTMLResponse(
            graphiql_html(
                endpoint=request.url.path,
                assets_url=assets_url,
                example_operations=EXAMPLE_OPERATIONS,
                auth_hint=AUTH_HINT,
            ),
            headers={"content-security-policy": graphiql_csp(assets_url=assets_url)},
        )
