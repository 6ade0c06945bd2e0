"""GraphQL over HTTP, the protocol's side: which media type to answer in, what one
operation of a request is, what counts as a request error, and refusals with codes.

The GraphQL-over-HTTP spec: a client accepting `application/graphql-response+json` gets
it, and a request that never executed (a parse, validation or variable coercion failure)
is then a 400 without `data`; `application/json` keeps the 200-with-errors answer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cross_web import HTTPException
from graphql import DocumentNode, GraphQLError, parse
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from esim_gateway.http.persisted import PersistedRefusal
from esim_gateway.schema.errors import ErrorCode

__all__ = [
    "GRAPHQL_RESPONSE_JSON",
    "JSON",
    "PROTOCOL_REPLIES",
    "Operation",
    "RequestRefused",
    "is_page_load",
    "is_request_error",
    "negotiate",
    "parse_operation",
    "parsed_document",
]

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def negotiate(accept: str) -> str:
    """The response media type for an Accept header: graphql-response+json when the client
    prefers it (or only takes it), else application/json (also when Accept is absent)."""
    preferred, plain = 0.0, 0.0
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media == GRAPHQL_RESPONSE_JSON:
            preferred = max(preferred, quality)
        elif media in (JSON, "application/*", "*/*"):
            plain = max(plain, quality)
    return GRAPHQL_RESPONSE_JSON if preferred > 0 and preferred >= plain else JSON


class RequestRefused(HTTPException):
    """A request refused before execution, with the code clients branch on."""

    def __init__(
        self, status_code: int, reason: str, code: ErrorCode, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code, reason)
        self.code = code
        self.headers = headers


#: what clients may retry with the document's text: a GraphQL answer, not a broken request
PROTOCOL_REPLIES = frozenset(
    {ErrorCode.PERSISTED_QUERY_NOT_FOUND, ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED}
)


@dataclass
class Operation(GraphQLRequestData):
    """One operation of a request, with what Strawberry's own request data leaves out."""

    document_id: object = None
    #: a batch member refused on its own: answered in its slot, the others still run
    refusal: PersistedRefusal | None = None


def is_request_error(result: ExecutionResult) -> bool:
    """Execution never started: parse, validation or variable errors have no path (every
    field error has one, and `data` is then at least null)."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or ())
    )


def is_page_load(method: str, headers: Mapping[str, str], params: Mapping[str, Any]) -> bool:
    """A browser opening GraphiQL. Not a GET of a persisted query (APQ's hash in
    `extensions`, or a `documentId`): it has no `query` and often accepts */*."""
    return (
        method == "GET"
        and "text/html" in headers.get("accept", "")
        and not any(params.get(name) for name in ("query", "extensions", "documentId"))
    )


@functools.lru_cache(maxsize=512)
def parsed_document(query: str) -> DocumentNode | None:
    try:
        return parse(query, max_tokens=5000)
    except GraphQLError:
        return None


#: an operation's fields and the JSON type each must have when present
_FIELD_TYPES: tuple[tuple[str, type, str], ...] = (
    ("query", str, "a string"),
    ("variables", dict, "an object"),
    ("extensions", dict, "an object"),
    ("operationName", str, "a string"),
)


def parse_operation(data: object) -> Operation:
    """One operation's fields, checked as Strawberry checks them, plus `documentId`."""
    if not isinstance(data, dict):
        raise HTTPException(400, "Each operation of a batch must be a JSON object.")
    for name, kind, described in _FIELD_TYPES:
        if not isinstance(data.get(name), kind | None):
            raise HTTPException(
                400, f"The GraphQL operation's `{name}` must be {described} or null, if provided."
            )
    return Operation(
        query=data.get("query"),
        variables=data.get("variables"),
        operation_name=data.get("operationName"),
        extensions=data.get("extensions"),
        document_id=data.get("documentId"),
    )
