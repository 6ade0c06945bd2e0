"""The Roamify simulator, runnable alone or mounted by the gateway in sandbox mode.

sandbox = create_roamify_sandbox()
sandbox.app                      # Starlette app: /api/esim/..., /api/balance, /api/health,
                                 # /_sandbox/calls, /_sandbox/faults
sandbox.state                    # orders, eSIMs, balance, catalog; knobs install(),
                                 # consume(), set_status(), credit()
sandbox.control.faults.arm("POST", "/api/esim/order", status=500, body={...})
sandbox.control.calls.count("POST", "/api/esim/order")
await sandbox.settle()           # deliver pending webhooks now
await sandbox.aclose()           # cancel what is still pending; save the state

With `store` (a `SandboxStore`, see persistence.py) the state is restored from it and
saved to it; without, it lives in memory only (tests build thousands of simulators).

Every route except `/_sandbox/*` needs `Authorization: Bearer <token>` (default
`sandbox-roamify-token`). With `webhook_url`, signed webhooks (`X-Roamify-Signature`,
lowercase hex HMAC-SHA256 of the raw body with `webhook_secret`) are POSTed in background
tasks, retried up to 3 times on a non-2xx answer or a transport error, and recorded in
`state.webhook_deliveries` (url, body, status, attempt). The contract choices the
simulator makes where providers.md is silent are listed in `app.py`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import httpx
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
    json_response,
    route_templates,
)
from esim_gateway.sandbox.persistence import SandboxStore, StoreMiddleware
from esim_gateway.sandbox.roamify.app import UNAUTHORIZED, routes
from esim_gateway.sandbox.roamify.catalog import build_catalog
from esim_gateway.sandbox.roamify.state import RoamifyState
from esim_gateway.signatures import roamify_signature

__all__ = ["RoamifySandbox", "RoamifyState", "app_factory", "create_roamify_sandbox"]


@dataclass
class RoamifySandbox:
    app: Starlette
    state: RoamifyState
    control: SandboxControl
    webhooks: WebhookSender
    store: SandboxStore | None = None

    async def settle(self) -> None:
        """Await every pending background job (webhook deliveries and their retries)."""
        await self.webhooks.settle()

    async def aclose(self) -> None:
        """Cancel pending deliveries; close the webhook client if the sandbox made it;
        save the state to its store."""
        await self.webhooks.aclose()
        if self.store is not None:
            self.store.close()


def create_roamify_sandbox(
    *,
    token: str = "sandbox-roamify-token",
    webhook_url: str | None = None,
    webhook_secret: str = "sandbox-roamify-webhook-secret",
    webhook_client: httpx.AsyncClient | None = None,
    seed: int = 7,
    initial_balance: Decimal = Decimal("10000.00"),
    packages_per_country: int | None = None,
    clock: Callable[[], float] = time.time,
    store: SandboxStore | None = None,
) -> RoamifySandbox:
    state = RoamifyState(build_catalog(seed, packages_per_country), initial_balance, clock)
    if store is not None:
        store.attach("roamify", state.snapshot, state.restore)
    control = SandboxControl()
    sender = WebhookSender(
        webhook_url,
        webhook_client,
        lambda body: {"X-Roamify-Signature": roamify_signature(body, webhook_secret)},
    )
    state.webhook_deliveries = sender.deliveries
    state.emit = lambda category, kind, data: sender.send(
        {"event_category": category, "event_type": kind, "data": data}
    )
    expected = token.encode()

    def check(request: Request) -> Response | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        given = value.strip().encode()
        if scheme.lower() != "bearer" or not given or not hmac.compare_digest(given, expected):
            return json_response({"message": UNAUTHORIZED, "status": "failed"}, 401)
        return None

    api = routes()
    middleware = [
        Middleware(FaultMiddleware, control=control, templates=route_templates(api)),
        Middleware(BearerAuth, check=check),
    ]
    if store is not None:
        middleware.insert(0, Middleware(StoreMiddleware, store=store, on_first_call=_nothing))
    app = Starlette(routes=[*control_routes(control), *api], middleware=middleware)
    app.state.roamify = state
    return RoamifySandbox(app, state, control, sender, store)


def _nothing() -> None:
    """Roamify keeps no timers: nothing to re-arm after a restart."""


def app_factory() -> Starlette:
    """A default simulator (`esim-gateway sandbox`, `uvicorn --factory`)."""
    return create_roamify_sandbox().app
