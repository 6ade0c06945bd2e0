"""Settings: defaults, parsing, and one clear line naming a bad variable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from esim_gateway.cli import main
from esim_gateway.config import (
    PREFIX,
    ApiKey,
    ConfigError,
    HttpTransport,
    Markup,
    Mode,
    Role,
    Settings,
    reference,
)

ROOT = Path(__file__).resolve().parents[2]


def test_no_configuration_means_sandbox_mode_on_a_local_sqlite_ledger() -> None:
    settings = Settings.from_mapping({})
    assert settings.mode is Mode.SANDBOX
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.introspection_enabled and settings.graphiql_enabled
    filled = settings.with_sandbox_credentials()
    assert filled.roamify_token == "sandbox-roamify-token"
    assert filled.simplifytrip_checksum_key == "ck_test_sandbox"


def test_live_mode_turns_introspection_and_graphiql_off_unless_enabled() -> None:
    live = Settings.from_mapping({"ESIM_GATEWAY_MODE": "live"})
    assert not live.introspection_enabled and not live.graphiql_enabled
    assert live.with_sandbox_credentials().roamify_token is None
    enabled = Settings.from_mapping(
        {"ESIM_GATEWAY_MODE": "LIVE", "ESIM_GATEWAY_INTROSPECTION": "true"}
    )
    assert enabled.introspection_enabled


def test_values_are_parsed() -> None:
    settings = Settings.from_mapping(
        {
            "ESIM_GATEWAY_PORT": "9000",
            "ESIM_GATEWAY_ORDER_DEADLINE": "2.5",
            "ESIM_GATEWAY_HTTP_TRANSPORT": "httpx",
            "ESIM_GATEWAY_ROAMIFY_BASE_URL": "https://api.getroamify.com/",
            "ESIM_GATEWAY_USD_RATES": "VND=25000, EUR=0.9",
            "ESIM_GATEWAY_LOG_LEVEL": "debug",
        }
    )
    assert settings.port == 9000 and settings.order_deadline == 2.5
    assert settings.http_transport is HttpTransport.HTTPX
    assert settings.roamify_base_url == "https://api.getroamify.com"
    assert dict(settings.usd_rates)["VND"] == Decimal(25000)
    assert settings.log_level == "DEBUG"


def test_api_keys_are_kept_only_as_digests() -> None:
    digest = ApiKey.digest("s3cret-operator")
    settings = Settings.from_mapping(
        {
            "ESIM_GATEWAY_API_KEYS": f"alice:customer:s3cret-alice, ops:operator:sha256:{digest}",
        }
    )
    alice, ops = settings.api_keys
    assert (alice.principal, alice.role) == ("alice", Role.CUSTOMER)
    assert alice.sha256 == ApiKey.digest("s3cret-alice")
    assert ops.role is Role.OPERATOR and ops.sha256 == digest
    assert "s3cret" not in repr(settings.api_keys)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODE", "production"),
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("ORDER_DEADLINE", "-1"),
        ("ROAMIFY_BASE_URL", "ftp://x"),
        ("API_KEYS", "alice:admin:key"),
        ("API_KEYS", "just-a-key"),
        ("API_KEYS", "alice:customer:sha256:nothex"),
        ("INTROSPECTION", "maybe"),
        ("DATABASE_URL", "ledger.db"),
        ("USD_RATES", "VND=-3"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"ESIM_GATEWAY_{name}"):
        Settings.from_mapping({f"ESIM_GATEWAY_{name}": value})


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("ESIM_GATEWAY_PORT=8123\nESIM_GATEWAY_HOST=127.0.0.2\n")
    settings = Settings.from_env({"ESIM_GATEWAY_PORT": "8200"}, dotenv=dotenv)
    assert settings.port == 8200 and settings.host == "127.0.0.2"


def test_settings_repr_shows_no_secret() -> None:
    settings = Settings(
        roamify_token="roamify_abc",
        jwt_secret="hush",
        database_url="postgresql+asyncpg://u:pw@h/db",
    )
    assert "roamify_abc" not in repr(settings) and "pw" not in repr(settings)
    assert "hush" not in repr(settings)


def test_quote_validity_and_the_scheduling_horizon_are_configurable() -> None:
    defaults = Settings.from_mapping({})
    assert (defaults.quote_ttl, defaults.schedule_horizon_days) == (900.0, 90.0)
    settings = Settings.from_mapping(
        {
            "ESIM_GATEWAY_QUOTE_TTL": "60",
            "ESIM_GATEWAY_SCHEDULE_HORIZON_DAYS": "30",
            "ESIM_GATEWAY_SCHEDULER_INTERVAL": "1.5",
        }
    )
    assert settings.quote_ttl == 60.0 and settings.schedule_horizon_days == 30.0
    assert settings.scheduler_interval == 1.5
    with pytest.raises(ConfigError, match="ESIM_GATEWAY_SCHEDULE_HORIZON_DAYS"):
        Settings.from_mapping({"ESIM_GATEWAY_SCHEDULE_HORIZON_DAYS": "soon"})


def test_outbound_webhook_settings_default_to_more_than_a_day_of_retries() -> None:
    settings = Settings.from_mapping({})
    assert sum(settings.webhook_retry_schedule) >= 24 * 3600
    parsed = Settings.from_mapping(
        {
            "ESIM_GATEWAY_WEBHOOK_RETRY_SCHEDULE": "1, 2.5,60",
            "ESIM_GATEWAY_WEBHOOK_POLL_INTERVAL": "0.5",
            "ESIM_GATEWAY_WEBHOOK_TIMEOUT": "3",
            "ESIM_GATEWAY_USAGE_POLL_INTERVAL": "600",
        }
    )
    assert parsed.webhook_retry_schedule == (1.0, 2.5, 60.0)
    assert (parsed.webhook_poll_interval, parsed.webhook_timeout) == (0.5, 3.0)
    assert parsed.usage_poll_interval == 600.0


def test_delivered_webhooks_are_kept_thirty_days_unless_configured() -> None:
    assert Settings.from_mapping({}).webhook_retention_days == 30.0
    parsed = Settings.from_mapping({"ESIM_GATEWAY_WEBHOOK_RETENTION_DAYS": "7.5"})
    assert parsed.webhook_retention_days == 7.5
    with pytest.raises(ConfigError, match="ESIM_GATEWAY_WEBHOOK_RETENTION_DAYS"):
        Settings.from_mapping({"ESIM_GATEWAY_WEBHOOK_RETENTION_DAYS": "0"})


@pytest.mark.parametrize("schedule", ["5,soon", "-1,5", "5,0", ",,"])
def test_a_bad_webhook_retry_schedule_names_the_variable(schedule: str) -> None:
    with pytest.raises(ConfigError, match="ESIM_GATEWAY_WEBHOOK_RETRY_SCHEDULE"):
        Settings.from_mapping({"ESIM_GATEWAY_WEBHOOK_RETRY_SCHEDULE": schedule})


def test_a_markup_is_read_per_provider_and_a_bad_one_names_its_variable() -> None:
    assert Settings.from_mapping({}).markups == ()
    settings = Settings.from_mapping({"ESIM_GATEWAY_MARKUP_SIMPLIFYTRIP": "12% + 0.50"})
    assert settings.markups == (("simplifytrip", Markup(Decimal(12), Decimal("0.50"))),)
    with pytest.raises(ConfigError, match="ESIM_GATEWAY_MARKUP_ROAMIFY"):
        Settings.from_mapping({"ESIM_GATEWAY_MARKUP_ROAMIFY": "-150%"})


class ReadNames(dict[str, str]):
    """A mapping that remembers every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def test_docs_configuration_md_is_generated_from_the_declaration() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == reference(), (
        "docs/configuration.md drifted: run `esim-gateway config-reference docs/configuration.md`"
    )


