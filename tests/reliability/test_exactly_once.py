"""R1/R2/R6/R8: purchases stay exactly-once under random faults and gateway restarts.

Hypothesis drives purchases through the whole stack (GraphQL -> ledger -> driver ->
adapters -> simulators) with faults armed on the provider endpoints: latency, 5xx, 429,
a hang past the client timeout, commit-then-drop-the-response, and a gateway restart
(its purchase drivers cancelled mid-call). After reconciliation, for every idempotency
key the provider holds at most one order, every order is settled, and the ledger and
the provider agree.

The Roamify simulator accepts a repeated referenceId (its real behaviour is unknown),
so a gateway that re-sent a purchase without looking it up first would be caught here.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esim_gateway.app import Sandboxes, create_app
from esim_gateway.config import Settings
from esim_gateway.domain import OrderState, ProviderName
from esim_gateway.ledger.orders import NewOrder, Step
from esim_gateway.providers._http import Timeouts
from esim_gateway.providers.registry import BreakerState
from esim_gateway.purchasing.driver import PurchaseDriver
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox
from tests.api.test_ordering import a_package
from tests.conftest import Gateway, migrated_sqlite_url

# every order moves only along the purchase state table's lines
pytestmark = pytest.mark.usefixtures("declared_moves_only")

CREATE = """mutation($input: CreateOrderInput!) { createOrder(input: $input) { __typename
  ... on Order { id status } ... on ProviderError { retryable statusCode } } }"""

ENDPOINTS = {
    ProviderName.ROAMIFY: [
        ("POST", "/api/esim/order"),
        ("GET", "/api/esim/order"),
        ("POST", "/api/esim/apply"),
    ],
    ProviderName.SIMPLIFYTRIP: [("POST", "/api/v1/orders"), ("GET", "/api/v1/orders/{id}")],
}
FAULTS = st.sampled_from(
    [
        {},
        {"latency": 0.05},
        {"status": 500, "body": {"message": "Unknown error", "status": "failed"}},
        {
            "status": 503,
            "body": {"statusCode": 503, "errorCode": "SERVICE_UNAVAILABLE", "message": "busy"},
        },
        {"status": 429, "retry_after": 0, "body": {"message": "slow down"}},
        {"hang": True},
        {"drop_after_commit": True},
        # slow providers: a purchase that commits after our timeout, a commit followed by
        # a 500, reads that lag writes (the quiet period below outlasts each of them)
        {"commit_late": 0.3},
        {"status": 500, "body": {"message": "Unknown error"}, "commit_then_status": True},
        {"drop_after_commit": True, "read_lag": 0.25},
        {
            "status": 500,
            "body": {"message": "Unknown error"},
            "commit_then_status": True,
            "read_lag": 0.25,
        },
    ]
)


@dataclass
class Attempt:
    key: int
    endpoint: int
    fault: dict[str, Any]
    restart_after: bool


ATTEMPTS = st.lists(
    st.builds(
        Attempt,
        key=st.integers(0, 2),
        endpoint=st.integers(0, 2),
        fault=FAULTS,
        restart_after=st.sampled_from([False, False, False, True]),
    ),
    min_size=1,
    max_size=6,
)


async def post_create(
    client: httpx.AsyncClient, provider: ProviderName, package_id: str, key: str
) -> dict[str, Any]:
    """One `createOrder` of one unit, as a client sends it (the raw JSON answer)."""
    response = await client.post(
        "/graphql",
        json={
            "query": CREATE,
            "variables": {
                "input": {
                    "provider": provider.name,
                    "idempotencyKey": key,
                    "items": [{"packageId": package_id, "quantity": 1}],
                }
            },
        },
    )
    body: dict[str, Any] = response.json()
    return body


class Harness:
    """A gateway that can be 'crashed' and restarted on the same ledger and simulators."""

    def __init__(self, database_url: str, sandboxes: Sandboxes) -> None:
        self.settings = Settings(
            database_url=database_url,
            order_deadline=0.4,
            sandbox_fulfil_delay=0.0,
            roamify_quiet_period=0.6,
            simplifytrip_quiet_period=0.6,
        )
        self.sandboxes = sandboxes
        self.manager: LifespanManager | None = None
        self.app: Any = None
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        app = create_app(
            self.settings,
            sandboxes=self.sandboxes,
            reconcile_interval=3600,
            timeouts=Timeouts(read=0.3, write=0.3, fulfil=0.5, connect=0.3),
        )
        self.app = app
        # a loaded machine can take seconds to stop the background loops on SQLite
        self.manager = LifespanManager(app, shutdown_timeout=30)
        await self.manager.__aenter__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.manager.app), base_url="http://gateway.test"
        )

    async def crash(self) -> None:
        """Stop without letting in-flight purchases finish (as a killed process would)."""
        assert self.manager is not None and self.client is not None
        services = self.app.state.services
        await services.driver.shutdown(grace=0.0)
        await self.client.aclose()
        await self.manager.__aexit__(None, None, None)

    async def buy(self, provider: ProviderName, package_id: str, key: str) -> dict[str, Any]:
        assert self.client is not None
        return await post_create(self.client, provider, package_id, key)

    async def settle(self) -> None:
        """The reconciler's passes over the next minutes, once the faults are gone: every
        late commit lands, every order settles, and a watch pass looks at every watched
        reference (late purchases revive an order given up)."""
        assert self.manager is not None
        services = self.app.state.services
        for sandbox in (self.sandboxes.roamify, self.sandboxes.simplifytrip):
            await sandbox.control.settle()
        for _ in range(10):
            # Enough faults in a row (more of them on a loaded machine, where latency
            # becomes timeouts) open a provider's breaker for 30 s; by the next pass
            # its probe would find the provider healthy and close it.
            for breaker in services.providers.breakers.values():
                breaker.record(None)
            await services.reconciler.settle_all(grace=0.0, timeout=10)
            if not await services.ledger.orders.unsettled():
                break
        services.driver.watch_initial = 0.0
        for record in (await services.ledger.orders.page(owner=None, first=100)).records:
            if record.watch_until is not None:
                await services.ledger.orders.update(record.id, next_check_at=None)
        await services.reconciler.run_once(grace=0.0)
        await services.driver.shutdown(grace=10.0)


async def run_scenario(database_url: str, provider: ProviderName, attempts: list[Attempt]) -> bool:
    """Runs the attempts on a new ledger at `database_url`, settles, checks; says whether
    the provider's breaker had opened."""
    sandboxes = Sandboxes(
        roamify=create_roamify_sandbox(packages_per_country=2),
        simplifytrip=create_simplifytrip_sandbox(fulfil_delay=0.0, products_per_country=2),
    )
    roamify, simplifytrip = sandboxes.roamify, sandboxes.simplifytrip
    control = (roamify if provider is ProviderName.ROAMIFY else simplifytrip).control
    package_id = (
        next(
            p for p, (pkg, _) in roamify.state.catalog.packages.items() if "requirements" not in pkg
        )
        if provider is ProviderName.ROAMIFY
        else next(
            s
            for s, (_, product) in simplifytrip.state.catalog.variations.items()
            if product["type"] == "eSIM"
        )
    )
    harness = Harness(database_url, sandboxes)
    await harness.start()
    keys = set()
    for attempt in attempts:
        method, path = ENDPOINTS[provider][attempt.endpoint % len(ENDPOINTS[provider])]
        if attempt.fault:
            control.faults.arm(method, path, **attempt.fault)
        key = f"key-{attempt.key}"
        keys.add(key)
        body = await harness.buy(provider, package_id, key)
        assert "errors" not in body, body  # failures are typed, never a GraphQL error
        assert body["data"]["createOrder"]["__typename"] in ("Order", "ProviderError")
        if attempt.restart_after:
            await harness.crash()
            await harness.start()
    control.faults.clear()
    assert harness.manager is not None
    breaker = harness.app.state.services.providers.breakers[provider]
    opened = breaker.state is not BreakerState.CLOSED
    await harness.settle()
    ledger = harness.app.state.services.ledger
    records = (await ledger.orders.page(owner=None, first=100)).records
    assert {r.idempotency_key for r in records} == keys
    for record in records:
        # every order ends in a known state
        assert record.step in (Step.SETTLED, Step.REJECTED, Step.ABANDONED), record
        if provider is ProviderName.ROAMIFY:
            upstream = [
                o for o in roamify.state.orders.values() if o.reference_id == record.reference
            ]
        else:
            order_id = simplifytrip.state.by_track.get(record.reference)
            upstream = [simplifytrip.state.orders[order_id]] if order_id else []
        # at most one purchase per idempotency key, and the ledger knows which
        assert len(upstream) <= 1, f"{len(upstream)} orders for {record.idempotency_key}"
        if record.step is Step.SETTLED:
            assert len(upstream) == 1 and record.provider_order_id == upstream[0].id
            assert record.state is OrderState.COMPLETED
        else:
            assert upstream == [] and record.state is OrderState.FAILED
    with contextlib.suppress(Exception):
        await harness.crash()
    return opened


