"""The probes of graphql-cop (written here, not copied) and QUALITY.md C1-C16, against
the real ASGI app in live mode unless a probe is about the sandbox's openness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from esim_gateway.config import Settings
from tests.conftest import Gateway, GatewayFactory

KEYS = Settings.from_mapping(
    {"ESIM_GATEWAY_API_KEYS": "alice:customer:alice-key,ops:operator:ops-key"}
).api_keys
AUTH = {"authorization": "Bearer alice-key"}


@pytest.fixture
async def live(gateway_factory: GatewayFactory) -> AsyncIterator[Gateway]:
    async with gateway_factory(live=True, api_keys=KEYS, headers=AUTH) as gw:
        yield gw


async def errors_of(gw: Gateway, document: str, **kw: Any) -> list[str]:
    response = await gw.post(document, headers=AUTH, **kw)
    body = response.json()
    return [e["message"] for e in body.get("errors", [])]


async def test_c1_a_query_deeper_than_the_limit_is_refused_before_any_resolver(
    gateway: Gateway,
) -> None:
    from esim_gateway.schema import Limits, build_schema

    # The gateway's own types nest 6 deep at most (leaves are not counted), so the limit
    # (8) is shown on a schema built with a lower one: depth 5 under a limit of 4 never
    # reaches a resolver (there is no context here, so a resolver would crash).
    schema = build_schema(Limits(max_depth=4), introspection=False)
    too_deep = await schema.execute("{ orders { edges { node { items { esims { iccid } } } } } }")
    assert [e.message for e in too_deep.errors or []] == [
        "'anonymous' exceeds maximum operation depth of 4"
    ]
    deepest = (
        "{ orders { edges { node { items { esims { usage { ... on EsimUsage { iccid } } } } } } } }"
    )
    assert (await gateway.post(deepest)).json().get("errors") is None


async def test_c2_alias_overloading_is_refused(live: Gateway) -> None:
    aliases = " ".join(f"a{i}: __typename" for i in range(101))
    messages = await errors_of(live, "{ " + aliases + " }")
    assert len(messages) == 1 and "aliases" in messages[0].lower()
    assert (
        await errors_of(live, "{ " + " ".join(f"a{i}: __typename" for i in range(10)) + " }") == []
    )


async def test_c3_field_duplication_past_the_token_limit_is_refused(live: Gateway) -> None:
    messages = await errors_of(live, "{ " + "__typename " * 2500 + "}")
    assert len(messages) == 1 and "token" in messages[0].lower()


async def test_c4_directive_overloading_gives_one_error(live: Gateway) -> None:
    messages = await errors_of(live, "{ __typename " + "@aa " * 10 + "}")
    assert messages == ["At most 5 directives may be used on one field."]


async def test_c5_nested_lists_priced_past_the_cost_limit_are_refused(live: Gateway) -> None:
    costly = (
        "{ a: orders(first: 100) { edges { node { esims { iccid } items { esims {"
        " iccid } } } } } b: packages(first: 100) { edges { node { id } } } }"
    )
    messages = await errors_of(live, costly)
    assert len(messages) == 1 and "too expensive" in messages[0]
    normal = "{ orders(first: 20) { edges { node { id status esims { iccid lpa } } } } }"
    assert await errors_of(live, normal) == []


async def test_c6_first_is_capped(live: Gateway) -> None:
    messages = await errors_of(live, "{ packages(first: 99999999) { totalCount } }")
    assert messages and "between 1 and 100" in messages[0]


async def test_c7_array_batching_is_off(live: Gateway) -> None:
    response = await live.http.post(
        "/graphql",
        content=orjson.dumps([{"query": "{ __typename }"}] * 3),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 400 and "batching" in response.text.lower()


async def test_c8_introspection_is_off_in_live_mode_but_typename_works(live: Gateway) -> None:
    for probe in ("{ __schema { types { name } } }", '{ __type(name: "Order") { name } }'):
        messages = await errors_of(live, probe)
        assert messages and "introspection" in messages[0].lower()
    assert await errors_of(live, "{ __typename }") == []


async def test_c9_no_field_suggestions_in_live_mode(live: Gateway) -> None:
    messages = await errors_of(live, "{ packagez { totalCount } }")
    assert messages and not any("Did you mean" in m for m in messages)
    assert not any("packages" in m for m in messages)


async def test_c10_no_graphiql_in_live_mode(live: Gateway) -> None:
    response = await live.http.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 404


async def test_c10_graphiql_is_served_in_the_sandbox(gateway: Gateway) -> None:
    response = await gateway.http.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()


async def test_c11_unexpected_errors_are_masked_and_logged_with_the_original(
    live: Gateway, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esim_gateway.resolvers import orders

    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret sk_live_leaky in a stack")

    monkeypatch.setattr(orders, "list_orders", explode)
    response = await live.post("{ orders { edges { cursor } } }", headers=AUTH)
    assert response.json()["errors"][0]["message"] == "Unexpected error."
    assert "sk_live_leaky" not in response.text and "Traceback" not in response.text


async def test_c12_get_serves_queries_only_and_needs_the_csrf_header(live: Gateway) -> None:
    plain = await live.http.get("/graphql", params={"query": "{ __typename }"}, headers=AUTH)
    assert plain.status_code == 400 and "csrf" in plain.text.lower()
    allowed = await live.http.get(
        "/graphql", params={"query": "{ __typename }"}, headers={**AUTH, "x-graphql-csrf": "1"}
    )
    assert allowed.status_code == 200 and allowed.json()["data"] == {"__typename": "Query"}
    mutation = await live.http.get(
        "/graphql",
        params={"query": 'mutation { cancelOrder(input: {orderId: "x"}) { __typename } }'},
        headers={**AUTH, "x-graphql-csrf": "1"},
    )
    assert mutation.status_code in (400, 405)


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"],
)
async def test_c13_only_json_is_accepted_on_post(live: Gateway, content_type: str) -> None:
    response = await live.http.post(
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={**AUTH, "content-type": content_type},
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    "body",
    [b'{"query": "{ __typename }"', b"", b"\xff\xfe", rb'{"query": "\ud800"}', b"NaN"],
)
async def test_a_body_that_is_not_json_is_a_clear_400(live: Gateway, body: bytes) -> None:
    response = await live.http.post(
        "/graphql", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Unable to parse request body as JSON"


@pytest.mark.parametrize("body", [b"42", b'"{ __typename }"', b"null", b"true", b"[1]"])
async def test_json_that_is_not_a_request_is_a_clear_400(live: Gateway, body: bytes) -> None:
    response = await live.http.post(
        "/graphql", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_body_past_the_size_limit_is_refused(live: Gateway) -> None:
    response = await live.http.post(
        "/graphql",
        content=b'{"query": "' + b" " * 200_000 + b'{ __typename }"}',
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_c15_circular_introspection_is_refused(gateway: Gateway) -> None:
    circular = (
        "{ __schema { types { fields { type { fields { type { fields { type {"
        " fields { type { name } } } } } } } } } } }"
    )
    response = await gateway.post(circular)
    messages = [e["message"] for e in response.json()["errors"]]
    assert any("introspection" in m.lower() or "depth" in m.lower() for m in messages)


async def test_c16_a_hanging_provider_cannot_hold_a_request_past_its_deadline(
    gateway_factory: GatewayFactory,
) -> None:
    """R4 too: it ends within the deadline + 100 ms with a typed error, and leaves no
    task behind (the hanging provider calls are cancelled with it)."""
    import asyncio
    import time

    async with gateway_factory(live=True, api_keys=KEYS, headers=AUTH, order_deadline=0.5) as gw:
        await gw.post("{ __typename }", headers=AUTH)  # everything the app starts, started
        before = asyncio.all_tasks()
        gw.roamify.control.faults.arm("GET", "/api/esim/packages", hang=True, times=None)
        gw.simplifytrip.control.faults.arm("GET", "/api/v1/products", hang=True, times=None)
        deadline = gw.app.state.settings.order_deadline + 5.0  # the view's request deadline
        started = time.perf_counter()
        response = await gw.post("{ packages(first: 5) { totalCount } }", headers=AUTH)
        elapsed = time.perf_counter() - started
        assert elapsed <= deadline + 0.1
        if response.status_code == 504:
            assert response.json()["errors"][0]["extensions"]["code"] == "DEADLINE_EXCEEDED"
        else:
            assert response.status_code == 200 and response.json()["data"]["packages"]
        await asyncio.sleep(0)  # let cancelled tasks finish unwinding
        leftover = asyncio.all_tasks() - before - {asyncio.current_task()}
        assert not leftover, leftover
