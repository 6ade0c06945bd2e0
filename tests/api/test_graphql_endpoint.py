"""GraphQL over HTTP as the app serves it: GET and POST /graphql take a short way past
Starlette's middleware and router, and still carry the request id, write the one access
line, answer a plain 500 on an unexpected failure; everything else takes Starlette's way."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from strawberry.schema.config import StrawberryConfig

from esim_gateway.app import create_app
from esim_gateway.config import Settings
from esim_gateway.http.endpoint import MAX_BODY
from esim_gateway.http.view import GatewayGraphQL
from esim_gateway.schema import GatewaySchema, build_schema
from esim_gateway.schema.root import Query
from tests.conftest import Gateway, gateway_settings, make_sandboxes, written_lines


def access_lines(logged: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in logged.splitlines()]
    return [line for line in lines if line.get("logger") == "esim_gateway.access"]


async def test_a_graphql_answer_carries_the_request_id_and_writes_one_access_line(
    gateway: Gateway,
) -> None:
    with written_lines() as stream:
        response = await gateway.http.post(
            "/graphql",
            json={"query": "query Hello { __typename }"},
            headers={"x-request-id": "abc-123"},
        )
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}
    assert response.headers["x-request-id"] == "abc-123"
    (line,) = access_lines(stream.getvalue())
    assert line["event"] == "request" and line["level"] == "info"
    assert {k: line[k] for k in ("method", "path", "status", "request_id", "operation")} == {
        "method": "POST",
        "path": "/graphql",
        "status": 200,
        "request_id": "abc-123",
        "operation": "Hello",
    }
    assert line["principal"] == "sandbox-demo" and line["provider_calls"] == 0
    assert isinstance(line["ms"], float) and isinstance(line["provider_ms"], float)


async def test_every_graphql_answer_carries_a_request_id_refusals_too(gateway: Gateway) -> None:
    refused = await gateway.http.get("/graphql", params={"query": "{ __typename }"})
    assert refused.status_code == 400  # no CSRF header
    assert len(refused.headers["x-request-id"]) == 32
    assert refused.headers["cache-control"] == "private, no-store"


async def test_graphql_requests_are_counted_in_the_request_metrics(gateway: Gateway) -> None:
    for _ in range(3):
        await gateway.post("{ __typename }")
    text = (await gateway.http.get("/metrics")).text
    count = next(
        line
        for line in text.splitlines()
        if line.startswith('http_request_seconds_count{route="/graphql"}')
    )
    assert float(count.split()[-1]) >= 3
    assert "gateway_overhead_seconds_count" in text


async def test_other_methods_on_graphql_are_refused_as_before(gateway: Gateway) -> None:
    put = await gateway.http.put("/graphql", json={"query": "{ __typename }"})
    assert put.status_code == 405 and put.text == "Method Not Allowed"
    assert {"GET", "POST"} <= {m.strip() for m in put.headers["allow"].split(",")}
    assert len(put.headers["x-request-id"]) == 32
    head = await gateway.http.head("/graphql")  # the route lets HEAD through to the view
    assert head.status_code == 405


async def test_a_body_streamed_past_the_limit_is_refused_without_a_declared_length(
    gateway: Gateway,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "'
        for _ in range(MAX_BODY // 4096 + 2):
            yield b" " * 4096
        yield b'{ __typename }"}'

    response = await gateway.http.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"


async def test_an_app_under_a_root_path_still_answers_graphql(gateway: Gateway) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app, root_path="/api"),
        base_url="http://gateway.test",
    ) as client:
        response = await client.post("/api/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}
    assert len(response.headers["x-request-id"]) == 32


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unexpected_failure_is_a_coded_500_with_no_secret(database_url: str) -> None:
    # the shared rate limiter's Redis is down: nothing the endpoint answers itself
    url = f"redis://:s3cret-redis-pass@127.0.0.1:{_closed_port()}/0"
    settings = gateway_settings(database_url, rate_limit_redis_url=url)
    app = create_app(settings, sandboxes=make_sandboxes(), catalog_refresh=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            with written_lines() as stream:
                response = await http.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 500
    assert response.json() == {
        "errors": [
            {"message": "Internal Server Error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        ]
    }
    assert response.headers["content-type"] == "application/json"
    assert len(response.headers["x-request-id"]) == 32
    assert "s3cret" not in response.text
    (line,) = access_lines(stream.getvalue())
    assert line["status"] == 500 and line["request_id"] == response.headers["x-request-id"]


def test_a_view_hook_the_endpoint_does_not_call_refuses_to_build() -> None:
    class Rewriting(GatewayGraphQL):
        async def process_result(self, request: Any, result: Any) -> Any:
            return {"data": "rewritten"}  # would apply to WebSockets only

    with pytest.raises(TypeError, match="would ignore an override of process_result"):
        Rewriting(build_schema(), settings=Settings())
    assert GatewayGraphQL(build_schema(), settings=Settings()).http is not None


def test_strawberrys_batching_config_refuses_to_build() -> None:
    schema = GatewaySchema(
        query=Query, config=StrawberryConfig(batching_config={"max_operations": 5})
    )
    with pytest.raises(TypeError, match="batching_config"):
        GatewayGraphQL(schema, settings=Settings())
