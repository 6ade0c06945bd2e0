"""Batches of operations (a JSON array, as Apollo's BatchHttpLink sends): off by default,
at most N operations, and every limit applied to the batch as a whole."""

from __future__ import annotations

import httpx
import orjson

from esim_gateway.http.persisted import document_hash
from tests.conftest import Gateway, GatewayFactory

#: cost 1,001 each: under the limit (10,000) alone, over it ten at a time
COSTLY = (
    "{ packages(first: 100) { edges { node { id name days"
    " price { amount currency } priceUsd { amount } } } } }"
)


async def batch(gw: Gateway, operations: list[object]) -> httpx.Response:
    return await gw.http.post(
        "/graphql", content=orjson.dumps(operations), headers={"content-type": "application/json"}
    )


async def test_batching_is_off_unless_enabled(gateway: Gateway) -> None:
    response = await batch(gateway, [{"query": "{ __typename }"}])
    assert response.status_code == 400 and response.json()["errors"][0]["message"] == (
        "Batching is not enabled"
    )


async def test_a_batch_answers_each_operation_in_order(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(batching=True) as gw:
        response = await batch(
            gw,
            [
                {"query": "{ __typename }"},
                {"query": "query S { catalogStatus { provider } }", "operationName": "S"},
                {"query": "{ nope }"},
                {"query": "mutation { __typename }"},
            ],
        )
        assert response.status_code == 200
        results = response.json()
        assert results[0] == {"data": {"__typename": "Query"}}
        assert results[1]["data"]["catalogStatus"]
        assert results[2]["data"] is None and results[2]["errors"]
        assert results[3] == {"data": {"__typename": "Mutation"}}


async def test_a_batch_over_the_limit_is_refused_before_anything_runs(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(batching=True, batch_max_operations=3) as gw:
        before = await gw.upstream_calls()
        too_many = await batch(gw, [{"query": "{ catalogStatus { plans } }"}] * 4)
        assert too_many.status_code == 400
        assert too_many.json()["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"
        empty = await batch(gw, [])
        assert empty.status_code == 400
        not_objects = await batch(gw, ["{ __typename }"])
        assert not_objects.status_code == 400
        assert await gw.upstream_calls() == before


async def test_the_cost_limit_holds_for_the_batch_as_a_whole(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(batching=True, batch_max_operations=12) as gw:
        alone = await gw.post(COSTLY)
        assert alone.json().get("errors") is None
        before = await gw.upstream_calls()
        response = await batch(gw, [{"query": COSTLY}] * 10)
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "BATCH_TOO_EXPENSIVE"
        assert "cost 10010 exceeds the limit of 10000" in error["message"]
        assert await gw.upstream_calls() == before
        assert (await batch(gw, [{"query": COSTLY}] * 9)).status_code == 200


async def test_each_operation_of_a_batch_takes_a_rate_limit_token(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(
        batching=True, rate_limit_per_second=0.001, rate_limit_burst=4
    ) as gw:
        assert (await batch(gw, [{"query": "{ __typename }"}] * 2)).status_code == 200
        refused = await batch(gw, [{"query": "{ __typename }"}] * 3)  # 2 + 3 > 4
        assert refused.status_code == 429 and "retry-after" in refused.headers


async def test_a_persisted_query_miss_is_answered_in_its_own_slot(
    gateway_factory: GatewayFactory,
) -> None:
    unknown = "query Unknown { __typename }"
    async with gateway_factory(batching=True) as gw:
        response = await batch(
            gw,
            [
                {"query": "{ __typename }"},
                {"extensions": {"persistedQuery": {"version": 1,
                                                   "sha256Hash": document_hash(unknown)}}},
            ],
        )  # fmt: skip
        first, second = response.json()
        assert first == {"data": {"__typename": "Query"}}
        assert second["errors"][0]["message"] == "PersistedQueryNotFound"


async def test_a_batch_holds_at_most_five_operations_by_default(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(batching=True) as gw:
        assert (await batch(gw, [{"query": "{ __typename }"}] * 5)).status_code == 200
        six = await batch(gw, [{"query": "{ __typename }"}] * 6)
        assert six.status_code == 400
        assert six.json()["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"
