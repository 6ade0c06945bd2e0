"""What the server log says about a GraphQL error: never the text of the request.

graphql-core's `str(error)` quotes the document around each location, wrapped across
lines, and its messages quote values from the document (`found String '...'`,
`cannot represent a non string value: ...`). A secret in a rejected document (an LPA
string, an activation code, a PIN) then reached the log cut into pieces that no
credential pattern recognises. So a logged error carries the document's SHA-256 and
length, the error's locations and path, and its message with the request's own text
masked: every quoted segment and every word that also occurs in the request (document
or variables), except the schema's names and GraphQL's keywords, which are public.

The level says whose fault it is: a client's mistake (a typo, a bad argument, a refused
document) is INFO, without a stack, so an app shipping a typo pages nobody; a provider's
failure is WARNING; only the server's own fault (INTERNAL_SERVER_ERROR) is ERROR, with
the exception's stack.
"""

from __future__ import annotations

import functools
import hashlib
import re
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import structlog
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

from esim_gateway.schema.errors import ErrorCode, error_code

__all__ = ["MASK", "log_graphql_errors", "masked_message", "schema_vocabulary"]

MASK = "…"

_QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_KEYWORDS = frozenset(
    [
        "query",
        "mutation",
        "subscription",
        "fragment",
        "on",
        "true",
        "false",
        "null",
        "type",
        "input",
        "enum",
        "union",
        "interface",
        "scalar",
        "schema",
        "extend",
        "directive",
        "implements",
        "repeatable",
    ]
)

_log = structlog.get_logger("esim_gateway.graphql")
#: the level of a code that is not INFO's (looked up on the logger per line: logging
#: may be configured after this module is imported)
_LEVELS = {ErrorCode.INTERNAL_SERVER_ERROR: "error", ErrorCode.PROVIDER_ERROR: "warning"}


@functools.cache
def schema_vocabulary(schema: GraphQLSchema) -> frozenset[str]:
    """Every name the schema defines: types, fields, arguments, enum values, directives."""
    names: set[str] = set(_KEYWORDS)
    for type_ in schema.type_map.values():
        names.add(type_.name)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in type_.fields.items():
                names.add(field_name)
                names.update(field.args)
        elif isinstance(type_, GraphQLInputObjectType):
            names.update(type_.fields)
        elif isinstance(type_, GraphQLEnumType):
            names.update(type_.values)
    for directive in schema.directives:
        names.add(directive.name)
        names.update(directive.args)
    return frozenset(names)


def _request_words(query: str | None, variables: Mapping[str, Any] | None) -> frozenset[str]:
    text = query or ""
    if variables:
        text += orjson.dumps(variables, default=str).decode()
    return frozenset(_WORD.findall(text))


def masked_message(message: str, request_words: Iterable[str], vocabulary: frozenset[str]) -> str:
    """`message` with the request's own text replaced by `MASK` (see the module)."""
    words = frozenset(request_words)

    def public(text: str) -> bool:
        parts = [p for p in re.split(r"[\[\]!$@.\s]+", text) if p]
        return bool(parts) and all(p in vocabulary for p in parts)

    def quoted(match: re.Match[str]) -> str:
        segment = match.group(0)
        inner = segment[1:-1]
        # a punctuator ('{', '$') says where parsing stopped and holds no secret
        if public(inner) or (len(inner) <= 3 and _WORD.search(inner) is None):
            return segment
        return f"{segment[0]}{MASK}{segment[0]}"

    def word(match: re.Match[str]) -> str:
        text = match.group(0)
        return MASK if text in words and text not in vocabulary else text

    # quoted segments first: a word inside one is gone with it
    return _WORD.sub(word, _QUOTED.sub(quoted, message))


def log_graphql_errors(
    errors: Iterable[GraphQLError],
    schema: GraphQLSchema,
    query: str | None,
    variables: Mapping[str, Any] | None,
) -> None:
    """One log line per error, with nothing of the request's text in it, at the level
    its code says (see the module)."""
    vocabulary = schema_vocabulary(schema)
    words = _request_words(query, variables)
    digest = hashlib.sha256((query or "").encode("utf-8")).hexdigest()
    for error in errors:
        code = error_code(error)
        original = error.original_error
        extra: dict[str, str] = {}
        if code is ErrorCode.INTERNAL_SERVER_ERROR and original is not None:
            # an unexpected exception's stack; its message may quote the request too
            # (a KeyError of a name it sent), so it is masked like the message
            stack = "".join(traceback.format_exception(original))
            extra["exception"] = masked_message(stack, words, vocabulary)
        getattr(_log, _LEVELS.get(code, "info"))(
            "graphql error",
            code=code.value,
            message=masked_message(error.message, words, vocabulary),
            locations=[[loc.line, loc.column] for loc in error.locations or ()],
            path=[
                masked_message(p, words, vocabulary) if isinstance(p, str) else p
                for p in error.path or ()
            ],
            document_sha256=digest,
            document_length=len(query or ""),
            **extra,
        )