# 15 examples per provider (was 25: each costs ~0.5 s of CPU and up to ~1 s of waiting).
# Measured with the driver broken three ways (no lookup before a resend; no quiet period;
# a 5xx taken for "never accepted") and five seeds: on Roamify each break was found by
# the 4th to 10th example in four seeds, and not in 25 in the fifth; on SimplifyTrip the
# missing lookup by the 4th in both seeds tried (its unique references make the other
# two harmless). The deterministic scenarios of test_unknown_outcomes catch all three on
# every run, and what only chance finds here (races with a restart) gets a deterministic
# test once found (test_a_driver_stopped_right_after_taking_the_lease_gives_it_back).
@pytest.mark.parametrize("provider", [ProviderName.ROAMIFY, ProviderName.SIMPLIFYTRIP])
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(attempts=ATTEMPTS)
def test_random_faults_and_restarts_never_buy_twice_and_always_settle(
    tmp_path_factory: pytest.TempPathFactory,
    migrated_sqlite: Path,
    provider: ProviderName,
    attempts: list[Attempt],
) -> None:
    ledger = migrated_sqlite_url(migrated_sqlite, tmp_path_factory.mktemp("ledger"))
    asyncio.run(run_scenario(ledger, provider, attempts))


def test_orders_paused_by_an_open_breaker_settle_once_the_provider_recovers(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    # The breaker is the same for both providers (providers/registry.py); SimplifyTrip's
    # flow reads the order after placing it, so its reads failing open the breaker: the
    # first order is placed and its status reads fail (3 tries); the second order's
    # placement fails, then so does its lookup (3 more).
    down = {"status": 503, "body": {"message": "down"}}
    attempts = [
        Attempt(key=0, endpoint=1, fault={**down, "times": 12}, restart_after=False),
        Attempt(key=1, endpoint=0, fault=down, restart_after=False),
    ]
    ledger = migrated_sqlite_url(migrated_sqlite, tmp_path)
    assert asyncio.run(run_scenario(ledger, ProviderName.SIMPLIFYTRIP, attempts))


async def test_a_driver_stopped_right_after_taking_the_lease_gives_it_back(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shutdown landing between the lease's commit and the driver's next step must not
    leave the order locked for the whole lease (two minutes) to the next process."""
    ledger = gateway.ledger
    record, _ = await ledger.orders.claim(
        NewOrder(
            owner="sandbox-demo",
            kind="order",
            provider=ProviderName.ROAMIFY,
            idempotency_key="stopped-mid-lease",
            request={"items": [{"packageId": "p", "quantity": 1}]},
        )
    )
    taken = asyncio.Event()
    acquire = ledger.orders.acquire_lease

    async def acquire_then_stall(order_id: str, holder: str, seconds: float) -> bool:
        assert await acquire(order_id, holder, seconds)
        taken.set()
        await asyncio.sleep(3600)  # the shutdown lands here, the lease committed
        return True

    monkeypatch.setattr(ledger.orders, "acquire_lease", acquire_then_stall)
    driver = gateway.services.driver
    driver.start(record)
    await taken.wait()
    await driver.shutdown(grace=0.0)
    monkeypatch.undo()
    assert await ledger.orders.acquire_lease(record.id, "the-next-process", 60)


async def test_a_driver_leased_an_order_another_driver_just_finished_buys_nothing_more(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between a driver's read of its order and its lease, another driver (another
    replica's, or one started by a webhook) may drive the order to the end and let go:
    a driver works from its read of the order made under its lease, never from before."""
    ledger, providers = gateway.ledger, gateway.services.providers
    package = (await a_package(gateway, "ROAMIFY"))["packageId"]
    record, _ = await ledger.orders.claim(
        NewOrder(
            owner="sandbox-demo",
            kind="order",
            provider=ProviderName.ROAMIFY,
            idempotency_key="finished-by-another",
            request={"items": [{"packageId": package, "quantity": 1}]},
        )
    )
    other = PurchaseDriver(ledger, providers)
    late = PurchaseDriver(ledger, providers)
    acquire = ledger.orders.acquire_lease

    async def another_driver_first(order_id: str, holder: str, seconds: float) -> bool:
        if holder == late.holder and not other.in_flight():
            monkeypatch.undo()
            assert (await other.start(record)).record.step is Step.SETTLED
        return await acquire(order_id, holder, seconds)

    monkeypatch.setattr(ledger.orders, "acquire_lease", another_driver_first)
    outcome = await late.start(record)
    assert outcome.record.step is Step.SETTLED and outcome.failure is None
    assert gateway.roamify.control.calls.count("POST", "/api/esim/order") == 1
    steps = [event.step for event in await ledger.orders.history(record.id)]
    assert steps == [Step.NEW, Step.SUBMITTING, Step.SUBMITTED, Step.SETTLED]
