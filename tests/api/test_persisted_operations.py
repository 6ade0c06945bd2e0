"""Persisted operations end to end: APQ as Apollo's clients send it (POST and GET), trusted
documents by `documentId`, and live mode running trusted documents only."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import GraphQLRequest

from esim_gateway.config import ConfigError, Settings
from esim_gateway.http.persisted import document_hash
from tests.conftest import Gateway, GatewayFactory, redis_or_skip

CATALOG = "query Catalog { catalogStatus { provider plans } }"
PLANS = 'query Plans { packages(filter: {country: "JP"}, first: 2) { totalCount } }'
CSRF = {"x-graphql-csrf": "1"}
KEYS = Settings.from_mapping(
    {"ESIM_GATEWAY_API_KEYS": "alice:customer:alice-key,ops:operator:ops-key"}
).api_keys
ALICE = {"authorization": "Bearer alice-key"}
OPS = {"authorization": "Bearer ops-key"}


def apq(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": document_hash(document)}}


async def post(gw: Gateway, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return await gw.http.post("/graphql", json=body, headers=headers or {})


async def test_apq_over_post_registers_after_not_found_then_runs_from_the_hash(
    gateway: Gateway,
) -> None:
    hash_only = {"extensions": apq(CATALOG), "operationName": "Catalog"}
    missing = await post(gateway, hash_only)
    assert missing.status_code == 200  # application/json: Apollo's links read and retry
    error = missing.json()["errors"][0]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await post(gateway, {**hash_only, "query": CATALOG})
    assert registered.status_code == 200 and "catalogStatus" in registered.json()["data"]
    again = await post(gateway, hash_only)
    assert again.json() == registered.json()


async def test_apq_over_get_as_apollo_sends_it(gateway: Gateway) -> None:
    params = {"operationName": "Catalog", "extensions": json.dumps(apq(CATALOG))}
    missing = await gateway.http.get("/graphql", params=params, headers=CSRF)
    assert missing.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await gateway.http.get(
        "/graphql", params={**params, "query": CATALOG}, headers=CSRF
    )
    assert registered.json()["data"]["catalogStatus"]
    again = await gateway.http.get("/graphql", params=params, headers=CSRF)
    assert again.json()["data"] == registered.json()["data"]


async def test_apq_not_found_is_a_400_under_graphql_response_json(gateway: Gateway) -> None:
    missing = await post(
        gateway,
        {"extensions": apq(PLANS)},
        {"accept": "application/graphql-response+json"},
    )
    assert missing.status_code == 400 and "data" not in missing.json()
    assert missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"


async def test_a_hash_that_does_not_match_its_document_is_refused_and_not_stored(
    gateway: Gateway,
) -> None:
    before = await gateway.upstream_calls()
    wrong = await post(gateway, {"query": PLANS, "extensions": apq(CATALOG)})
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert await gateway.upstream_calls() == before
    # nothing was stored under either hash
    for document in (CATALOG, PLANS):
        missing = await post(gateway, {"extensions": apq(document)})
        assert missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"


async def test_apq_documents_are_shared_by_replicas_through_redis(
    gateway_factory: GatewayFactory,
) -> None:
    url = await redis_or_skip()
    document = f"query Unique{uuid.uuid4().hex} {{ __typename }}"
    async with gateway_factory(apq_redis_url=url) as first:
        registered = await post(first, {"query": document, "extensions": apq(document)})
        assert registered.json()["data"] == {"__typename": "Query"}
    async with gateway_factory(apq_redis_url=url) as second:  # another replica
        again = await post(second, {"extensions": apq(document)})
        assert again.json()["data"] == {"__typename": "Query"}


def manifests(tmp_path: Path) -> Path:
    """An app build's output: a Codegen client-preset manifest and an Apollo one."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "persisted-documents.json").write_text(json.dumps({document_hash(PLANS): PLANS}))
    (folder / "apollo.json").write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [
                    {"id": document_hash(CATALOG), "name": "Catalog", "type": "query",
                     "body": CATALOG}
                ],
            }
        )
    )  # fmt: skip
    return folder


