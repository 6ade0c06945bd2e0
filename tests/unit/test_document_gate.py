"""DocumentGate: every limit on a document, decided once per text and answered the same.

The behaviour of each limit through the HTTP API is in tests/security; here: the cached
gate answers exactly as an uncached one, repeats never re-validate, and the cost limit
is decided per value of `first: $n`, not once per text.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLError, GraphQLSchema
from graphql.validation import specified_rules
from strawberry.schema.schema import validate_document

from esim_gateway.schema import Limits, build_schema, document_gate
from esim_gateway.schema import limits as limits_module
from esim_gateway.schema.limits import DocumentGate

LIMITS = Limits(max_depth=4, max_aliases=3, max_tokens=60, max_cost=200)

DOCUMENTS = [
    "{ __typename }",
    "{ packages(first: 5) { totalCount } }",
    "{ orders { edges { node { items { esims { iccid } } } } } }",  # too deep
    "{ a: __typename b: __typename c: __typename d: __typename }",  # too many aliases
    "{ " + "__typename " * 70 + "}",  # too many tokens
    "{ __typename @a @b @c @d @e @f }",  # too many directives: one error
    "{ nosuchfield }",
    "{ __schema { types { name } } }",  # refused in live mode
    "{ orders(first: 100) { edges { node { esims { iccid } } } } }",  # too expensive
    "{ unclosed",
]


def gate(cache_size: int) -> DocumentGate:
    return document_gate(LIMITS, introspection=False, cache_size=cache_size)


def graphql_schema() -> GraphQLSchema:
    schema: GraphQLSchema = build_schema(introspection=False)._schema
    return schema


def answer(checker: DocumentGate, query: str, variables: dict[str, Any] | None = None) -> list[str]:
    try:
        document = checker.parse(query)
    except GraphQLError as error:
        return [f"syntax: {error.message}"]
    errors = checker.errors(graphql_schema(), query, document, tuple(specified_rules), variables)
    return [error.message for error in errors]


def test_the_cached_gate_answers_every_document_as_an_uncached_one() -> None:
    cached, uncached = gate(512), gate(0)
    expected = [answer(uncached, query) for query in DOCUMENTS]
    assert [answer(cached, query) for query in DOCUMENTS] == expected
    assert [answer(cached, query) for query in DOCUMENTS] == expected  # from the caches
    # each document is refused for its own reason
    assert expected[0] == expected[1] == []
    assert "exceeds maximum operation depth of 4" in expected[2][0]
    assert "aliases" in expected[3][0].lower() and len(expected[3]) == 1
    assert expected[4][0].startswith("syntax:") and "token" in expected[4][0].lower()
    assert expected[5] == ["At most 5 directives may be used on one field."]
    assert "nosuchfield" in expected[6][0]
    assert "introspection" in expected[7][0].lower()
    assert "too expensive" in expected[8][0]
    assert expected[9][0].startswith("syntax:")


def test_a_repeated_document_is_parsed_and_validated_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    validated: list[object] = []

    def counting(*args: Any) -> list[GraphQLError]:
        validated.append(args[1])
        return validate_document(*args)

    monkeypatch.setattr(limits_module, "validate_document", counting)
    checker = gate(512)
    query = "{ packages(first: 5) { totalCount } }"
    first = checker.parse(query)
    for _ in range(3):
        assert checker.parse(query) is first
        assert answer(checker, query) == []
    assert validated == [first]

    uncached = gate(0)
    for _ in range(3):
        assert answer(uncached, query) == []
    assert len(validated) == 4


def test_the_cost_limit_is_decided_per_value_of_first() -> None:
    checker = gate(512)
    query = "query($n: Int) { orders(first: $n) { edges { node { esims { iccid } } } } }"
    for _ in range(2):
        assert answer(checker, query, {"n": 5}) == []
        (refused,) = answer(checker, query, {"n": 100})
        assert "too expensive" in refused
    # an errors list handed out is the caller's: changing it changes no later answer
    document = checker.parse(query)
    handed = checker.errors(graphql_schema(), query, document, tuple(specified_rules), {"n": 100})
    handed.clear()
    assert len(answer(checker, query, {"n": 100})) == 1
