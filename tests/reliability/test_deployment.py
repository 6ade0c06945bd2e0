"""docker-compose.yml: valid YAML, two replicas behind a balancer on PostgreSQL and Redis,
migrations once, and only settings the gateway knows; then the same topology run here."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from asgi_lifespan import LifespanManager

from esim_gateway.app import create_app
from esim_gateway.config import PREFIX, Settings
from esim_gateway.sandbox import standalone_app
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox
from tests.conftest import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx.conf"
#: variables of the gateway's services that belong to the server it runs in (uvicorn)
SERVER_VARIABLES = {"FORWARDED_ALLOW_IPS"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def gateway_services(services: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: service
        for name, service in services.items()
        if service.get("command", [None, None])[:2] == ["esim-gateway", "serve"]
    }


class ReadNames(dict[str, str]):
    """A mapping that remembers every name looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def names_the_gateway_reads() -> set[str]:
    recorder = ReadNames({})
    Settings.from_mapping(recorder)
    return recorder.read


def environments() -> Iterator[tuple[str, dict[str, str]]]:
    for name, service in compose()["services"].items():
        if str(service.get("command", [""])[0]) == "esim-gateway":
            yield name, {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_two_replicas_behind_a_balancer_on_postgresql_and_redis() -> None:
    services = compose()["services"]
    replicas = gateway_services(services)
    assert len(replicas) == 2
    balancer = services["balancer"]
    upstreams = set(re.findall(r"^\s*server\s+([\w-]+):8000\b", NGINX.read_text(), re.M))
    assert upstreams == set(replicas)
    assert set(balancer["depends_on"]) == set(replicas)
    assert all("ports" not in replica for replica in replicas.values())  # only the balancer
    for replica in replicas.values():
        settings = Settings.from_mapping(replica["environment"])
        # the database, Redis and providers named are the compose file's own services
        assert settings.database_url.startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in settings.database_url
        assert settings.rate_limit_redis_url is not None
        assert settings.rate_limit_redis_url.startswith("redis://redis:6379")
        assert settings.roamify_base_url == "http://sandbox:8100/roamify"
        assert settings.simplifytrip_base_url == "http://sandbox:8100/simplifytrip"


def test_migrations_run_once_before_the_replicas_start() -> None:
    services = compose()["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["esim-gateway", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for replica in gateway_services(services).values():
        assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    urls = {
        Settings.from_mapping(env).database_url
        for name, env in environments()
        if services[name]["command"][1] in ("serve", "migrate")
    }
    assert len(urls) == 1  # migrate and the replicas share one ledger


def test_the_compose_file_names_only_settings_the_gateway_knows() -> None:
    known = names_the_gateway_reads()
    assert PREFIX + "DATABASE_URL" in known and PREFIX + "LIBRARY_ACCESS_LOGS" in known
    checked = 0
    for service, env in environments():
        for name in env:
            checked += 1
            if name.startswith(PREFIX):
                assert name in known, f"{service}: {name} is not a gateway setting"
            else:
                assert name in SERVER_VARIABLES, f"{service}: {name} is read by nothing"
    assert checked > 10


def test_a_misspelt_setting_would_be_caught() -> None:
    assert PREFIX + "DATABSE_URL" not in names_the_gateway_reads()


ORDER = """query($id: ID!) { order(id: $id) { __typename
  ... on Order { id status providerOrderId esims { iccid lpa } } } }"""
CREATE = """mutation($input: CreateOrderInput!) { createOrder(input: $input) { __typename
  ... on Order { id status providerOrderId esims { iccid lpa } } } }"""


@pytest.mark.postgres
async def test_the_replicas_as_configured_share_orders_through_the_ledger_and_sandbox(
    clean_postgres: str,
) -> None:
    """The compose topology here: the `sandbox` service on a loopback socket, the two
    replicas built from their compose environment on one PostgreSQL database (Redis left
    out: its shared bucket has a test of its own). An order bought through one replica
    is read through the other."""
    sandbox = standalone_app(
        create_roamify_sandbox(packages_per_country=3),
        create_simplifytrip_sandbox(fulfil_delay=0, products_per_country=2),
    )
    services = compose()["services"]
    with serve_in_thread(sandbox) as sandbox_url:
        apps = []
        for replica in gateway_services(services).values():
            env = {
                name: str(value).replace("http://sandbox:8100", sandbox_url)
                for name, value in replica["environment"].items()
                if name != PREFIX + "RATE_LIMIT_REDIS_URL"
            }
            env[PREFIX + "DATABASE_URL"] = clean_postgres
            apps.append(create_app(Settings.from_mapping(env), catalog_refresh=False))
        async with (
            LifespanManager(apps[0]) as first,
            LifespanManager(apps[1]) as second,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(first.app), base_url="http://a"
            ) as via_first,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(second.app), base_url="http://b"
            ) as via_second,
        ):
            packages = (
                await via_first.post(
                    "/graphql",
                    json={
                        "query": "{ packages(filter: {provider: ROAMIFY}, first: 20)"
                        " { edges { node { packageId requiresTravelDate } } } }"
                    },
                )
            ).json()["data"]["packages"]["edges"]
            package = next(
                e["node"]["packageId"] for e in packages if not e["node"]["requiresTravelDate"]
            )
            line = {"packageId": package, "quantity": 1}
            bought = (
                await via_first.post(
                    "/graphql",
                    json={
                        "query": CREATE,
                        "variables": {"input": {"provider": "ROAMIFY", "items": [line]}},
                    },
                )
            ).json()["data"]["createOrder"]
            assert bought["__typename"] == "Order"
            read = (
                await via_second.post(
                    "/graphql", json={"query": ORDER, "variables": {"id": bought["id"]}}
                )
            ).json()["data"]["order"]
    assert read == bought