async def test_a_trusted_document_runs_by_its_document_id(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    async with gateway_factory(trusted_documents=(str(manifests(tmp_path)),)) as gw:
        by_id = await post(gw, {"documentId": f"sha256:{document_hash(PLANS)}"})
        assert by_id.json()["data"]["packages"]["totalCount"] >= 0
        by_apq_hash = await post(gw, {"extensions": apq(CATALOG)})  # never registered
        assert by_apq_hash.json()["data"]["catalogStatus"]
        unknown = await post(gw, {"documentId": "sha256:" + "0" * 64})
        assert unknown.status_code == 400
        assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_DOCUMENT_NOT_FOUND"
        # the sandbox still runs any document
        assert (await gw.post("{ __typename }")).json()["data"] == {"__typename": "Query"}


@pytest.fixture
async def trusted_only(gateway_factory: GatewayFactory, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with gateway_factory(
        live=True,
        api_keys=KEYS,
        trusted_documents=(str(manifests(tmp_path)),),
        trusted_documents_only=True,
    ) as gw:
        yield gw


async def test_live_mode_with_trusted_documents_only_refuses_anything_else(
    trusted_only: Gateway,
) -> None:
    gw = trusted_only
    before = await gw.upstream_calls()
    for body in (
        {"query": "{ packages(first: 1) { totalCount } }"},
        {"query": "{ __typename }", "extensions": apq("{ __typename }")},  # APQ registration
        {"extensions": apq("{ __typename }")},
    ):
        refused = await post(gw, body, ALICE)
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["code"] == "TRUSTED_DOCUMENT_REQUIRED"
    assert await gw.upstream_calls() == before
    trusted = await post(gw, {"documentId": document_hash(CATALOG)}, ALICE)
    assert trusted.json()["data"]["catalogStatus"]
    as_text = await post(gw, {"query": CATALOG}, ALICE)  # a trusted document's own text
    assert as_text.json()["data"]["catalogStatus"]
    # operators are not exempt unless configured
    assert (await post(gw, {"query": "{ __typename }"}, OPS)).status_code == 400


async def test_operators_may_be_exempted_from_trusted_documents_only(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    async with gateway_factory(
        live=True,
        api_keys=KEYS,
        trusted_documents=(str(manifests(tmp_path)),),
        trusted_documents_only=True,
        trusted_documents_exempt_operators=True,
    ) as gw:
        ops = await post(gw, {"query": "{ __typename }"}, OPS)
        assert ops.json()["data"] == {"__typename": "Query"}
        alice = await post(gw, {"query": "{ __typename }"}, ALICE)
        assert alice.status_code == 400


def test_a_bad_manifest_stops_start_up_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from esim_gateway.app import create_app
    from esim_gateway.cli import main

    manifest = tmp_path / "app.json"
    manifest.write_text(json.dumps({"Plans": PLANS, "Broken": "query {"}))
    settings = Settings(trusted_documents=(str(manifest),))
    with pytest.raises(ConfigError, match=r"app\.json: entry 'Broken' does not parse"):
        create_app(settings)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ESIM_GATEWAY_TRUSTED_DOCUMENTS", str(manifest))
    assert main(["serve"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "app.json: entry 'Broken' does not parse" in lines[0]


def test_trusted_documents_only_without_a_manifest_stops_live_start_up() -> None:
    from esim_gateway.app import create_app

    with pytest.raises(ConfigError, match="TRUSTED_DOCUMENTS_ONLY"):
        create_app(
            Settings(
                mode="live",  # type: ignore[arg-type]
                trusted_documents_only=True,
                api_keys=Settings.from_mapping(
                    {"ESIM_GATEWAY_API_KEYS": "ops:operator:k"}
                ).api_keys,
            )
        )


async def test_subscriptions_run_trusted_documents_only_too(tmp_path: Path) -> None:
    from gql import Client
    from gql.transport.exceptions import TransportQueryError
    from gql.transport.websockets import WebsocketsTransport
    from graphql import parse, print_ast

    from tests.api.test_live_updates import serve

    # as gql prints it before sending: a manifest holds the text the client sends
    follow = print_ast(parse("subscription Follow($id: ID!) { orderUpdated(id: $id) { id } }"))
    manifest = tmp_path / "app.json"
    manifest.write_text(json.dumps({document_hash(follow): follow}))
    settings = Settings(
        mode="live",  # type: ignore[arg-type]
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        api_keys=KEYS,
        trusted_documents=(str(manifest),),
        trusted_documents_only=True,
    )

    async def first_error(document: str) -> dict[str, Any]:
        transport = WebsocketsTransport(
            url=f"ws://{base}/graphql",
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"Authorization": "Bearer alice-key"},
        )
        async with Client(transport=transport) as session:
            with pytest.raises(TransportQueryError) as raised:
                async for _ in session.subscribe(
                    GraphQLRequest(document, variable_values={"id": "nope"})
                ):
                    pass
        assert raised.value.errors
        error: dict[str, Any] = raised.value.errors[0]
        return error

    async with serve(settings, catalog_refresh=False) as base:
        untrusted = "subscription { orderUpdated(id: $id) { id } }".replace(
            "subscription", "subscription Other($id: ID!)"
        )
        refused = await first_error(untrusted)
        assert refused["extensions"]["code"] == "TRUSTED_DOCUMENT_REQUIRED"
        ran = await first_error(follow)  # it ran: the order does not exist
        assert ran.get("extensions", {}).get("code") != "TRUSTED_DOCUMENT_REQUIRED"
        legacy = WebsocketsTransport(  # the older graphql-ws protocol: not offered
            url=f"ws://{base}/graphql",
            subprotocols=[WebsocketsTransport.APOLLO_SUBPROTOCOL],
            init_payload={"Authorization": "Bearer alice-key"},
        )
        with pytest.raises(Exception, match=r"(?i)subprotocol|4406|closed"):
            async with Client(transport=legacy) as session:
                await session.execute(GraphQLRequest("{ __typename }"))
