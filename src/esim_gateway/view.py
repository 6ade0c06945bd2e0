"""The GraphQL HTTP view: authentication, per-request context, fast JSON, GraphiQL.

It answers as the GraphQL-over-HTTP spec says (`esim_gateway.graphql_http`), runs persisted
operations (`esim_gateway.persisted`) and batches of operations when enabled, and marks
public catalog reads cacheable (`esim_gateway.httpcache`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from esim_gateway.auth import Principal
from esim_gateway.config import Role, Settings
from esim_gateway.context import Context, Services
from esim_gateway.dataloaders.loaders import build_loaders
from esim_gateway.errors import Unauthenticated
from esim_gateway.graphql_http import (
    GRAPHQL_RESPONSE_JSON,
    JSON,
    PROTOCOL_REPLIES,
    Operation,
    RequestRefused,
    is_page_load,
    is_request_error,
    negotiate,
    parse_operation,
    parsed_document,
)
from esim_gateway.httpcache import (
    NO_STORE,
    BadIfNoneMatch,
    entity_tag,
    is_public_query,
    matches,
    parse_if_none_match,
    public_cache_control,
)
from esim_gateway.persisted import PersistedDocuments, PersistedRefusal
from esim_gateway.ratelimit import Limiter, RateLimiter, RedisRateLimiter, retry_after_header
from esim_gateway.schema.limits import document_cost

__all__ = ["ANONYMOUS", "CSRF_HEADERS", "MAX_BODY", "GatewayGraphQL"]

#: the largest GraphQL request body accepted (documents are capped by tokens anyway)
MAX_BODY = 128 * 1024
CSRF_HEADERS = ("x-graphql-csrf", "apollo-require-preflight", "graphql-preflight")


_MEDIA = "graphql_media"  # request state: the negotiated response media type
_PUBLIC = "graphql_public"  # request state: the answer may go to shared caches


class _BodyTooLarge(Exception):
    pass


async def _read_limited(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if len(body) > limit:
            raise _BodyTooLarge
        if not message.get("more_body", False):
            break
    return bytes(body)


def _error_response(
    status: int,
    message: str,
    code: str,
    headers: dict[str, str] | None = None,
    media_type: str = JSON,
) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)


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


class GatewayGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with our authentication and context."""

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
        self.settings = settings
        self.services: Services | None = None
        #: no request runs longer; a purchase still in flight goes on in the background
        self.deadline = settings.order_deadline + 5.0
        self.limiter: Limiter = (
            RedisRateLimiter(
                settings.rate_limit_redis_url,
                settings.rate_limit_per_second,
                settings.rate_limit_burst,
            )
            if settings.rate_limit_redis_url
            else RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        )
        self.documents = documents
        if settings.only_trusted_documents and documents is not None:
            # the legacy graphql-ws protocol would be a way around the rule: not offered
            self.protocols = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
            self.graphql_transport_ws_handler_class = _TrustedOnlyTransportWS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.services is None:
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        is_ide = is_page_load(request.method, request.headers, request.query_params)
        if is_ide:
            if self.graphql_ide is None:
                await _error_response(404, "Not Found", "NOT_FOUND")(scope, receive, send)
            else:
                await super().__call__(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        media = state[_MEDIA] = negotiate(request.headers.get("accept", ""))
        response = await self._respond(request, receive, media)
        response.headers.setdefault("cache-control", NO_STORE)
        response.headers.setdefault("vary", "Accept")
        await response(scope, receive, send)

    async def _respond(self, request: Request, receive: Receive, media: str) -> Response:
        assert self.services is not None
        scope = request.scope
        refusal = self._refuse(request)
        if refusal is not None:
            return refusal
        try:
            principal = self.services.authenticator.authenticate(
                request.headers.get("authorization")
            )
        except Unauthenticated as exc:
            return _error_response(
                401, exc.message, "UNAUTHENTICATED", {"www-authenticate": "Bearer"}, media
            )
        scope["state"]["principal"] = principal
        wait = await self._take(request, principal)
        if wait:
            return self._rate_limited(wait, media)
        try:
            if_none_match = request.headers.get("if-none-match")
            tags = parse_if_none_match(if_none_match) if if_none_match is not None else []
        except BadIfNoneMatch as exc:
            return _error_response(400, str(exc), "BAD_IF_NONE_MATCH", media_type=media)
        try:
            body = await _read_limited(receive, MAX_BODY)
        except _BodyTooLarge:
            return _error_response(
                413, "The request body is too large.", "BODY_TOO_LARGE", media_type=media
            )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            async with asyncio.timeout(self.deadline):
                response = await self.run(Request(scope, replay))
        except TimeoutError:
            return _error_response(
                504,
                f"The request did not finish within {self.deadline:g} s.",
                "DEADLINE_EXCEEDED",
                media_type=media,
            )
        except RequestRefused as exc:
            return _error_response(exc.status_code, exc.reason, exc.code, exc.headers, media)
        except HTTPException as exc:
            return _error_response(exc.status_code, exc.reason, "BAD_REQUEST", media_type=media)
        if scope["state"].get(_PUBLIC) and response.status_code == 200:
            return self._cacheable(response, media, tags)
        return response

    async def _take(self, request: Request, principal: Principal, tokens: int = 1) -> float:
        """Rate limits per principal and per client IP; a batch takes a token per operation."""
        client = request.client.host if request.client else "unknown"
        wait = 0.0
        for _ in range(tokens):
            wait = max(
                wait,
                await self.limiter.take(f"principal:{principal.id}"),
                await self.limiter.take(f"ip:{client}"),
            )
        return wait

    @staticmethod
    def _rate_limited(wait: float, media: str) -> Response:
        return _error_response(
            429,
            "Too many requests; retry later.",
            "RATE_LIMITED",
            {"retry-after": retry_after_header(wait)},
            media,
        )

    def _cacheable(self, response: Response, media: str, tags: list[str] | None) -> Response:
        """A public catalog answer: cacheable for what is left of the snapshot's life,
        under a strong ETag, revalidated with If-None-Match."""
        etag = entity_tag(media.encode() + bytes(response.body))
        headers = {
            "cache-control": public_cache_control(self._catalog_life_left()),
            "etag": etag,
            "vary": "Accept",
        }
        if tags != [] and matches(tags, etag):
            return Response(status_code=304, headers=headers)
        response.headers.update(headers)
        return response

    def _catalog_life_left(self) -> float:
        assert self.services is not None
        catalog = self.services.catalog
        now = time.time()
        lives = [
            catalog.ttl - snapshot.age(now)
            for provider in self.services.providers.enabled()
            if (snapshot := catalog.snapshot(provider)) is not None
        ]
        return max(0.0, min(lives, default=0.0))

    def _refuse(self, request: Request) -> Response | None:
        """CSRF rules: POST must be JSON; a GET (a "simple" request a browser may send
        cross-site) must carry a header only a script can set."""
        media = request.scope["state"][_MEDIA]
        if request.method == "POST":
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type != "application/json":
                return _error_response(
                    415,
                    "POST /graphql takes application/json only.",
                    "UNSUPPORTED_MEDIA_TYPE",
                    media_type=media,
                )
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BODY:
                return _error_response(
                    413, "The request body is too large.", "BODY_TOO_LARGE", media_type=media
                )
        elif request.method == "GET" and not any(h in request.headers for h in CSRF_HEADERS):
            return _error_response(
                400,
                "GET queries need an `x-graphql-csrf` (or `apollo-require-preflight`) header.",
                "CSRF_HEADER_REQUIRED",
                media_type=media,
            )
        return None

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return is_page_load(request.method, request.headers, request.query_params)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        # POST is JSON (refused otherwise, before this); GET carries the same fields as
        # query parameters, `variables` and `extensions` JSON-encoded
        data: object
        if request.method == "GET":
            data = self.parse_query_params(request.query_params)
        else:
            data = self.parse_json(await request.get_body())
        if not isinstance(data, list):
            return parse_operation(data)
        settings = self.settings
        if not settings.batching:
            raise RequestRefused(400, "Batching is not enabled", "BAD_REQUEST")
        if not data or len(data) > settings.batch_max_operations:
            raise RequestRefused(
                400,
                f"A batch holds 1 to {settings.batch_max_operations} operations; this one"
                f" has {len(data)}.",
                "BATCH_TOO_LARGE",
            )
        return [parse_operation(item) for item in data]

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult]:
        exempt = self.settings.trusted_documents_exempt_operators and context.principal.is_operator
        if not isinstance(request_data, list):
            await self._resolve(request_data, exempt=exempt, media=request.scope["state"][_MEDIA])
            if request_adapter.method == "GET" and request_data.query is not None:
                document = parsed_document(request_data.query)
                request.scope["state"][_PUBLIC] = document is not None and is_public_query(
                    document, request_data.operation_name, request_data.variables
                )
            return await self.execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        for operation in request_data:
            await self._resolve(operation, exempt=exempt, media=None)
        await self._check_batch(request, context, request_data)
        return list(
            await asyncio.gather(
                *(
                    self.execute_single(
                        request, request_adapter, sub_response, context, root_value, operation
                    )
                    for operation in request_data
                )
            )
        )

    async def _resolve(
        self, operation: GraphQLRequestData, *, exempt: bool, media: str | None
    ) -> None:
        """Put the persisted document's text in `operation.query` (or refuse it: the whole
        request when it is alone, answered in `media`; else its slot in the batch)."""
        if self.documents is None:
            return
        document_id = operation.document_id if isinstance(operation, Operation) else None
        try:
            operation.query = await self.documents.resolve(
                operation.query, document_id, operation.extensions, exempt=exempt
            )
        except PersistedRefusal as refusal:
            if media is not None:
                # application/json: "not found" is an answer to retry with the text (as
                # Apollo Server gives it), not a broken request
                status = 200 if media == JSON and refusal.code in PROTOCOL_REPLIES else 400
                raise RequestRefused(status, refusal.message, refusal.code) from None
            assert isinstance(operation, Operation)
            operation.refusal = refusal

    async def _check_batch(
        self, request: Request, context: Context, operations: list[GraphQLRequestData]
    ) -> None:
        """The limits hold for the batch as a whole: its operations' costs add up against
        the cost limit, and each takes a rate-limit token (the request took the first)."""
        from esim_gateway.schema import Limits

        limit = Limits().max_cost
        graphql_schema = self.schema._schema  # type: ignore[attr-defined]  # graphql-core's
        total = 0
        for operation in operations:
            document = parsed_document(operation.query) if operation.query is not None else None
            if document is not None:
                total += document_cost(graphql_schema, document, operation.variables)
        if total > limit:
            raise RequestRefused(
                400,
                f"The batch is too expensive: cost {total} exceeds the limit of {limit}."
                " Send fewer operations or ask for fewer objects.",
                "BATCH_TOO_EXPENSIVE",
            )
        wait = await self._take(request, context.principal, len(operations) - 1)
        if wait:
            raise RequestRefused(
                429,
                "Too many requests; retry later.",
                "RATE_LIMITED",
                {"retry-after": retry_after_header(wait)},
            )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        refusal = request_data.refusal if isinstance(request_data, Operation) else None
        if refusal is not None:
            error = GraphQLError(refusal.message, extensions={"code": refusal.code})
            return ExecutionResult(data=None, errors=[error])
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as exc:
            if request_adapter.method == "GET" and "not allowed when using GET" in exc.reason:
                # the spec's answer to a mutation over GET: 405, and where to send it instead
                raise RequestRefused(
                    405, exc.reason + "; use POST.", "METHOD_NOT_ALLOWED", {"allow": "POST"}
                ) from None
            raise

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = request.scope.get("state", {}).get(_MEDIA, JSON)
        return sub_response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        body = process_result(result)
        if result.errors:
            request.scope["state"][_PUBLIC] = False  # an answer with errors is nobody's to keep
        if request.scope["state"].get(_MEDIA) == GRAPHQL_RESPONSE_JSON and is_request_error(result):
            body.pop("data", None)
        return body

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        media = sub_response.media_type or JSON
        response.headers["content-type"] = media
        if (
            media == GRAPHQL_RESPONSE_JSON
            and isinstance(response_data, dict)
            and "data" not in response_data
            and not sub_response.status_code
        ):
            response.status_code = 400
        return response

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        services = self.services
        if services is None:
            raise RuntimeError("the app's lifespan has not started")
        principal: Principal | None = request.scope.get("state", {}).get("principal")
        if principal is None:
            try:
                principal = services.authenticator.authenticate(
                    request.headers.get("authorization")
                )
            except Unauthenticated:
                # a WebSocket may still authenticate in its connection_init payload
                principal = ANONYMOUS
        return Context(
            services=services,
            principal=principal,
            loaders=build_loaders(services.providers, services.ledger, self._observe_batch),
            request=request,
            response=response if isinstance(response, Response) else None,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws: `{"Authorization": "Bearer ..."}` in connection_init."""
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        if header is not None:
            try:
                context.principal = context.services.authenticator.authenticate(str(header))
            except Unauthenticated:
                raise ConnectionRejectionError() from None
        elif context.principal is ANONYMOUS:
            raise ConnectionRejectionError()
        unset: UnsetType = UNSET
        return unset

    def _observe_batch(self, loader: str, size: int) -> None:
        metrics = self.services.extras.get("metrics") if self.services else None
        if metrics is not None:
            metrics.loader_batch.labels(loader).observe(size)

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
        from esim_gateway.graphiql import graphiql_assets_dir, graphiql_csp, graphiql_html

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
