"""Every error a client can receive carries `extensions.code` from one list (`ErrorCode`,
docs/errors.md): each path walked over HTTP, the document's own errors over WebSocket
too, and each logged at the level of whose fault it is."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets import ConnectionClosed, Subprotocol
from websockets.asyncio.client import connect

from esim_gateway import errors
from esim_gateway.config import Settings
from esim_gateway.http.persisted import document_hash
from esim_gateway.schema.errors import ErrorCode
from tests.api.test_live_updates import serve
from tests.conftest import Gateway, GatewayFactory, make_sandboxes, written_lines

KEYS = Settings.from_mapping({"ESIM_GATEWAY_API_KEYS": "alice:customer:alice-key"}).api_keys
AUTH = {"authorization": "Bearer alice-key"}
CSRF = {"x-graphql-csrf": "1"}
VARIABLE = "query Plans($n: Int!) { packages(first: $n) { totalCount } }"

#: documents refused before anything runs: (what is wrong, document, variables, code)
DOCUMENT_ERRORS: list[tuple[str, str, dict[str, Any] | None, ErrorCode]] = [
    ("a syntax error", "{ packages(", None, ErrorCode.GRAPHQL_PARSE_FAILED),
    ("too many tokens", "{ " + "__typename " * 2500 + "}", None, ErrorCode.GRAPHQL_PARSE_FAILED),
    ("an unknown field", "{ nope }", None, ErrorCode.GRAPHQL_VALIDATION_FAILED),
    (
        "too deep",
        "{ __schema { types { fields { type { fields { type { fields { type {"
        " fields { type { name } } } } } } } } } } }",
        None,
        ErrorCode.GRAPHQL_VALIDATION_FAILED,
    ),
    (
        "too many aliases",
        "{ " + " ".join(f"a{i}: __typename" for i in range(16)) + " }",
        None,
        ErrorCode.GRAPHQL_VALIDATION_FAILED,
    ),
    (
        "too many directives",
        "{ __typename " + "@skip(if: false) " * 6 + "}",
        None,
        ErrorCode.GRAPHQL_VALIDATION_FAILED,
    ),
    (
        "too expensive",
        "{ a: orders(first: 100) { edges { node { esims { iccid } items { esims {"
        " iccid } } } } } b: packages(first: 100) { edges { node { id } } } }",
        None,
        ErrorCode.GRAPHQL_VALIDATION_FAILED,
    ),
    ("a variable of the wrong type", VARIABLE, {"n": "ten"}, ErrorCode.BAD_USER_INPUT),
    ("a missing variable", VARIABLE, None, ErrorCode.BAD_USER_INPUT),
]

#: invalid arguments, refused by their resolver: (document, the argument's path)
ARGUMENT_ERRORS = [
    ('{ packages(filter: { country: "Japan" }) { totalCount } }', "filter.country"),
    ("{ packages(first: 1000) { totalCount } }", "first"),
    ("{ orders(first: 1000) { edges { cursor } } }", "first"),
    ('{ bestOffers(country: "JP", days: 0, dataMb: 1) { reasons } }', "days"),
]


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


async def test_each_refused_document_has_the_code_of_what_is_wrong_with_it(
    gateway: Gateway,
) -> None:
    for wrong, document, variables, code in DOCUMENT_ERRORS:
        response = await gateway.post(document, variables)
        body = response.json()
        assert response.status_code == 200 and body["data"] is None, wrong
        assert codes(body) == [code], wrong
    missing = (await gateway.post(VARIABLE)).json()["errors"][0]
    assert missing["extensions"] == {"code": "BAD_USER_INPUT", "variable": "n"}


async def test_an_invalid_argument_is_bad_user_input_naming_the_argument(
    gateway: Gateway,
) -> None:
    for document, argument in ARGUMENT_ERRORS:
        body = (await gateway.post(document)).json()
        assert body["data"] is None, document
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}, document
    assert await gateway.upstream_calls() == 0


async def test_introspection_in_live_mode_is_a_validation_failure(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(live=True, api_keys=KEYS, headers=AUTH) as gw:
        body = (await gw.post("{ __schema { types { name } } }", headers=AUTH)).json()
    assert body["data"] is None and set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "introspection" in body["errors"][0]["message"].lower()


async def test_each_refused_request_has_the_code_of_its_refusal(gateway: Gateway) -> None:
    http = gateway.http
    refusals: list[tuple[str, httpx.Response, int, ErrorCode]] = [
        (
            "a GET without a CSRF header",
            await http.get("/graphql", params={"query": "{ __typename }"}),
            400,
            ErrorCode.CSRF_HEADER_REQUIRED,
        ),
        (
            "a POST that is not JSON",
            await http.post("/graphql", content=b"{}", headers={"content-type": "text/plain"}),
            415,
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "a body that does not parse",
            await http.post(
                "/graphql", content=b"{not json", headers={"content-type": "application/json"}
            ),
            400,
            ErrorCode.BAD_REQUEST,
        ),
        (
            "a batch, batching being off",
            await http.post("/graphql", json=[{"query": "{ __typename }"}] * 2),
            400,
            ErrorCode.BAD_REQUEST,
        ),
        (
            "an operation the document does not have",
            await http.post(
                "/graphql", json={"query": "query A { __typename }", "operationName": "B"}
            ),
            400,
            ErrorCode.BAD_REQUEST,
        ),
        (
            "a mutation over GET",
            await http.get(
                "/graphql",
                params={
                    "query": 'mutation { cancelOrder(input: { orderId: "x" }) { __typename } }'
                },
                headers=CSRF,
            ),
            405,
            ErrorCode.METHOD_NOT_ALLOWED,
        ),
        (
            "a body past the size limit",
            await http.post(
                "/graphql",
                content=b'{"query": "' + b" " * 200_000 + b'{ __typename }"}',
                headers={"content-type": "application/json"},
            ),
            413,
            ErrorCode.BODY_TOO_LARGE,
        ),
        (
            "an If-None-Match that is not one",
            await http.get(
                "/graphql",
                params={"query": "{ __typename }"},
                headers={**CSRF, "if-none-match": "no quotes"},
            ),
            400,
            ErrorCode.BAD_IF_NONE_MATCH,
        ),
        (
            "an APQ hash the gateway does not know",
            await http.post(
                "/graphql",
                json={
                    "extensions": {
                        "persistedQuery": {"version": 1, "sha256Hash": document_hash("{ x }")}
                    }
                },
            ),
            200,
            ErrorCode.PERSISTED_QUERY_NOT_FOUND,
        ),
    ]
    for what, response, status, code in refusals:
        assert (response.status_code, codes(response.json())) == (status, [code]), what


async def test_a_caller_without_credentials_is_unauthenticated(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(api_keys=KEYS) as gw:
        response = await gw.post("{ __typename }")
    assert response.status_code == 401 and codes(response.json()) == ["UNAUTHENTICATED"]


async def test_a_caller_past_its_rate_is_rate_limited(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(rate_limit_per_second=0.001, rate_limit_burst=1) as gw:
        assert (await gw.post("{ __typename }")).status_code == 200
        response = await gw.post("{ __typename }")
    assert response.status_code == 429 and codes(response.json()) == ["RATE_LIMITED"]


async def test_a_batch_past_its_size_is_refused_with_its_code(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(batching=True, batch_max_operations=2) as gw:
        response = await gw.http.post("/graphql", json=[{"query": "{ __typename }"}] * 3)
    assert response.status_code == 400 and codes(response.json()) == ["BATCH_TOO_LARGE"]


#: what a resolver may raise outside a result union, and the code the client then gets
FIELD_FAILURES: list[tuple[Exception, ErrorCode]] = [
    (errors.Forbidden("Operators only."), ErrorCode.FORBIDDEN),
    (errors.Unauthenticated("Who are you?"), ErrorCode.UNAUTHENTICATED),
    (errors.ResourceNotFound("No such thing."), ErrorCode.NOT_FOUND),
    (errors.ProviderUnavailable("roamify", "Timed out."), ErrorCode.PROVIDER_ERROR),
    (KeyError("a bug"), ErrorCode.INTERNAL_SERVER_ERROR),
]


async def test_a_failure_outside_a_result_union_has_the_code_of_its_kind(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esim_gateway.resolvers import orders

    for failure, code in FIELD_FAILURES:

        async def fail(*args: Any, failure: Exception = failure, **kwargs: Any) -> Any:
            raise failure

        monkeypatch.setattr(orders, "list_orders", fail)
        body = (await gateway.post("{ orders { edges { cursor } } }")).json()
        assert body["data"] is None and codes(body) == [code], failure


async def test_an_unexpected_failure_is_masked_and_keeps_its_code(
    gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esim_gateway.resolvers import orders

    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug with sk_live_leaky in it")

    monkeypatch.setattr(orders, "list_orders", explode)
    async with gateway_factory(live=True, api_keys=KEYS, headers=AUTH) as gw:
        body = (await gw.post("{ orders { edges { cursor } } }", headers=AUTH)).json()
    (error,) = body["errors"]
    assert error["message"] == "Unexpected error." and error["path"] == ["orders"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}


async def _subscribe(base: str, document: str, variables: dict[str, Any] | None) -> Any:
    """One graphql-transport-ws subscription: the first message answering it, or the
    code the server closed the connection with."""
    async with connect(
        f"ws://{base}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": document, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        try:
            return json.loads(await ws.recv())
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    async with serve(settings, sandboxes=make_sandboxes()) as base:
        yield base


async def test_over_websocket_the_same_mistakes_have_the_same_codes(served: str) -> None:
    subscription = "subscription S($id: ID!) { orderUpdated(id: $id) { status } }"
    mistakes: list[tuple[str, str, dict[str, Any] | None, ErrorCode]] = [
        ("an unknown field", "subscription { nope }", None, ErrorCode.GRAPHQL_VALIDATION_FAILED),
        (
            "too many aliases",
            'subscription { orderUpdated(id: "x") { '
            + " ".join(f"a{i}: __typename" for i in range(16))
            + " } }",
            None,
            ErrorCode.GRAPHQL_VALIDATION_FAILED,
        ),
        ("a variable of the wrong type", subscription, {"id": [1]}, ErrorCode.BAD_USER_INPUT),
    ]
    for what, document, variables, code in mistakes:
        message = await _subscribe(served, document, variables)
        assert message["type"] == "error", what
        assert [e["extensions"]["code"] for e in message["payload"]] == [code], what
    # an invalid argument ends the subscription's field: an error in its result
    message = await _subscribe(served, subscription, {"id": "not an order id"})
    (error,) = message["payload"]["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "id"}
    # the protocol's answer to a document that does not parse: the connection closed
    # with 4400 (graphql-ws clients report it as such), the error logged at INFO
    with written_lines() as stream:
        closed = await _subscribe(served, "subscription { orderUpdated(", None)
    assert closed == 4400
    (line,) = graphql_lines(stream.getvalue())
    assert (line["level"], line["code"]) == ("info", "GRAPHQL_PARSE_FAILED")


def test_docs_errors_md_explains_every_code_and_no_other() -> None:
    text = (Path(__file__).parents[2] / "docs" / "errors.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", text, re.MULTILINE))
    assert documented == {code.value for code in ErrorCode}


def graphql_lines(output: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in output.splitlines()]
    return [line for line in lines if line["event"] == "graphql error"]


async def test_a_client_mistake_is_logged_at_info_without_a_stack(gateway: Gateway) -> None:
    mistakes = [
        ("{ packages(", "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        ('{ packages(filter: { country: "Japan" }) { totalCount } }', "BAD_USER_INPUT"),
    ]
    for document, code in mistakes:
        with written_lines() as stream:
            await gateway.post(document)
        (line,) = graphql_lines(stream.getvalue())
        assert (line["level"], line["code"]) == ("info", code), document
        assert "exception" not in line and "Traceback" not in stream.getvalue(), document


async def test_the_servers_own_fault_is_logged_at_error_with_its_stack(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esim_gateway.resolvers import orders

    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(orders, "list_orders", explode)
    with written_lines() as stream:
        await gateway.post("{ orders { edges { cursor } } }")
    (line,) = graphql_lines(stream.getvalue())
    assert (line["level"], line["code"]) == ("error", "INTERNAL_SERVER_ERROR")
    assert "Traceback" in line["exception"] and "ZeroDivisionError" in line["exception"]
