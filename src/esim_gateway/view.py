"""The GraphQL HTTP view: authentication, per-request context, fast JSON, GraphiQL."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.types.unset import UNSET, UnsetType

from esim_gateway.auth import Principal
from esim_gateway.config import Role, Settings
from esim_gateway.context import Context, Services
from esim_gateway.dataloaders.loaders import build_loaders
from esim_gateway.errors import Unauthenticated
from esim_gateway.ratelimit import Limiter, RateLimiter, RedisRateLimiter, retry_after_header

__all__ = ["ANONYMOUS", "CSRF_HEADERS", "MAX_BODY", "GatewayGraphQL"]

#: the largest GraphQL request body accepted (documents are capped by tokens anyway)
MAX_BODY = 128 * 1024
CSRF_HEADERS = ("x-graphql-csrf", "apollo-require-preflight", "graphql-preflight")


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
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


#: an unauthenticated WebSocket before `connection_init`: owns nothing, sees nothing
ANONYMOUS = Principal("", Role.CUSTOMER)

EXAMPLE_OPERATIONS: tuple[tuple[str, str], ...] = (
    (
        "List plans",
        """# Plans for Japan, cheapest first (prices in the provider's currency and USD)
query ListPlans {
  packages(filter: { country: "JP", minDays: 7 }, first: 10) {
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
)

AUTH_HINT = (
    "Sandbox mode: you are the demo customer. When API keys are configured, open the"
    ' Headers tab and send {"Authorization": "Bearer <your key>"}.'
)


class GatewayGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with our authentication and context."""

    def __init__(self, schema: BaseSchema, *, settings: Settings) -> None:
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.services is None:
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        is_ide = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if is_ide:
            if self.graphql_ide is None:
                await _error_response(404, "Not Found", "NOT_FOUND")(scope, receive, send)
            else:
                await super().__call__(scope, receive, send)
            return
        refusal = self._refuse(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        try:
            principal = self.services.authenticator.authenticate(
                request.headers.get("authorization")
            )
        except Unauthenticated as exc:
            response = _error_response(
                401, exc.message, "UNAUTHENTICATED", {"www-authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        client = request.client.host if request.client else "unknown"
        wait = max(
            await self.limiter.take(f"principal:{principal.id}"),
            await self.limiter.take(f"ip:{client}"),
        )
        if wait:
            response = _error_response(
                429,
                "Too many requests; retry later.",
                "RATE_LIMITED",
                {"retry-after": retry_after_header(wait)},
            )
            await response(scope, receive, send)
            return
        try:
            body = await _read_limited(receive, MAX_BODY)
        except _BodyTooLarge:
            await _error_response(413, "The request body is too large.", "BODY_TOO_LARGE")(
                scope, receive, send
            )
            return
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
            response = _error_response(
                504,
                f"The request did not finish within {self.deadline:g} s.",
                "DEADLINE_EXCEEDED",
            )
        except HTTPException as exc:
            response = _error_response(exc.status_code, exc.reason, "BAD_REQUEST")
        await response(scope, receive, send)

    def _refuse(self, request: Request) -> Response | None:
        """CSRF rules: POST must be JSON; a GET (a "simple" request a browser may send
        cross-site) must carry a header only a script can set."""
        if request.method == "POST":
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type != "application/json":
                return _error_response(
                    415, "POST /graphql takes application/json only.", "UNSUPPORTED_MEDIA_TYPE"
                )
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BODY:
                return _error_response(413, "The request body is too large.", "BODY_TOO_LARGE")
        elif request.method == "GET" and not any(h in request.headers for h in CSRF_HEADERS):
            return _error_response(
                400,
                "GET queries need an `x-graphql-csrf` (or `apollo-require-preflight`) header.",
                "CSRF_HEADER_REQUIRED",
            )
        return None

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
