"""GraphQL over HTTP: `application/graphql-response+json` with the spec's status codes, while
`application/json` keeps its 200-with-errors answers."""

from __future__ import annotations

import pytest

from esim_gateway.http.protocol import GRAPHQL_RESPONSE_JSON, negotiate
from tests.conftest import Gateway

SPEC = {"accept": GRAPHQL_RESPONSE_JSON}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"application/json, {GRAPHQL_RESPONSE_JSON};q=0.5", "application/json"),
        (f"{GRAPHQL_RESPONSE_JSON};q=0", "application/json"),
    ],
)
def test_the_response_media_type_follows_the_accept_header(accept: str, expected: str) -> None:
    assert negotiate(accept) == expected


async def test_a_query_answers_in_the_media_type_the_client_accepts(gateway: Gateway) -> None:
    spec = await gateway.post("{ __typename }", headers=SPEC)
    assert spec.status_code == 200
    assert spec.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    assert spec.json() == {"data": {"__typename": "Query"}}
    plain = await gateway.post("{ __typename }")
    assert plain.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ("{", None),  # does not parse
        ("{ noSuchField }", None),  # does not validate
        ("query Q($n: Int!) { packages(first: $n) { totalCount } }", {"n": "many"}),  # coercion
    ],
)
async def test_a_request_that_never_executes_is_a_400_without_data(
    gateway: Gateway, document: str, variables: dict[str, object] | None
) -> None:
    before = await gateway.upstream_calls()
    spec = await gateway.post(document, variables, headers=SPEC)
    assert spec.status_code == 400
    assert spec.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    body = spec.json()
    assert "data" not in body and body["errors"]
    plain = await gateway.post(document, variables)
    assert plain.status_code == 200 and plain.json()["data"] is None and plain.json()["errors"]
    assert await gateway.upstream_calls() == before


async def test_a_field_error_is_still_a_200_with_data(gateway: Gateway) -> None:
    # an order id that is not ours: a typed result, so data and status 200 under both types
    response = await gateway.post('{ order(id: "nope") { __typename } }', headers=SPEC)
    assert response.status_code == 200 and response.json()["data"]["order"]["__typename"]


async def test_a_mutation_over_get_is_a_405_and_runs_nothing(gateway: Gateway) -> None:
    before = await gateway.upstream_calls()
    response = await gateway.http.get(
        "/graphql",
        params={
            "query": 'mutation { cancelOrder(input: {orderId: "x"}) { __typename } }',
        },
        headers={"x-graphql-csrf": "1", **SPEC},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert await gateway.upstream_calls() == before


async def test_refusals_before_execution_use_the_negotiated_media_type(gateway: Gateway) -> None:
    response = await gateway.http.get(
        "/graphql", params={"query": "{ __typename }"}, headers=SPEC
    )  # no CSRF header
    assert response.status_code == 400
    assert response.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    assert "data" not in response.json()