def test_the_reference_has_one_row_for_each_variable_the_gateway_reads() -> None:
    recorder = ReadNames()
    Settings.from_mapping(recorder)
    rows = re.findall(rf"^\| `({PREFIX}[A-Z_]+)` \|", reference(), re.MULTILINE)
    assert len(rows) == len(set(rows))
    # uvicorn's own FORWARDED_ALLOW_IPS is looked at only to refuse it (no longer read)
    assert set(rows) == {name for name in recorder.read if name.startswith(PREFIX)}
    assert {PREFIX + "MARKUP_ROAMIFY", PREFIX + "MARKUP_SIMPLIFYTRIP"} <= recorder.read


def test_the_reference_shows_defaults_and_bounds_from_the_declaration() -> None:
    rows = {line.split(" | ")[0].strip("| `"): line for line in reference().splitlines()}
    assert rows[PREFIX + "PORT"] == (
        "| `ESIM_GATEWAY_PORT` | integer | `8000` | at least 1 |"
        " port `serve` listens on and `healthcheck` asks (`--port` wins) |"
    )
    assert "| sandbox \\| live | `sandbox` |" in rows[PREFIX + "MODE"]
    assert (
        "| `5,300,1800,7200,18000,36000,36000` | each at least 0.1 |"
        in rows[PREFIX + "WEBHOOK_RETRY_SCHEDULE"]
    )


def test_config_reference_writes_the_reference_to_a_file(tmp_path: Path) -> None:
    output = tmp_path / "configuration.md"
    assert main(["config-reference", str(output)]) == 0
    assert output.read_text() == reference()


def test_a_field_not_declared_as_a_setting_is_refused() -> None:
    @dataclass(frozen=True)
    class Extended(Settings):
        undeclared: int = 0

    with pytest.raises(TypeError, match="undeclared is not declared"):
        Extended.from_mapping({})
