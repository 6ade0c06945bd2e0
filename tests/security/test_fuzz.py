"""C17: a bounded schemathesis run over the whole GraphQL schema against the real app in
live mode: no 5xx, and every error is either a typed/validation error or masked."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev extra")

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = schemathesis.graphql.from_path(str(ROOT / "schema.graphql"))


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    from esim_gateway.app import Sandboxes, create_app
    from esim_gateway.config import Mode, Settings
    from esim_gateway.domain import ProviderName
    from esim_gateway.sandbox.roamify import create_roamify_sandbox
    from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox
    from esim_gateway.sandbox.transport import SandboxTransport

    ledger = tmp_path_factory.mktemp("fuzz") / "ledger.db"
    sandboxes = Sandboxes(
        roamify=create_roamify_sandbox(packages_per_country=2),
        simplifytrip=create_simplifytrip_sandbox(fulfil_delay=0, products_per_country=2),
    )
    settings = Settings.from_mapping(
        {
            "ESIM_GATEWAY_MODE": "live",
            "ESIM_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{ledger}",
            "ESIM_GATEWAY_API_KEYS": "fuzzer:customer:fuzz-key",
            "ESIM_GATEWAY_ROAMIFY_BASE_URL": "http://roamify.sandbox",
            "ESIM_GATEWAY_ROAMIFY_TOKEN": "sandbox-roamify-token",
            "ESIM_GATEWAY_SIMPLIFYTRIP_BASE_URL": "http://simplifytrip.sandbox",
            "ESIM_GATEWAY_SIMPLIFYTRIP_API_KEY": "pk_test_sandbox",
            "ESIM_GATEWAY_SIMPLIFYTRIP_SECRET_KEY": "sk_test_sandbox",
            "ESIM_GATEWAY_SIMPLIFYTRIP_CHECKSUM_KEY": "ck_test_sandbox",
            "ESIM_GATEWAY_RATE_LIMIT_PER_SECOND": "100000",
            "ESIM_GATEWAY_RATE_LIMIT_BURST": "100000",
            "ESIM_GATEWAY_ORDER_DEADLINE": "2",
        }
    )
    assert settings.mode is Mode.LIVE
    app = create_app(
        settings,
        catalog_refresh=False,
        transports={
            ProviderName.ROAMIFY: SandboxTransport(sandboxes.roamify.app),
            ProviderName.SIMPLIFYTRIP: SandboxTransport(sandboxes.simplifytrip.app),
        },
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/graphql"
    server.should_exit = True
    thread.join(20)
    sock.close()


@SCHEMA.parametrize()  # type: ignore[untyped-decorator]  # importorskip gives Any
# schemathesis' own strategies draw from `random`, which Hypothesis deprecates
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_fuzzed_operations_never_5xx_nor_leak_an_unmasked_error(case: Any, live_url: str) -> None:
    response = case.call(
        url=live_url,
        headers={"authorization": "Bearer fuzz-key"},
    )
    assert response.status_code < 500, response.text
    for error in response.json().get("errors") or []:
        message = error.get("message", "")
        assert "Traceback" not in message and "sandbox-roamify-token" not in message
