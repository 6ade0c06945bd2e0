"""Cacheable catalog reads: public GET answers with max-age, a strong ETag and 304s;
everything that depends on who asks is `private, no-store`."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import Gateway, GatewayFactory

CSRF = {"x-graphql-csrf": "1"}
PLANS = '{ packages(filter: {country: "JP"}, first: 3) { edges { node { id name } } } }'
MAX_AGE = re.compile(r"public, max-age=(\d+)")


async def get(gw: Gateway, query: str, **headers: str) -> httpx.Response:
    return await gw.http.get("/graphql", params={"query": query}, headers={**CSRF, **headers})


async def test_a_catalog_read_over_get_is_public_for_what_is_left_of_the_snapshot(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(catalog_ttl=120.0) as gw:
        response = await get(gw, PLANS)
        assert response.status_code == 200 and response.json()["data"]["packages"]
        match = MAX_AGE.fullmatch(response.headers["cache-control"])
        assert match is not None and 0 < int(match.group(1)) <= 120
        etag = response.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert "Accept" in response.headers["vary"]


async def test_if_none_match_answers_304_without_a_body(gateway: Gateway) -> None:
    first = await get(gateway, PLANS)
    etag = first.headers["etag"]
    for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = await get(gateway, PLANS, **{"if-none-match": header})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"].startswith("public, max-age=")
    changed = await get(gateway, PLANS, **{"if-none-match": '"not-the-tag"'})
    assert changed.status_code == 200 and changed.headers["etag"] == etag


async def test_the_tag_differs_per_media_type(gateway: Gateway) -> None:
    plain = await get(gateway, PLANS)
    spec = await get(gateway, PLANS, accept="application/graphql-response+json")
    assert plain.content == spec.content and plain.headers["etag"] != spec.headers["etag"]


async def test_a_package_by_node_is_public_and_an_order_by_node_is_not(gateway: Gateway) -> None:
    plans = await get(gateway, PLANS)
    package_id = plans.json()["data"]["packages"]["edges"][0]["node"]["id"]
    package = await gateway.http.get(
        "/graphql",
        params={
            "query": "query P($id: ID!) { node(id: $id) { id } }",
            "variables": f'{{"id": "{package_id}"}}',
        },
        headers=CSRF,
    )
    assert package.json()["data"]["node"] == {"id": package_id}
    assert package.headers["cache-control"].startswith("public")
    order = await get(gateway, '{ node(id: "T3JkZXI6eA==") { id } }')  # Order:x
    assert order.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize(
    "query",
    [
        "{ orders(first: 1) { totalCount } }",
        "{ packages(first: 1) { totalCount } orders(first: 1) { totalCount } }",
        '{ esim(iccid: "8900000000000000000") { __typename } }',
        "{ packages(first: 1000) { totalCount } }",  # an answer with errors
    ],
)
async def test_anything_private_or_failed_is_no_store(gateway: Gateway, query: str) -> None:
    response = await get(gateway, query)
    assert response.headers["cache-control"] == "private, no-store"
    assert "etag" not in response.headers


async def test_post_is_never_cached(gateway: Gateway) -> None:
    response = await gateway.post(PLANS)
    assert response.headers["cache-control"] == "private, no-store"
    assert "etag" not in response.headers


@pytest.mark.parametrize("header", ["abc", '"unterminated', '"a", b', ""])
async def test_an_if_none_match_that_is_not_an_etag_is_a_clear_400(
    gateway: Gateway, header: str
) -> None:
    before = await gateway.upstream_calls()
    response = await get(gateway, PLANS, **{"if-none-match": header})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_IF_NONE_MATCH"
    assert await gateway.upstream_calls() == before
