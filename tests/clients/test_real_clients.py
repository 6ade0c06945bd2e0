"""Real clients against `esim-gateway serve`: Apollo Client 3 from npm (InMemoryCache with
possibleTypes, the APQ link, BatchHttpLink, graphql-ws) and Python's gql, each running a
query, a mutation with a union result, an idempotent replay, persisted queries (APQ and a
trusted document), a batch and a subscription."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from esim_gateway.http.persisted import document_hash
from tests.clients.node import HERE, node_or_skip
from tests.reliability.test_two_processes import free_port, running

#: gql's trusted document, in GraphQL Codegen's client-preset format ({hash: text})
GQL_TRUSTED = "query GqlTrusted { catalogStatus { provider plans } }"
CSRF = {"x-graphql-csrf": "1"}


@dataclass(frozen=True)
class Served:
    http: str
    ws: str
    with_apollo_manifest: bool


def _apollo_manifest() -> str | None:
    """The Apollo app's build output (its persisted-query manifest), when node can run it."""
    try:
        node = node_or_skip()
    except pytest.skip.Exception:
        return None
    run = subprocess.run(  # noqa: S603 - our own script, our own node
        [node, str(HERE / "apollo.mjs"), "manifest"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return run.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`esim-gateway serve` in a subprocess: sandbox mode, batching on, the apps' manifests."""
    folder = tmp_path_factory.mktemp("served")
    manifests = folder / "manifests"
    manifests.mkdir()
    (manifests / "gql.json").write_text(json.dumps({document_hash(GQL_TRUSTED): GQL_TRUSTED}))
    apollo = _apollo_manifest()
    if apollo is not None:
        (manifests / "apollo.json").write_text(apollo)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESIM_GATEWAY_")}
    env.update(
        {
            "ESIM_GATEWAY_PORT": str(port),
            "ESIM_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'ledger.db'}",
            "ESIM_GATEWAY_SANDBOX_FULFIL_DELAY": "0",
            "ESIM_GATEWAY_BATCHING": "true",
            "ESIM_GATEWAY_TRUSTED_DOCUMENTS": str(manifests),
            "ESIM_GATEWAY_RATE_LIMIT_PER_SECOND": "10000",
            "ESIM_GATEWAY_RATE_LIMIT_BURST": "10000",
            "ESIM_GATEWAY_LOG_LEVEL": "WARNING",
        }
    )
    base = f"http://127.0.0.1:{port}"
    with running(["serve"], env, f"{base}/healthz"):
        yield Served(f"{base}/graphql", f"ws://127.0.0.1:{port}/graphql", apollo is not None)


def test_apollo_client_3_runs_every_client_scenario(served: Served) -> None:
    node = node_or_skip()
    assert served.with_apollo_manifest
    run = subprocess.run(  # noqa: S603 - our own script, our own node
        [node, str(HERE / "apollo.mjs"), "run", served.http, served.ws],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in report, report.get("error")
    assert report["plans"] > 0
    # APQ: the hash alone (GET), PersistedQueryNotFound, then the text registers it ...
    first = report["apqFirst"]
    assert first[0] == {"method": "GET", "hashOnly": True, "notFound": True}
    assert len(first) == 2 and not first[1]["hashOnly"] and not first[1]["notFound"]
    # ... and afterwards the hash alone is enough
    assert report["apqAgain"] == [{"method": "GET", "hashOnly": True, "notFound": False}]
    # a trusted document: found by its hash at once, its text never sent
    assert report["trusted"] == {
        "providers": 2,
        "exchanges": [{"hashOnly": True, "notFound": False}],
    }
    assert report["order"] == {"typename": "Order", "status": "COMPLETED", "esims": 1}
    assert report["replay"] == {"typename": "Order", "sameOrder": True}
    assert report["esimNormalised"] is True
    assert report["batch"] == {"requests": 1, "operations": 2, "results": [True, True]}
    assert report["subscription"] == {"id": True, "status": "COMPLETED"}


BUY = """mutation Buy($input: CreateOrderInput!) {
  createOrder(input: $input) { __typename ... on Order { id status esims { id iccid } }
    ... on Error { message } } }"""
PLANS = """query Plans { packages(filter: {provider: ROAMIFY}, first: 20) {
  edges { node { packageId requiresTravelDate } } } }"""


async def test_python_gql_runs_the_same_scenarios(served: Served) -> None:
    transport = HTTPXAsyncTransport(url=served.http, headers=CSRF)
    async with Client(transport=transport) as session:
        plans = await session.execute(GraphQLRequest(PLANS))
        plan = next(
            e["node"] for e in plans["packages"]["edges"] if not e["node"]["requiresTravelDate"]
        )
        payload = {
            "provider": "ROAMIFY",
            "items": [{"packageId": plan["packageId"], "quantity": 1}],
            "idempotencyKey": f"gql-{uuid.uuid4().hex}",
        }
        bought = (await session.execute(GraphQLRequest(BUY, variable_values={"input": payload})))[
            "createOrder"
        ]
        assert bought["__typename"] == "Order" and bought["status"] == "COMPLETED"
        again = (await session.execute(GraphQLRequest(BUY, variable_values={"input": payload})))[
            "createOrder"
        ]
        assert again["id"] == bought["id"]
        batch = await session.execute_batch(
            [GraphQLRequest("{ __typename }"), GraphQLRequest(GQL_TRUSTED)]
        )
        assert batch[0] == {"__typename": "Query"} and len(batch[1]["catalogStatus"]) == 2

    # persisted queries: gql has no APQ link, so the protocol is spoken as Apollo's does
    async with httpx.AsyncClient(headers=CSRF) as http:
        trusted = await http.post(
            served.http, json={"documentId": f"sha256:{document_hash(GQL_TRUSTED)}"}
        )
        assert len(trusted.json()["data"]["catalogStatus"]) == 2
        document = f"query Apq{uuid.uuid4().hex} {{ __typename }}"
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(document)}}
        params = {"extensions": json.dumps(extensions)}
        missing = await http.get(served.http, params=params)
        assert missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"
        await http.post(served.http, json={"query": document, "extensions": extensions})
        assert (await http.get(served.http, params=params)).json()["data"] == {
            "__typename": "Query"
        }

    subscriptions = WebsocketsTransport(url=served.ws)
    async with Client(transport=subscriptions) as session:
        follow = "subscription($id: ID!) { orderUpdated(id: $id) { id status } }"
        async for update in session.subscribe(
            GraphQLRequest(follow, variable_values={"id": bought["id"]})
        ):
            assert update["orderUpdated"] == {"id": bought["id"], "status": "COMPLETED"}
            break
