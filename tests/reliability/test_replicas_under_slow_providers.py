"""Two gateway replicas on one PostgreSQL ledger, providers that hang then commit, commit
then fail, and lag their reads; clients retrying with the same idempotency key on either
replica; a replica killed mid-run and started again.

Over every purchase of both providers: no key is bought twice, and no order paid for
upstream stays FAILED (R1, R2 and the exactly-once issue's fault shapes).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from esim_gateway.app import create_app
from esim_gateway.config import Settings
from esim_gateway.domain import OrderState, ProviderName
from esim_gateway.ledger.orders import Step
from esim_gateway.ledger.repository import Ledger
from esim_gateway.providers._http import Timeouts
from esim_gateway.sandbox.roamify import RoamifySandbox, create_roamify_sandbox
from esim_gateway.sandbox.simplifytrip import SimplifyTripSandbox, create_simplifytrip_sandbox
from esim_gateway.sandbox.transport import SandboxTransport
from tests.reliability.test_exactly_once import post_create

# every order moves only along the purchase state table's lines
pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("declared_moves_only")]

#: purchases per provider; each is sent to one replica and retried on the other
PURCHASES = 60
#: of which this share meets one of the slow-provider faults below
FAULT_RATE = 0.4
#: the quiet period outlasts the slowest fault (commit 0.4 s late, then 0.3 s read lag)
QUIET = 1.0
TIMEOUTS = Timeouts(read=0.5, write=0.25, fulfil=0.5, connect=0.3)
KEY = "replica-test-key"

SLOW_FAULTS: list[dict[str, Any]] = [
    {"commit_late": 0.4},
    {"commit_late": 0.3, "read_lag": 0.3},
    {"drop_after_commit": True, "read_lag": 0.4},
    {"status": 500, "body": {"message": "Unknown error"}, "commit_then_status": True},
    {
        "status": 500,
        "body": {"message": "Unknown error"},
        "commit_then_status": True,
        "read_lag": 0.4,
    },
    {"status": 503, "body": {"message": "busy"}},
    {"hang": True},
]

PURCHASE_ENDPOINT = {
    ProviderName.ROAMIFY: ("POST", "/api/esim/order"),
    ProviderName.SIMPLIFYTRIP: ("POST", "/api/v1/orders"),
}


@dataclass
class Replica:
    settings: Settings
    roamify: RoamifySandbox
    simplifytrip: SimplifyTripSandbox
    manager: LifespanManager | None = None
    app: Any = None
    client: httpx.AsyncClient | None = None
    killed: int = field(default=0)

    async def start(self) -> None:
        self.app = create_app(
            self.settings,
            transports={
                ProviderName.ROAMIFY: SandboxTransport(self.roamify.app),
                ProviderName.SIMPLIFYTRIP: SandboxTransport(self.simplifytrip.app),
            },
            timeouts=TIMEOUTS,
            reconcile_interval=0.5,
            catalog_refresh=False,
        )
        self.manager = LifespanManager(self.app, shutdown_timeout=30)
        await self.manager.__aenter__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.manager.app),
            base_url="http://replica.test",
            headers={"authorization": f"Bearer {KEY}"},
            timeout=30,
        )

    async def kill(self) -> None:
        """As a killed process: purchases in flight are cut where they stand."""
        assert self.manager is not None and self.client is not None
        await self.app.state.services.driver.shutdown(grace=0.0)
        await self.client.aclose()
        await self.manager.__aexit__(None, None, None)
        self.killed += 1

    async def buy(self, provider: ProviderName, package_id: str, key: str) -> dict[str, Any]:
        assert self.client is not None
        return await post_create(self.client, provider, package_id, key)

    @property
    def ledger(self) -> Ledger:
        ledger: Ledger = self.app.state.services.ledger
        return ledger


def replica_settings(database_url: str) -> Settings:
    return Settings.from_mapping(
        {
            "ESIM_GATEWAY_MODE": "live",
            "ESIM_GATEWAY_DATABASE_URL": database_url,
            "ESIM_GATEWAY_API_KEYS": f"alice:customer:{KEY}",
            "ESIM_GATEWAY_ROAMIFY_BASE_URL": "http://roamify.sandbox",
            "ESIM_GATEWAY_ROAMIFY_TOKEN": "sandbox-roamify-token",
            "ESIM_GATEWAY_SIMPLIFYTRIP_BASE_URL": "http://simplifytrip.sandbox",
            "ESIM_GATEWAY_SIMPLIFYTRIP_API_KEY": "pk_test_sandbox",
            "ESIM_GATEWAY_SIMPLIFYTRIP_SECRET_KEY": "sk_test_sandbox",
            "ESIM_GATEWAY_SIMPLIFYTRIP_CHECKSUM_KEY": "ck_test_sandbox",
            "ESIM_GATEWAY_ORDER_DEADLINE": "0.5",
            "ESIM_GATEWAY_ROAMIFY_QUIET_PERIOD": str(QUIET),
            "ESIM_GATEWAY_SIMPLIFYTRIP_QUIET_PERIOD": str(QUIET),
            "ESIM_GATEWAY_RATE_LIMIT_PER_SECOND": "100000",
            "ESIM_GATEWAY_RATE_LIMIT_BURST": "100000",
        }
    )


async def run(database_url: str) -> None:
    rng = random.Random(20261127)
    roamify = create_roamify_sandbox(packages_per_country=2)
    simplifytrip = create_simplifytrip_sandbox(fulfil_delay=0.0, products_per_country=2)
    replicas = [Replica(replica_settings(database_url), roamify, simplifytrip) for _ in range(2)]
    for replica in replicas:
        await replica.start()
    packages = {
        ProviderName.ROAMIFY: next(
            p for p, (pkg, _) in roamify.state.catalog.packages.items() if "requirements" not in pkg
        ),
        ProviderName.SIMPLIFYTRIP: next(
            s
            for s, (_, product) in simplifytrip.state.catalog.variations.items()
            if product["type"] == "eSIM"
        ),
    }
    keys: dict[ProviderName, list[str]] = {p: [] for p in ProviderName}
    try:
        for provider in ProviderName:
            control = (roamify if provider is ProviderName.ROAMIFY else simplifytrip).control
            method, path = PURCHASE_ENDPOINT[provider]
            for batch in range(PURCHASES // 20):
                sends = []
                for i in range(20):
                    key = f"{provider.value}-{batch}-{i}"
                    keys[provider].append(key)
                    if rng.random() < FAULT_RATE:
                        control.faults.arm(method, path, **rng.choice(SLOW_FAULTS))
                    first, second = rng.sample(replicas, 2)
                    sends.append(_buy_and_retry(first, second, provider, packages[provider], key))
                results = await asyncio.gather(*sends)
                for body in results:
                    assert "errors" not in body, body
                if batch == 1:
                    # one replica dies with purchases in flight, and comes back
                    victim = replicas[batch % 2]
                    await victim.kill()
                    await victim.start()
        for control in (roamify.control, simplifytrip.control):
            control.faults.clear()
        await _settle(replicas, (roamify, simplifytrip))
        await _check(replicas[0].ledger, roamify, simplifytrip, keys)
    finally:
        for replica in replicas:
            with contextlib.suppress(Exception):
                await replica.kill()
        await roamify.aclose()
        await simplifytrip.aclose()


async def _buy_and_retry(
    first: Replica, second: Replica, provider: ProviderName, package_id: str, key: str
) -> dict[str, Any]:
    """A client that got no clear answer retries on the other replica."""
    body = await first.buy(provider, package_id, key)
    order = body.get("data", {}).get("createOrder") or {}
    if order.get("__typename") != "Order" or order.get("status") != "COMPLETED":
        body = await second.buy(provider, package_id, key)
    return body


async def _settle(replicas: list[Replica], sandboxes: tuple[Any, ...]) -> None:
    """Every late commit lands; then both replicas' reconcilers work until nothing is
    unsettled, and a watch pass looks at every reference once more."""
    for sandbox in sandboxes:
        await sandbox.control.settle()
    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while loop.time() < end:
        for replica in replicas:
            services = replica.app.state.services
            for breaker in services.providers.breakers.values():
                breaker.record(None)
            await services.reconciler.settle_all(grace=0.0, timeout=10)
        if not await replicas[0].ledger.orders.unsettled():
            break
    for replica in replicas:
        driver = replica.app.state.services.driver
        driver.watch_initial = 0.0
    ledger = replicas[0].ledger
    for record in (await ledger.orders.page(owner=None, first=1000)).records:
        if record.watch_until is not None:
            await ledger.orders.update(record.id, next_check_at=None)
    for replica in replicas:
        await replica.app.state.services.reconciler.run_once(grace=0.0)
    for replica in replicas:
        await replica.app.state.services.driver.shutdown(grace=15.0)


async def _check(
    ledger: Ledger,
    roamify: RoamifySandbox,
    simplifytrip: SimplifyTripSandbox,
    keys: dict[ProviderName, list[str]],
) -> None:
    records = (await ledger.orders.page(owner=None, first=1000)).records
    assert sorted(r.idempotency_key for r in records) == sorted(
        k for ks in keys.values() for k in ks
    )
    doubles, paid_but_failed, unsettled = [], [], []
    for record in records:
        if record.provider is ProviderName.ROAMIFY:
            upstream = [
                o.id for o in roamify.state.orders.values() if o.reference_id == record.reference
            ]
        else:
            order_id = simplifytrip.state.by_track.get(record.reference)
            upstream = [order_id] if order_id else []
        if len(upstream) > 1:
            doubles.append(record.idempotency_key)
        if record.state is OrderState.FAILED and upstream:
            paid_but_failed.append(record.idempotency_key)
        if not record.step.is_terminal:
            unsettled.append((record.idempotency_key, record.step))
        if record.step is Step.SETTLED:
            assert upstream == [record.provider_order_id], record
    assert doubles == [] and paid_but_failed == [] and unsettled == []


def test_two_replicas_never_buy_twice_nor_fail_what_was_paid(postgres_database: str) -> None:
    asyncio.run(_fresh_then_run(postgres_database))


async def _fresh_then_run(database_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    await run(database_url)
