"""docker-compose.yml: valid YAML, two replicas behind a balancer on PostgreSQL and Redis,
migrations once, and only settings the gateway knows; then its services run here as the
file writes them (commands and environments unchanged, host names resolved to loopback
addresses: `tests/reliability/local_compose.py`)."""

from __future__ import annotations

import ipaddress
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from esim_gateway.config import PREFIX, Settings
from tests.conftest import missing
from tests.reliability.local_compose import (
    LocalNetwork,
    PostgresStandIn,
    Processes,
    hosts_isolation_unavailable,
    redis_serving,
    service_environment,
)

# real processes: one worker runs them one after another (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("real-processes")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx.conf"
#: variables of the gateway's services that belong to the server it runs in (uvicorn):
#: none (its proxy-header rule is the gateway's own setting now)
SERVER_VARIABLES: frozenset[str] = frozenset()


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
        # the `sandbox` service under its network aliases: names a sandbox gateway may call
        assert settings.roamify_base_url == "http://roamify.sandbox:8100/roamify"
        assert settings.simplifytrip_base_url == "http://simplifytrip.sandbox:8100/simplifytrip"
        aliases = services["sandbox"]["networks"]["default"]["aliases"]
        assert {"roamify.sandbox", "simplifytrip.sandbox"} <= set(aliases)


def test_the_replicas_believe_x_forwarded_for_from_the_balancer_only() -> None:
    """The balancer sets the header to the address it was reached from (a client's own
    X-Forwarded-For is dropped), and the replicas trust exactly the balancer's address."""
    services = compose()["services"]
    balancer = services["balancer"]["networks"]["default"]["ipv4_address"]
    for replica in gateway_services(services).values():
        assert Settings.from_mapping(replica["environment"]).forwarded_allow_ips == (balancer,)
    config = NGINX.read_text()
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$remote_addr;", config)
    assert "$proxy_add_x_forwarded_for" not in config
    subnet = compose()["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(balancer) in ipaddress.ip_network(subnet)


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
#: on a loaded machine a gateway process takes a few seconds to import and start
START_TIMEOUT = 60.0


def graphql(client: httpx.Client, base: str, query: str, **variables: Any) -> Any:
    response = client.post(f"{base}/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.mark.postgres
def test_the_compose_services_as_written_start_and_their_replicas_share_orders(
    clean_postgres: str, tmp_path: Path
) -> None:
    """The compose file's own commands and environments, run here: `postgres` (the
    session's database behind a stand-in at its address), `redis`, `sandbox`, `migrate`
    once, then both replicas, each waited for as compose waits (healthy, or finished).
    The replicas pass their start-up checks as configured, are ready, and an order bought
    through one is read through the other."""
    reason = hosts_isolation_unavailable(tmp_path)
    if reason is not None:
        missing(f"the compose services cannot resolve their host names here: {reason}")
    if shutil.which("redis-server") is None:
        missing("no redis-server on this machine to play the compose file's `redis`")
    services = compose()["services"]
    network = LocalNetwork.of(services)
    address = network.addresses
    processes = Processes(network.hosts_file(tmp_path / "hosts"), tmp_path)

    def start(name: str, *more: str) -> None:
        service = services[name]
        command = [address[name] if part == "0.0.0.0" else str(part) for part in service["command"]]  # noqa: S104
        processes.start(name, [*command, *more], service_environment(service))

    replicas = sorted(gateway_services(services))
    with PostgresStandIn((address["postgres"], 5432), clean_postgres):
        try:
            start("redis", "--bind", address["redis"], "--port", "6379")
            redis_serving(address["redis"], START_TIMEOUT)
            start("sandbox")
            processes.wait_serving(
                "sandbox", f"http://{address['sandbox']}:8100/", START_TIMEOUT, any_status=True
            )
            start("migrate")
            assert processes.finished("migrate", START_TIMEOUT) == 0, processes.output("migrate")
            for name in replicas:
                start(name)
            bases = [f"http://{address[name]}:8000" for name in replicas]
            for name, base in zip(replicas, bases, strict=True):
                processes.wait_serving(name, f"{base}/healthz", START_TIMEOUT, any_status=False)
            with httpx.Client(timeout=30) as client:
                for base in bases:
                    ready = client.get(f"{base}/readyz").json()
                    assert ready["ready"], ready
                    assert (
                        ready["checks"]["roamify"] == ready["checks"]["simplifytrip"] == "enabled"
                    )
                packages = graphql(
                    client,
                    bases[0],
                    "{ packages(filter: {provider: ROAMIFY}, first: 20)"
                    " { edges { node { packageId requiresTravelDate } } } }",
                )["packages"]["edges"]
                package = next(
                    e["node"]["packageId"] for e in packages if not e["node"]["requiresTravelDate"]
                )
                line = {"packageId": package, "quantity": 1}
                bought = graphql(
                    client, bases[0], CREATE, input={"provider": "ROAMIFY", "items": [line]}
                )["createOrder"]
                assert bought["__typename"] == "Order"
                read = graphql(client, bases[1], ORDER, id=bought["id"])["order"]
            assert read == bought
        finally:
            processes.stop()
