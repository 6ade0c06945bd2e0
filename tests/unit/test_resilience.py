"""R3 retry policy and R5 circuit breaker, through the real adapters and simulators."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from esim_gateway.domain import ProviderName
from esim_gateway.errors import ProviderError, ProviderUnavailable
from esim_gateway.providers._http import Timeouts
from esim_gateway.providers.registry import BreakerState, CircuitBreaker, Providers, RetryPolicy
from esim_gateway.providers.roamify import RoamifyClient, RoamifyGateway
from esim_gateway.sandbox.roamify import RoamifySandbox, create_roamify_sandbox
from esim_gateway.sandbox.transport import SandboxTransport

DOWN = {"message": "Unknown error", "status": "failed"}


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """Read afresh (a property: mypy would otherwise keep the earlier narrowed value)."""
    return breaker.state


@pytest.fixture
async def rig() -> AsyncIterator[tuple[RoamifySandbox, Providers]]:
    sandbox = create_roamify_sandbox(packages_per_country=1)
    async with httpx.AsyncClient(
        transport=SandboxTransport(sandbox.app), base_url="http://roamify.sandbox"
    ) as http:
        gateway = RoamifyGateway(
            RoamifyClient(
                http, token="sandbox-roamify-token", timeouts=Timeouts(read=0.2, write=0.2)
            )
        )
        providers = Providers(
            {ProviderName.ROAMIFY: gateway},
            retry=RetryPolicy(attempts=3, wait_initial=0.01, wait_jitter=0.0),
            failure_threshold=5,
            reset_after=0.3,
        )
        yield sandbox, providers
    await sandbox.aclose()


async def test_reads_are_retried_on_5xx_429_and_timeouts(
    rig: tuple[RoamifySandbox, Providers],
) -> None:
    sandbox, providers = rig
    gateway = providers.get(ProviderName.ROAMIFY)
    control = sandbox.control
    control.faults.arm("GET", "/api/balance", status=503, body=DOWN)
    control.faults.arm("GET", "/api/balance", status=429, retry_after=0, body=DOWN)
    balances = await providers.read(ProviderName.ROAMIFY, gateway.balances)
    assert balances and control.calls.count("GET", "/api/balance") == 3
    control.calls.clear()
    control.faults.arm("GET", "/api/balance", hang=True)
    assert await providers.read(ProviderName.ROAMIFY, gateway.balances)
    assert control.calls.count("GET", "/api/balance") == 2


async def test_4xx_is_never_retried_and_writes_are_never_retried(
    rig: tuple[RoamifySandbox, Providers],
) -> None:
    sandbox, providers = rig
    gateway = providers.get(ProviderName.ROAMIFY)
    sandbox.control.faults.arm("GET", "/api/balance", status=400, body={"error": "bad"})
    with pytest.raises(ProviderError) as refused:
        await providers.read(ProviderName.ROAMIFY, gateway.balances)
    assert refused.value.status == 400 and sandbox.control.calls.count("GET", "/api/balance") == 1
    sandbox.control.faults.arm("GET", "/api/balance", status=503, body=DOWN)
    with pytest.raises(ProviderError):
        await providers.write(ProviderName.ROAMIFY, gateway.balances)
    assert sandbox.control.calls.count("GET", "/api/balance") == 2


async def test_a_failing_provider_is_skipped_fast_then_probed_then_closed(
    rig: tuple[RoamifySandbox, Providers],
) -> None:
    sandbox, providers = rig
    gateway = providers.get(ProviderName.ROAMIFY)
    sandbox.control.faults.arm("GET", "/api/balance", status=503, body=DOWN, times=None)
    for _ in range(5):
        with pytest.raises(ProviderError):
            await providers.write(ProviderName.ROAMIFY, gateway.balances)
    breaker = providers.breakers[ProviderName.ROAMIFY]
    assert state_of(breaker) is BreakerState.OPEN
    calls = sandbox.control.calls.count()
    with pytest.raises(ProviderUnavailable) as fast:
        await providers.read(ProviderName.ROAMIFY, gateway.balances)
    assert not fast.value.sent
    assert sandbox.control.calls.count() == calls  # nothing was sent
    sandbox.control.faults.clear()
    breaker.opened_at = breaker.clock() - 1.0  # the reset period has passed
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert await providers.write(ProviderName.ROAMIFY, gateway.balances)
    assert state_of(breaker) is BreakerState.CLOSED


def test_client_errors_do_not_trip_the_breaker() -> None:
    breaker = CircuitBreaker("roamify", failure_threshold=2)
    for _ in range(5):
        breaker.record(ProviderError("roamify", 404, "HTTP_404", "no", retryable=False))
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.record(ProviderUnavailable("roamify", "timeout"))
    breaker.record(ProviderUnavailable("roamify", "timeout"))
    assert state_of(breaker) is BreakerState.OPEN
