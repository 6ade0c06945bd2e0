"""GraphQL over HTTP (GET and POST), served straight from ASGI messages to ASGI messages.

Strawberry's view wrapped every request in a Starlette Request, a cross_web adapter, a
sub-response and a Starlette Response, and ran a dozen overridable hooks around
`schema.execute` (issue 12: ~300-600 us per request between the socket and the schema).
This endpoint does the same work once, in order, and answers an `Answer` (status, headers,
body) that its caller sends as two ASGI messages. WebSocket subscriptions and the GraphiQL
page stay on Strawberry's view (`esim_gateway.http.view`).

What a request goes through, and its answer when refused (in the negotiated media type,
`private, no-store`, `Vary: Accept`):

1. CSRF rules: a POST is `application/json` (415) with a declared length under `MAX_BODY`
   (413); a GET carries a header only a script can set (400).
2. Authentication (401; 429 for a client address past its budget of failed
   authentications), rate limits per principal and per client IP (429), the
   If-None-Match header's syntax (400), the body's size as read (413).
3. Within the request deadline (504): GET or POST only (405), the JSON (400), batching
   rules, persisted documents, execution with the operation types the method allows (a
   mutation over GET is a 405 naming POST), the GraphQL-over-HTTP status codes, and HTTP
   caching of public catalog reads (`esim_gateway.http.caching`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from esim_gateway.config import Settings
from esim_gateway.context import Context
from esim_gateway.dataloaders.loaders import build_loaders
from esim_gateway.errors import Unauthenticated
from esim_gateway.http.auth import Principal
from esim_gateway.http.caching import (
    NO_STORE,
    BadIfNoneMatch,
    entity_tag,
    is_public_query,
    matches,
    parse_if_none_match,
    public_cache_control,
)
from esim_gateway.http.persisted import PersistedDocuments, PersistedRefusal
from esim_gateway.http.protocol import (
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
from esim_gateway.http.replay import replay_body
from esim_gateway.ops.forwarded import client_address
from esim_gateway.ops.ratelimit import (
    FailedAuthentications,
    Limiter,
    TooManyFailures,
    retry_after_header,
)
from esim_gateway.schema.errors import ErrorCode
from esim_gateway.schema.limits import document_cost

if TYPE_CHECKING:
    from esim_gateway.context import Services

__all__ = ["CSRF_HEADERS", "MAX_BODY", "SERVER_ERROR", "Answer", "GraphQLEndpoint"]

#: the largest GraphQL request body accepted (documents are capped by tokens anyway)
MAX_BODY = 128 * 1024
CSRF_HEADERS = ("x-graphql-csrf", "apollo-require-preflight", "graphql-preflight")
_CSRF = tuple(name.encode() for name in CSRF_HEADERS)

#: the operation types each method may run: a GET never changes anything
_ALLOWED = {
    "GET": frozenset(OperationType.from_http("GET")),
    "POST": frozenset(OperationType.from_http("POST")),
}
_MEDIA_BYTES = {JSON: JSON.encode(), GRAPHQL_RESPONSE_JSON: GRAPHQL_RESPONSE_JSON.encode()}
_PRIVATE = ((b"cache-control", NO_STORE.encode()), (b"vary", b"Accept"))
_PAGE_PARAMS = ("query", "extensions", "documentId")

Headers = list[tuple[bytes, bytes]]


class Answer(NamedTuple):
    """A whole HTTP answer: sent as `http.response.start` and one `http.response.body`."""

    status: int
    headers: Headers
    body: bytes


def _json_answer(
    status: int, body: bytes, media: str, extra: Sequence[tuple[bytes, bytes]] = _PRIVATE
) -> Answer:
    return Answer(
        status,
        [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", _MEDIA_BYTES[media]),
            *extra,
        ],
        body,
    )


def _error(
    status: int,
    message: str,
    code: ErrorCode,
    media: str,
    headers: Mapping[str, str] | None = None,
    *,
    private: bool = True,
) -> Answer:
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    answer = _json_answer(status, body, media, _PRIVATE if private else ())
    if headers:
        # the refusal's own headers (Allow, Retry-After, WWW-Authenticate) come first
        answer.headers[:0] = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
    return answer


#: the answer to an exception the endpoint did not expect (sent by the request accounting,
#: which raises it on for the server to log): coded like every other error
SERVER_ERROR = _error(500, "Internal Server Error", ErrorCode.INTERNAL_SERVER_ERROR, JSON)


def _response_answer(response: Response) -> Answer:
    return Answer(response.status_code, list(response.raw_headers), bytes(response.body))


@functools.lru_cache(maxsize=256)
def _media_for(accept: bytes) -> str:
    # clients send the same few Accept headers over and over
    return negotiate(accept.decode("latin-1"))


class _BodyTooLarge(Exception):
    pass


async def _read_limited(receive: Receive, limit: int) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if len(body) > limit:
            raise _BodyTooLarge
        if not message.get("more_body", False):
            break
    return body


class GraphQLEndpoint:
    """GraphQL over HTTP for the gateway: `await endpoint.answer(scope, receive)`."""

    def __init__(
        self,
        schema: BaseSchema,
        *,
        settings: Settings,
        documents: PersistedDocuments | None,
        limiter: Limiter,
        failures: FailedAuthentications,
        graphiql: Callable[[Request], Awaitable[Response]] | None,
    ) -> None:
        self.schema = schema
        self.settings = settings
        self.documents = documents
        self.limiter = limiter
        self.failures = failures
        self.graphiql = graphiql
        #: set by the app's lifespan; None before it starts
        self.services: Services | None = None
        #: no request runs longer; a purchase still in flight goes on in the background
        self.deadline = settings.order_deadline + 5.0

    def context(self, principal: Principal, request: Request | Any) -> Context:
        """A request's context: its principal and loaders of its own."""
        services = self.services
        if services is None:
            raise RuntimeError("the app's lifespan has not started")
        return Context(
            services=services,
            principal=principal,
            loaders=build_loaders(services.providers, services.ledger, self._observe_batch),
            request=request,
        )

    async def authenticate(self, authorization: str | None, client: str) -> Principal:
        """The caller's principal. A wrong credential counts against the client address'
        budget of failures; past it, `TooManyFailures`, whatever the credential."""
        assert self.services is not None
        refused = self.failures.refused(client)
        if refused:
            raise TooManyFailures(refused)
        try:
            return self.services.authenticator.authenticate(authorization)
        except Unauthenticated:
            if authorization is not None:  # a credential, and a wrong one
                wait = await self.failures.failed(client)
                if wait:
                    raise TooManyFailures(wait) from None
            raise

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        if self.services is None:
            raise RuntimeError("the app's lifespan has not started")
        # the first of a repeated header, as Starlette's Headers.get answers
        headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
        method: str = scope["method"]
        params: dict[str, str] = {}
        if method == "GET":
            params = dict(
                parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            )
            accept = headers.get(b"accept", b"").decode("latin-1")
            if is_page_load(method, {"accept": accept}, params):
                if self.graphiql is None:
                    return _error(404, "Not Found", ErrorCode.NOT_FOUND, JSON, private=False)
                return _response_answer(await self.graphiql(Request(scope)))
        media = _media_for(headers.get(b"accept", b""))
        return await self._answer(scope, receive, method, headers, params, media)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        method: str,
        headers: dict[bytes, bytes],
        params: dict[str, str],
        media: str,
    ) -> Answer:
        refusal = self._refuse(method, headers, media)
        if refusal is not None:
            return refusal
        authorization = headers.get(b"authorization")
        client = client_address(scope)
        try:
            principal = await self.authenticate(
                None if authorization is None else authorization.decode("latin-1"), client
            )
        except Unauthenticated as exc:
            return _error(
                401, exc.message, ErrorCode.UNAUTHENTICATED, media, {"www-authenticate": "Bearer"}
            )
        except TooManyFailures as exc:
            return self._rate_limited(exc.retry_after, media)
        wait = await self._take(principal, client)
        if wait:
            return self._rate_limited(wait, media)
        if_none_match = headers.get(b"if-none-match")
        try:
            tags = (
                parse_if_none_match(if_none_match.decode("latin-1"))
                if if_none_match is not None
                else []
            )
        except BadIfNoneMatch as exc:
            return _error(400, str(exc), ErrorCode.BAD_IF_NONE_MATCH, media)
        try:
            body = await _read_limited(receive, MAX_BODY)
        except _BodyTooLarge:
            return _error(413, "The request body is too large.", ErrorCode.BODY_TOO_LARGE, media)
        try:
            async with asyncio.timeout(self.deadline):
                return await self._run(scope, method, params, body, principal, client, media, tags)
        except TimeoutError:
            return _error(
                504,
                f"The request did not finish within {self.deadline:g} s.",
                ErrorCode.DEADLINE_EXCEEDED,
                media,
            )
        except RequestRefused as exc:
            return _error(exc.status_code, exc.reason, exc.code, media, exc.headers)
        except HTTPException as exc:
            return _error(exc.status_code, exc.reason, ErrorCode.BAD_REQUEST, media)

    def _refuse(self, method: str, headers: dict[bytes, bytes], media: str) -> Answer | None:
        """CSRF rules: POST must be JSON; a GET (a "simple" request a browser may send
        cross-site) must carry a header only a script can set."""
        if method == "POST":
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            if content_type.split(";")[0].strip() != JSON:
                return _error(
                    415,
                    "POST /graphql takes application/json only.",
                    ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                    media,
                )
            declared = headers.get(b"content-length", b"")
            if declared.isdigit() and int(declared) > MAX_BODY:
                return _error(
                    413, "The request body is too large.", ErrorCode.BODY_TOO_LARGE, media
                )
        elif method == "GET" and not any(name in headers for name in _CSRF):
            return _error(
                400,
                "GET queries need an `x-graphql-csrf` (or `apollo-require-preflight`) header.",
                ErrorCode.CSRF_HEADER_REQUIRED,
                media,
            )
        return None

    async def _take(self, principal: Principal, client: str, tokens: int = 1) -> float:
        """Rate limits per principal and per client IP; a batch takes a token per operation."""
        wait = 0.0
        for _ in range(tokens):
            wait = max(
                wait,
                await self.limiter.take(f"principal:{principal.id}"),
                await self.limiter.take(f"ip:{client}"),
            )
        return wait

    @staticmethod
    def _rate_limited(wait: float, media: str) -> Answer:
        return _error(
            429,
            "Too many requests; retry later.",
            ErrorCode.RATE_LIMITED,
            media,
            {"retry-after": retry_after_header(wait)},
        )

    async def _run(
        self,
        scope: Scope,
        method: str,
        params: dict[str, str],
        body: bytes,
        principal: Principal,
        client: str,
        media: str,
        tags: list[str] | None,
    ) -> Answer:
        if method not in _ALLOWED:
            raise HTTPException(405, "GraphQL only supports GET and POST requests.")
        data = self._request_data(method, params, body)
        exempt = self.settings.trusted_documents_exempt_operators and principal.is_operator
        context = self.context(principal, _request(scope, body))
        if isinstance(data, list):
            return await self._run_batch(method, data, context, client, media, exempt)
        operation = parse_operation(data)
        await self._resolve(operation, exempt=exempt, media=media)
        public = False
        if method == "GET" and operation.query is not None:
            document = parsed_document(operation.query)
            public = document is not None and is_public_query(
                document, operation.operation_name, operation.variables
            )
        result = await self._execute(method, operation, context)
        response = self._shape(result, media)
        encoded = orjson.dumps(response)
        # the spec's answer to a request that never executed: a 400 (application/json
        # keeps its 200 with errors)
        status = 400 if media == GRAPHQL_RESPONSE_JSON and "data" not in response else 200
        if public and not result.errors and status == 200:
            return self._cacheable(encoded, media, tags)
        return _json_answer(status, encoded, media)

    def _request_data(self, method: str, params: dict[str, str], body: bytes) -> object:
        """The request's JSON: the body of a POST; a GET's query parameters, `variables`
        and `extensions` JSON-encoded."""
        if method == "GET":
            data: dict[str, object] = dict(params)
            for name in ("variables", "extensions"):
                if data.get(name):
                    data[name] = _decode_json(params[name])
            return data
        return _decode_json(body)

    async def _run_batch(
        self,
        method: str,
        data: list[object],
        context: Context,
        client: str,
        media: str,
        exempt: bool,
    ) -> Answer:
        settings = self.settings
        if not settings.batching:
            raise RequestRefused(400, "Batching is not enabled", ErrorCode.BAD_REQUEST)
        if not data or len(data) > settings.batch_max_operations:
            raise RequestRefused(
                400,
                f"A batch holds 1 to {settings.batch_max_operations} operations; this one"
                f" has {len(data)}.",
                ErrorCode.BATCH_TOO_LARGE,
            )
        operations = [parse_operation(item) for item in data]
        for operation in operations:
            await self._resolve(operation, exempt=exempt, media=None)
        await self._check_batch(context.principal, client, operations)
        results = await asyncio.gather(
            *(self._execute(method, operation, context) for operation in operations)
        )
        encoded = orjson.dumps([self._shape(result, media) for result in results])
        return _json_answer(200, encoded, media)

    async def _resolve(self, operation: Operation, *, exempt: bool, media: str | None) -> None:
        """Put the persisted document's text in `operation.query` (or refuse it: the whole
        request when it is alone, answered in `media`; else its slot in the batch)."""
        if self.documents is None:
            return
        try:
            operation.query = await self.documents.resolve(
                operation.query, operation.document_id, operation.extensions, exempt=exempt
            )
        except PersistedRefusal as refusal:
            if media is not None:
                # application/json: "not found" is an answer to retry with the text (as
                # Apollo Server gives it), not a broken request
                status = 200 if media == JSON and refusal.code in PROTOCOL_REPLIES else 400
                raise RequestRefused(status, refusal.message, refusal.code) from None
            operation.refusal = refusal

    async def _check_batch(
        self, principal: Principal, client: str, operations: list[Operation]
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
                ErrorCode.BATCH_TOO_EXPENSIVE,
            )
        wait = await self._take(principal, client, len(operations) - 1)
        if wait:
            raise RequestRefused(
                429,
                "Too many requests; retry later.",
                ErrorCode.RATE_LIMITED,
                {"retry-after": retry_after_header(wait)},
            )

    async def _execute(
        self, method: str, operation: Operation, context: Context
    ) -> ExecutionResult:
        if operation.refusal is not None:
            error = GraphQLError(
                operation.refusal.message, extensions={"code": operation.refusal.code}
            )
            return ExecutionResult(data=None, errors=[error])
        try:
            return await self.schema.execute(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                operation_name=operation.operation_name,
                allowed_operation_types=_ALLOWED[method],
                operation_extensions=operation.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            reason = exc.as_http_error_reason(method)
            if method == "GET":
                # the spec's answer to a mutation over GET: 405, and where to send it instead
                raise RequestRefused(
                    405, reason + "; use POST.", ErrorCode.METHOD_NOT_ALLOWED, {"allow": "POST"}
                ) from None
            raise HTTPException(400, reason) from exc
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc

    @staticmethod
    def _shape(result: ExecutionResult, media: str) -> GraphQLHTTPResponse:
        body = process_result(result)
        if media == GRAPHQL_RESPONSE_JSON and is_request_error(result):
            body.pop("data", None)
        return body

    def _cacheable(self, body: bytes, media: str, tags: list[str] | None) -> Answer:
        """A public catalog answer: cacheable for what is left of the snapshot's life,
        under a strong ETag, revalidated with If-None-Match."""
        etag = entity_tag(media.encode() + body)
        caching = [
            (b"cache-control", public_cache_control(self._catalog_life_left()).encode()),
            (b"etag", etag.encode()),
            (b"vary", b"Accept"),
        ]
        if tags != [] and matches(tags, etag):
            return Answer(304, caching, b"")
        return _json_answer(200, body, media, caching)

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

    def _observe_batch(self, loader: str, size: int) -> None:
        metrics = self.services.metrics if self.services else None
        if metrics is not None:
            metrics.loader_batch.labels(loader).observe(size)


def _decode_json(data: str | bytes) -> object:
    # orjson's errors are json.JSONDecodeError (ValueError) too
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise HTTPException(400, "Unable to parse request body as JSON") from None
    if not isinstance(decoded, dict | list):
        raise HTTPException(400, "A GraphQL request (and its variables) must be a JSON object.")
    return decoded


def _request(scope: Scope, body: bytes) -> Request:
    """The Starlette request a resolver may read (its URL, headers, or body again)."""
    return Request(scope, replay_body(body))
