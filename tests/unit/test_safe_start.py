"""A deployment is never open by accident: unsafe configuration stops start-up with one
line and no server; the start-up banner names only what is served."""

from __future__ import annotations

from typing import Any

import pytest

from esim_gateway import cli
from esim_gateway.app import create_app
from esim_gateway.config import ConfigError, Mode, Settings, is_simulator_url

REAL = "https://api.getroamify.com"


@pytest.fixture
def environment(clean_environment: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment in which starting a server fails the test."""

    def no_server(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a server was started")

    clean_environment.setattr("uvicorn.run", no_server)
    return clean_environment


def refused_line(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve"])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ESIM_GATEWAY_ROAMIFY_BASE_URL", REAL),
        ("ESIM_GATEWAY_SIMPLIFYTRIP_BASE_URL", "https://api.simplifytrip.com"),
        ("ESIM_GATEWAY_ROAMIFY_TOKEN", "roamify_live_token"),
        ("ESIM_GATEWAY_SIMPLIFYTRIP_API_KEY", "pk_live_merchant"),
        ("ESIM_GATEWAY_SIMPLIFYTRIP_SECRET_KEY", "sk_live_merchant"),
        ("ESIM_GATEWAY_SIMPLIFYTRIP_CHECKSUM_KEY", "ck_live_merchant"),
        ("ESIM_GATEWAY_ROAMIFY_WEBHOOK_SECRET", "whsec_live"),
    ],
)
def test_a_real_provider_or_credential_in_sandbox_mode_stops_start_up(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
) -> None:
    environment.setenv(variable, value)
    line = refused_line(capsys)
    assert variable in line and "ESIM_GATEWAY_MODE=live" in line
    assert "ESIM_GATEWAY_API_KEYS" in line
    assert value not in line or variable.endswith("_BASE_URL")


def test_the_reported_case_real_roamify_and_no_mode_does_not_start(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("ESIM_GATEWAY_ROAMIFY_BASE_URL", REAL)
    environment.setenv("ESIM_GATEWAY_ROAMIFY_TOKEN", "roamify_live_token")
    assert "configuration error" in refused_line(capsys)
    with pytest.raises(ConfigError):
        create_app(Settings(roamify_base_url=REAL, roamify_token="roamify_live_token"))


def test_live_mode_without_api_keys_or_jwt_does_not_start(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("ESIM_GATEWAY_MODE", "live")
    environment.setenv("ESIM_GATEWAY_ROAMIFY_BASE_URL", REAL)
    environment.setenv("ESIM_GATEWAY_ROAMIFY_TOKEN", "roamify_live_token")
    line = refused_line(capsys)
    assert "ESIM_GATEWAY_API_KEYS" in line and "ESIM_GATEWAY_JWT_SECRET" in line
    with pytest.raises(ConfigError, match="ESIM_GATEWAY_API_KEYS"):
        create_app(Settings(mode=Mode.LIVE))


def test_live_mode_with_keys_or_a_jwt_setting_may_start() -> None:
    keyed = Settings.from_mapping(
        {"ESIM_GATEWAY_MODE": "live", "ESIM_GATEWAY_API_KEYS": "app:customer:k"}
    )
    keyed.check_safe_to_serve()
    Settings(mode=Mode.LIVE, jwt_secret="s" * 32).check_safe_to_serve()
    Settings(mode=Mode.LIVE, jwt_public_key="/etc/jwt.pem").check_safe_to_serve()


def test_the_sandbox_may_use_simulators_and_their_documented_credentials() -> None:
    Settings().check_safe_to_serve()
    Settings(
        roamify_base_url="http://127.0.0.1:8100/roamify",
        simplifytrip_base_url="http://localhost:8100/simplifytrip",
        roamify_token="sandbox-roamify-token",
        simplifytrip_api_key="pk_test_sandbox",
        simplifytrip_secret_key="sk_test_sandbox",
        simplifytrip_checksum_key="ck_test_sandbox",
    ).check_safe_to_serve()
    for url in ("http://127.0.0.1:8100", "http://[::1]:81/x", "http://roamify.sandbox"):
        assert is_simulator_url(url), url
    for url in (REAL, "http://10.0.0.5:8100", "http://sandbox.example.com", "http://x.sandbox.io"):
        assert not is_simulator_url(url), url


def test_the_banner_names_only_what_is_served() -> None:
    sandbox = cli.banner(Settings(), "127.0.0.1", 8000)
    assert "sandbox" in sandbox and "GraphiQL at http://127.0.0.1:8000/graphql" in sandbox
    assert "/sandbox/" in sandbox
    live = cli.banner(Settings(mode=Mode.LIVE, api_keys=()), "192.0.2.7", 9000)
    assert live == "esim-gateway live: GraphQL API at http://192.0.2.7:9000/graphql"
    assert "GraphiQL" not in live and "/sandbox/" not in live
    ide = cli.banner(Settings(mode=Mode.LIVE, graphiql=True), "h", 1)
    assert "GraphiQL at http://h:1/graphql" in ide
    quiet = cli.banner(Settings(graphiql=False), "h", 1)
    assert "GraphiQL" not in quiet
