"""Operating the gateway: health, readiness, metrics, rate limits, request ids."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from esim_gateway.app import create_app
from esim_gateway.config import Mode, Settings
from esim_gateway.ops.ratelimit import RateLimiter
from tests.api.test_ordering import buy
from tests.conftest import Gateway, GatewayFactory


async def test_healthz_and_readyz_report_the_process_and_its_dependencies(
    gateway: Gateway,
) -> None:
    assert (await gateway.http.get("/healthz")).json() == {"status": "ok"}
    ready = await gateway.http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] and body["checks"]["database"] == "ok"
    assert body["checks"]["roamify"] == "enabled"


async def test_live_mode_with_no_provider_enabled_is_not_ready(database_url: str) -> None:
    keys = Settings.from_mapping({"ESIM_GATEWAY_API_KEYS": "app:customer:k"}).api_keys
    app = create_app(
        Settings(mode=Mode.LIVE, database_url=database_url, api_keys=keys),
        catalog_refresh=False,
    )
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway.test"
        ) as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "ready": False,
        "checks": {
            "database": "ok",
            "roamify": "not configured",
            "simplifytrip": "not configured",
            # LISTEN/NOTIFY between replicas on PostgreSQL; one process's own on SQLite
            "live_updates": "ok" if database_url.startswith("postgresql") else "in process",
        },
    }


async def test_metrics_count_operations_provider_calls_and_overhead(gateway: Gateway) -> None:
    await buy(gateway, "SIMPLIFYTRIP")
    text = (await gateway.http.get("/metrics")).text
    assert 'graphql_operations_total{operation="Create",outcome="ok"} 1.0' in text
    assert (
        'provider_calls_total{endpoint="/api/v1/orders",provider="simplifytrip",status="201"}'
        in text
    )
    assert "gateway_overhead_seconds_count" in text
    assert 'loader_batch_size_count{loader="ledger_orders"}' in text or "loader_batch" in text
    assert 'provider_circuit_open{provider="roamify"} 0.0' in text
    assert "reconciler_backlog 0.0" in text
    # the cyclic collector's runs: what the benchmark reads per 1,000 requests
    assert 'python_gc_collections_total{generation="0"}' in text


async def test_every_response_carries_a_request_id(gateway: Gateway) -> None:
    response = await gateway.http.get("/healthz", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    fresh = await gateway.http.get("/healthz", headers={"x-request-id": "bad id\n!"})
    assert fresh.headers["x-request-id"] != "bad id\n!" and len(fresh.headers["x-request-id"]) == 32


async def test_a_principal_past_its_rate_limit_gets_429_with_retry_after(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(rate_limit_per_second=1.0, rate_limit_burst=3) as gw:
        statuses = [(await gw.post("{ __typename }")).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        limited = await gw.post("{ __typename }")
        assert limited.headers["retry-after"] == "1"
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


def test_a_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert [limiter.take_now("k") for _ in range(2)] == [0.0, 0.0]
    assert limiter.take_now("k") == 0.5
    now[0] = 0.5
    assert limiter.take_now("k") == 0.0
    assert limiter.take_now("other") == 0.0


async def test_replicas_share_one_bucket_in_redis(redis_url: str) -> None:
    import uuid

    from esim_gateway.ops.ratelimit import RedisRateLimiter

    url = redis_url
    prefix = f"test:{uuid.uuid4().hex}:"
    first = RedisRateLimiter(url, rate=0.5, burst=3, prefix=prefix)
    second = RedisRateLimiter(url, rate=0.5, burst=3, prefix=prefix)  # another replica
    try:
        waits = [
            await limiter.take("principal:alice") for limiter in (first, second, first, second)
        ]
        assert waits[:3] == [0.0, 0.0, 0.0] and 1.0 < waits[3] <= 2.0
        assert await second.take("principal:bob") == 0.0
    finally:
        await first.aclose()
        await second.aclose()


async def test_shutdown_lets_an_in_flight_purchase_finish(
    gateway_factory: GatewayFactory,
) -> None:
    from esim_gateway.ledger.orders import Step

    async with gateway_factory(order_deadline=0.1) as gw:
        gw.roamify.control.faults.arm("POST", "/api/esim/order", latency=0.5)
        order = await buy(gw, "ROAMIFY", key="during-shutdown")
        assert order["status"] == "PENDING"
        sandboxes = gw.sandboxes
    # the app has stopped: its driver was given time to finish the purchase
    async with gateway_factory(sandboxes=sandboxes) as again:
        record = await again.ledger.orders.by_key("sandbox-demo", "during-shutdown")
        assert record is not None and record.step is Step.SETTLED
        assert sandboxes.roamify.control.calls.count("POST", "/api/esim/order") == 1


async def test_metrics_behind_a_token_answer_only_its_bearer(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(metrics_token="scrape-secret-0123456789") as gw:
        for headers in (
            {},
            {"authorization": "Bearer wrong"},
            {"authorization": "Bearer scrape-secret"},
            {"authorization": "Basic c2NyYXBlLXNlY3JldC0wMTIzNDU2Nzg5"},
        ):
            refused = await gw.http.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "reconciler_backlog" not in refused.text
            assert "scrape-secret" not in refused.text
        allowed = await gw.http.get(
            "/metrics", headers={"authorization": "Bearer scrape-secret-0123456789"}
        )
        assert allowed.status_code == 200 and "reconciler_backlog 0.0" in allowed.text
        # the API itself does not take the metrics token as a credential, nor need it
        assert (await gw.post("{ __typename }")).status_code == 200


async def test_the_reconciler_backlog_is_counted_without_loading_the_orders(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esim_gateway.domain import ProviderName
    from esim_gateway.ledger.orders import NewOrder

    await buy(gateway, "SIMPLIFYTRIP")  # settled: not in the backlog
    for key in ("backlog-1", "backlog-2"):  # claimed, never sent: the reconciler's work
        await gateway.ledger.orders.claim(
            NewOrder(
                owner="alice",
                kind="order",
                provider=ProviderName.ROAMIFY,
                idempotency_key=key,
                request={"items": [{"packageId": "p", "quantity": 1}]},
            )
        )

    async def loads_rows(*args: object, **kwargs: object) -> None:
        raise AssertionError("/metrics loaded the unsettled orders")

    monkeypatch.setattr(gateway.ledger.orders, "unsettled", loads_rows)
    text = (await gateway.http.get("/metrics")).text
    assert "reconciler_backlog 2.0" in text
