"""HTTP caching of catalog reads: which GET answers a shared cache (a CDN) may keep.

Only a query whose root fields are all principal-independent catalog reads is public:
`packages`, `bestOffers`, `catalogStatus`, `node` with a Package id, and `__typename`.
It may be kept for what is left of the catalog snapshot's life (`max-age`), under a strong
`ETag` (the SHA-256 of the exact body), and revalidated with `If-None-Match` (304).
Everything else - anything an order, an eSIM, a balance or a principal can change - is
`private, no-store`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    VariableNode,
)
from strawberry import relay

__all__ = [
    "NO_STORE",
    "PUBLIC_ROOT_FIELDS",
    "BadIfNoneMatch",
    "entity_tag",
    "is_public_query",
    "matches",
    "parse_if_none_match",
    "public_cache_control",
]

NO_STORE = "private, no-store"
PUBLIC_ROOT_FIELDS = frozenset({"packages", "bestOffers", "catalogStatus", "__typename"})
_PUBLIC_NODE_TYPES = frozenset({"Package"})
# RFC 9110 entity-tag: optional W/ then a quoted string of etagc characters
_ETAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*')


class BadIfNoneMatch(ValueError):
    """An If-None-Match header that is neither `*` nor a list of entity tags."""


def _selected_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == operation_name), None)


def _node_id(field: FieldNode, variables: Mapping[str, Any] | None) -> object:
    for argument in field.arguments or ():
        if argument.name.value != "id":
            continue
        if isinstance(argument.value, StringValueNode):
            return argument.value.value
        if isinstance(argument.value, VariableNode):
            return (variables or {}).get(argument.value.name.value)
    return None


def _is_public_node(field: FieldNode, variables: Mapping[str, Any] | None) -> bool:
    node_id = _node_id(field, variables)
    if not isinstance(node_id, str):
        return False
    try:
        type_name = relay.GlobalID.from_id(node_id).type_name
    except Exception:  # a malformed id answers null: nothing private in it, but keep it simple
        return False
    return type_name in _PUBLIC_NODE_TYPES


def is_public_query(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> bool:
    """Whether the operation reads only the public catalog (the same for every principal).
    Fragments at the root are not looked into: such an operation is simply private."""
    operation = _selected_operation(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return False
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return False
        name = selection.name.value
        if name == "node":
            if not _is_public_node(selection, variables):
                return False
        elif name not in PUBLIC_ROOT_FIELDS:
            return False
    return True


def public_cache_control(max_age: float) -> str:
    return f"public, max-age={max(0, int(max_age))}"


def entity_tag(body: bytes) -> str:
    """A strong ETag: the same bytes, the same tag."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def parse_if_none_match(header: str) -> list[str] | None:
    """The tags of an If-None-Match header (None for `*`, which matches anything)."""
    if header.strip() == "*":
        return None
    tags: list[str] = []
    for part in header.split(","):
        match = _ETAG.fullmatch(part)
        if match is None:
            raise BadIfNoneMatch(
                "If-None-Match must be `*` or a comma-separated list of quoted entity tags"
                ' (e.g. "abc123").'
            )
        tags.append(f'"{match.group(2)}"')  # If-None-Match compares weakly: W/ is ignored
    return tags


def matches(tags: list[str] | None, etag: str) -> bool:
    return tags is None or etag in tags
