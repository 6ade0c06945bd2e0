"""A request's state is freed by reference counting when it ends, not left in reference
cycles for the cyclic collector (issue 12, 'execution'): graphql-core's executor kept its
async helpers as its own bound methods, so every execution's context, loaders and results
(~85 objects) waited for a collection, and those leftovers triggered one every ~8
requests, ~10 % of an `order(id)`'s CPU."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import orjson
from starlette.types import Message

from esim_gateway.context import Context
from esim_gateway.dataloaders.loaders import Loaders, build_loaders
from esim_gateway.http.auth import DEMO_PRINCIPAL
from esim_gateway.schema import build_schema
from esim_gateway.schema.execution import AttributeFieldsExecutionContext, _track
from tests.api.test_ordering import buy
from tests.conftest import Gateway

ORDER = """query One($id: ID!) { order(id: $id) { __typename ... on Order { id status
  items { packageId quantity } } ... on Error { message } } }"""


#: what a request's execution builds: none of it may be left for the cyclic collector
REQUEST_STATE = (Context, Loaders, AttributeFieldsExecutionContext)


async def request_state_in_cycles(run: Any, times: int) -> list[str]:
    """The request state the cyclic collector finds after `times` runs (other garbage,
    e.g. from another app's background work in this process, is not counted)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(times):
            await run()
        gc.collect()
        return [type(o).__name__ for o in gc.garbage if isinstance(o, REQUEST_STATE)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_executing_an_order_read_leaves_no_cyclic_garbage(gateway: Gateway) -> None:
    order_id = (await buy(gateway, "ROAMIFY"))["id"]
    schema = build_schema()
    services = gateway.services

    async def read() -> None:
        context = Context(
            services=services,
            principal=DEMO_PRINCIPAL,
            loaders=build_loaders(services.providers, services.ledger),
        )
        result = await schema.execute(ORDER, {"id": order_id}, context_value=context)
        assert result.errors is None and result.data["order"]["id"] == order_id  # type: ignore[index]

    await request_state_in_cycles(read, 3)  # caches filled, pools opened
    # before: a context, its loaders and an executor per execution
    assert await request_state_in_cycles(read, 20) == []


async def test_an_http_request_through_the_app_leaves_no_cyclic_garbage(
    gateway: Gateway,
) -> None:
    """Driven with ASGI messages, as a server does: a test client's own objects (httpx's
    response and its stream refer to each other) are not counted."""
    body = orjson.dumps(
        {"query": ORDER, "variables": {"id": (await buy(gateway, "ROAMIFY"))["id"]}}
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def ask() -> None:
        sent: list[Message] = []
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if delivered:  # pragma: no cover - the endpoint reads the body once
                await asyncio.Event().wait()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await gateway.app(dict(scope), receive, send)
        assert sent[0]["status"] == 200 and b'"errors"' not in sent[1]["body"]

    await request_state_in_cycles(ask, 3)
    assert await request_state_in_cycles(ask, 20) == []


async def test_late_async_work_is_settled_after_its_execution_ended() -> None:
    """`_track` holds the executor weakly; work handed to it afterwards still runs."""
    ran = asyncio.Event()

    async def late() -> None:
        ran.set()

    class Gone:
        pass

    executor: weakref.ref[Any] = weakref.ref(Gone())  # already collected
    assert executor() is None
    _track(executor, [late(), 42])
    await asyncio.wait_for(ran.wait(), 1.0)
