"""Which transport provider calls take: pyreqwest by default, httpx's own where pyreqwest
has no wheel (one WARNING), and httpx's own for the removed `aiohttp` setting (one
deprecation WARNING). Either way the gateway starts and reaches its provider: a Roamify
simulator on a loopback socket."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from esim_gateway.app import _reqwest_transport, _transport, create_app
from esim_gateway.config import HttpTransport, Mode, Settings, _parse_api_keys
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from tests.conftest import gateway_settings, serve_in_thread

KEY = "transport-test-key-0123456789"
PACKAGES = """{ packages(filter: {provider: ROAMIFY}, first: 5) {
  edges { node { __typename packageId } } } }"""


@pytest.fixture
def without_pyreqwest(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on a platform pyreqwest ships no wheel for: importing it fails."""
    monkeypatch.setitem(sys.modules, "pyreqwest", None)  # `import pyreqwest` raises
    monkeypatch.delitem(sys.modules, "esim_gateway.providers.reqwest", raising=False)
    _reqwest_transport.cache_clear()
    yield
    monkeypatch.undo()
    _reqwest_transport.cache_clear()


def warnings_from(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == logger and r.levelno == logging.WARNING
    ]


async def packages_through_a_live_gateway(tmp_path: Path, **overrides: Any) -> int:
    """Starts a live gateway over a Roamify simulator on a loopback socket (SimplifyTrip
    configured too, never called), reads a catalog page; returns the upstream calls."""
    sandbox = create_roamify_sandbox(packages_per_country=3)
    with serve_in_thread(sandbox.app) as upstream:
        settings = gateway_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
            mode=Mode.LIVE,
            roamify_base_url=upstream,
            roamify_token="sandbox-roamify-token",
            simplifytrip_base_url=upstream,
            simplifytrip_api_key="pk_test_sandbox",
            simplifytrip_secret_key="sk_test_sandbox",
            simplifytrip_checksum_key="ck_test_sandbox",
            api_keys=_parse_api_keys(f"app:customer:{KEY}", "api_keys"),
            **overrides,
        )
        app = create_app(settings, reconcile_interval=3600, catalog_refresh=False)
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),
                base_url="http://gateway.test",
                headers={"authorization": f"Bearer {KEY}"},
            ) as client,
        ):
            response = await client.post("/graphql", json={"query": PACKAGES})
    body = response.json()
    assert "errors" not in body, body
    edges = body["data"]["packages"]["edges"]
    assert edges and {e["node"]["__typename"] for e in edges} == {"Package"}
    return len(sandbox.control.calls.calls)


@pytest.mark.usefixtures("without_pyreqwest")
async def test_without_pyreqwest_provider_calls_go_through_httpx_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_mapping({})
    assert settings.http_transport is HttpTransport.REQWEST
    assert type(_transport(settings)) is httpx.AsyncHTTPTransport
    # two providers, each with its transport: still the one line
    assert await packages_through_a_live_gateway(tmp_path) >= 1
    (warning,) = warnings_from(caplog, "esim_gateway")
    assert "pyreqwest cannot be imported" in warning and "httpx's own" in warning


def test_with_pyreqwest_the_default_transport_is_reqwest_and_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from esim_gateway.providers.reqwest import ReqwestTransport

    _reqwest_transport.cache_clear()
    assert isinstance(_transport(Settings.from_mapping({})), ReqwestTransport)
    assert warnings_from(caplog, "esim_gateway") == []


async def test_the_removed_aiohttp_setting_starts_the_gateway_on_httpx_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_mapping({"ESIM_GATEWAY_HTTP_TRANSPORT": "aiohttp"})
    assert settings.http_transport is HttpTransport.HTTPX
    (warning,) = warnings_from(caplog, "esim_gateway.config")
    assert "ESIM_GATEWAY_HTTP_TRANSPORT=aiohttp is deprecated" in warning
    assert type(_transport(settings)) is httpx.AsyncHTTPTransport
    calls = await packages_through_a_live_gateway(tmp_path, http_transport=settings.http_transport)
    assert calls >= 1
    assert len(warnings_from(caplog, "esim_gateway.config")) == 1


def test_an_unknown_transport_is_still_a_configuration_error() -> None:
    from esim_gateway.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape("is not one of reqwest | httpx")):
        Settings.from_mapping({"ESIM_GATEWAY_HTTP_TRANSPORT": "curl"})
