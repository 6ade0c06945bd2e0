"""The SimplifyTrip merchant-API simulator, runnable alone or mounted by the gateway.

sandbox = create_simplifytrip_sandbox(fulfil_delay=2.0)
sandbox.app                      # Starlette app: /api/v1/...
sandbox.state                    # wallet, orders, eSIMs; knobs fail_next_order(),
                                 # install(), consume(), advance_sim_order(), advance_return()
sandbox.control.faults.arm("POST", "/api/v1/orders", drop_after_commit=True)
await sandbox.settle()           # fulfil what is PROCESSING now, deliver webhooks
await sandbox.aclose()           # cancel timers and deliveries; save the state

With `store` (a `SandboxStore`, see persistence.py) the state is restored from it and
saved to it; an eSIM order restored PROCESSING is fulfilled at its due time (its timer is
re-armed at the simulator's first call, and any read after that time fulfils it).
Without a store the state lives in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from esim_gateway.sandbox._kit import (
    BearerAuth,
    FaultMiddleware,
    SandboxControl,
    WebhookSender,
    control_routes,
    route_templates,
)
from esim_gateway.sandbox.persistence import SandboxStore, StoreMiddleware
from esim_gateway.sandbox.simplifytrip.app import error, routes
from esim_gateway.sandbox.simplifytrip.catalog import RECHARGE_ICCIDS, build_catalog
from esim_gateway.sandbox.simplifytrip.state import SimplifyTripState, StOrder, iso
from esim_gateway.signatures import simplifytrip_signature

__all__ = [
    "RECHARGE_ICCIDS",
    "SimplifyTripSandbox",
    "SimplifyTripState",
    "app_factory",
    "create_simplifytrip_sandbox",
]


@dataclass
class SimplifyTripSandbox:
    app: Starlette
    state: SimplifyTripState
    control: SandboxControl
    webhooks: WebhookSender
    store: SandboxStore | None = None
    _timers: set[asyncio.Task[None]] = field(default_factory=set)

    def schedule_fulfilment(self, order: StOrder, delay: float | None = None) -> None:
        if order.status != "PROCESSING":
            return

        async def later() -> None:
            await asyncio.sleep(self.state.fulfil_delay if delay is None else delay)
            self.state.fulfil(order)
            if self.store is not None:
                self.store.changed()

        task = asyncio.get_running_loop().create_task(later())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def resume(self) -> None:
        """Re-arm the fulfilment of orders restored PROCESSING, for what remains of their
        delay (on a running loop: the store's middleware calls it at the first call)."""
        now = self.state.clock()
        for order in list(self.state.orders.values()):
            if order.status == "PROCESSING" and order.due_at is not None:
                remaining = min(self.state.fulfil_delay, max(0.0, order.due_at - now))
                self.schedule_fulfilment(order, remaining)

    async def settle(self) -> None:
        """As if every fulfilment delay had passed: complete and deliver everything now."""
        for order in list(self.state.orders.values()):
            self.state.fulfil(order)
        await self.webhooks.settle()

    async def aclose(self) -> None:
        for task in list(self._timers):
            task.cancel()
        for task in list(self._timers):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.webhooks.aclose()
        if self.store is not None:
            self.store.close()


def create_simplifytrip_sandbox(
    *,
    api_key: str = "pk_test_sandbox",
    secret_key: str = "sk_test_sandbox",
    checksum_key: str = "ck_test_sandbox",
    webhook_url: str | None = None,
    webhook_client: Any = None,
    fulfil_delay: float = 2.0,
    seed: int = 11,
    initial_balance: int = 500_000_000,
    products_per_country: int | None = None,
    clock: Callable[[], float] = time.time,
    store: SandboxStore | None = None,
) -> SimplifyTripSandbox:
    state = SimplifyTripState(
        build_catalog(seed, products_per_country), initial_balance, clock, fulfil_delay
    )
    if store is not None:
        store.attach("simplifytrip", state.snapshot, state.restore)
    control = SandboxControl()

    def sign(body: bytes) -> dict[str, str]:
        return {
            "x-simplify-trip-signature": simplifytrip_signature(orjson.loads(body), checksum_key)
        }

    sender = WebhookSender(webhook_url, webhook_client, sign, retry_4xx=False)
    state.webhook_deliveries = sender.deliveries

    def emit(kind: str, data: dict[str, Any]) -> None:
        now = iso(clock())
        sender.send(
            {
                "id": str(uuid.uuid4()),
                "type": kind,
                "createdAt": now,
                "sentDate": now,
                "mode": "TEST_MODE",
                "data": data,
            }
        )

    state.emit = emit

    def check(request: Request) -> Response | None:
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        if (
            request.headers.get("x-api-key") != api_key
            or scheme.lower() != "bearer"
            or secret.strip() != secret_key
        ):
            return error(401, "API key is missing, expired or invalid")
        return None

    api = routes()
    middleware = [
        Middleware(FaultMiddleware, control=control, templates=route_templates(api)),
        Middleware(BearerAuth, check=check),
    ]
    if store is not None:

        def resume() -> None:  # `sandbox` is bound below, before any call can arrive
            sandbox.resume()

        middleware.insert(0, Middleware(StoreMiddleware, store=store, on_first_call=resume))
    app = Starlette(routes=[*control_routes(control), *api], middleware=middleware)
    sandbox = SimplifyTripSandbox(app, state, control, sender, store)
    app.state.simplifytrip = state
    app.state.checksum_key = checksum_key
    app.state.schedule_fulfilment = sandbox.schedule_fulfilment
    return sandbox


def app_factory() -> Starlette:
    return create_simplifytrip_sandbox().app
