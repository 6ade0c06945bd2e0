"""One access line per request by default: ours. uvicorn's access line and httpx's line
per provider call come back at DEBUG or with ESIM_GATEWAY_LIBRARY_ACCESS_LOGS."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from esim_gateway.app import create_app
from esim_gateway.cli import server_options
from esim_gateway.config import Settings
from esim_gateway.ops.logging import configure_logging
from tests.conftest import gateway_settings, make_sandboxes, serve_in_thread

# catalog_refresh=False: the first `packages` read then fetches the catalog upstream
PACKAGES = '{ packages(filter: { country: "JP" }, first: 2) { edges { node { id } } } }'


@pytest.fixture
def logging_as_configured() -> Iterator[None]:
    yield
    configure_logging("INFO")  # the suite's own set-up (tests/conftest.py)


def serve_and_query(settings: Settings, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Three GraphQL requests through uvicorn as `serve` runs it; the loggers written to."""
    configure_logging(  # handler=False: keep pytest's capture handler on the root
        settings.log_level, handler=False, library_access_logs=settings.library_access_logs_enabled
    )
    app = create_app(settings, sandboxes=make_sandboxes(), catalog_refresh=False)
    options = server_options(settings)
    with (
        caplog.at_level(logging.DEBUG if settings.log_level == "DEBUG" else logging.INFO),
        serve_in_thread(
            app, log_level=options["log_level"], access_log=options["access_log"]
        ) as url,
        httpx.Client(base_url=url) as client,
    ):
        caplog.clear()
        for _ in range(3):
            response = client.post("/graphql", json={"query": PACKAGES})
            assert response.status_code == 200 and "errors" not in response.json()
    return [record.name for record in caplog.records]


def access_lines(caplog: pytest.LogCaptureFixture) -> list[object]:
    return [r.msg for r in caplog.records if r.name == "esim_gateway.access"]


def test_by_default_a_request_writes_our_access_line_and_no_library_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, logging_as_configured: None
) -> None:
    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    names = serve_and_query(settings, caplog)
    assert names.count("esim_gateway.access") == 3
    assert "uvicorn.access" not in names and "httpx" not in names
    # the provider calls happened: our line counts them instead
    lines = access_lines(caplog)
    assert any(isinstance(m, dict) and m["provider_calls"] >= 1 for m in lines), lines


@pytest.mark.parametrize(
    "overrides",
    [{"log_level": "DEBUG"}, {"library_access_logs": True}],
    ids=["at DEBUG", "with the setting"],
)
def test_library_access_lines_come_back_when_asked_for(
    overrides: dict[str, object],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    logging_as_configured: None,
) -> None:
    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", **overrides)
    names = serve_and_query(settings, caplog)
    assert names.count("esim_gateway.access") == 3
    assert names.count("uvicorn.access") == 3
    assert "httpx" in names


def test_the_setting_is_read_from_the_environment() -> None:
    assert Settings.from_mapping({}).library_access_logs_enabled is False
    debug = Settings.from_mapping({"ESIM_GATEWAY_LOG_LEVEL": "debug"})
    assert debug.library_access_logs_enabled is True
    quiet_debug = Settings.from_mapping(
        {"ESIM_GATEWAY_LOG_LEVEL": "DEBUG", "ESIM_GATEWAY_LIBRARY_ACCESS_LOGS": "false"}
    )
    assert quiet_debug.library_access_logs_enabled is False
    on = Settings.from_mapping({"ESIM_GATEWAY_LIBRARY_ACCESS_LOGS": "yes"})
    assert on.library_access_logs_enabled is True
