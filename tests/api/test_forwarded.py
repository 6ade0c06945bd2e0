"""The client's address is the peer's, or behind a configured proxy the hop that proxy
added to X-Forwarded-For: a client cannot pick its own rate-limit bucket or the address
logged for it by writing the header itself."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from esim_gateway.app import create_app
from esim_gateway.cli import server_options
from esim_gateway.config import ConfigError, Settings
from esim_gateway.ops.logging import configure_logging
from tests.conftest import (
    Gateway,
    GatewayFactory,
    gateway_settings,
    make_sandboxes,
    serve_in_thread,
)

SECRET = "forwarded-test-secret-of-32-bytes!"
PROXY = "10.20.30.40"
CLIENT = "203.0.113.7"
TYPENAME = {"query": "{ __typename }"}


def token(subject: str) -> str:
    """A JWT of its own per request: the per-principal bucket never binds, so what a test
    sees is the per-address bucket alone."""
    claims = {"sub": subject, "exp": int(time.time()) + 600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture
async def behind_proxy(gateway_factory: GatewayFactory) -> AsyncIterator[Gateway]:
    async with gateway_factory(
        jwt_secret=SECRET,
        rate_limit_per_second=0.001,
        rate_limit_burst=3,
        forwarded_allow_ips=(PROXY,),
    ) as gw:
        yield gw


def from_address(gw: Gateway, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gw.app, client=(address, 40000)),
        base_url="http://gateway.test",
    )


async def statuses(
    client: httpx.AsyncClient, forwarded_for: Sequence[str | None], tag: str
) -> list[int]:
    answers = []
    for index, value in enumerate(forwarded_for):
        headers = {"authorization": f"Bearer {token(f'{tag}-{index}')}"}
        if value is not None:
            headers["x-forwarded-for"] = value
        answers.append((await client.post("/graphql", json=TYPENAME, headers=headers)).status_code)
    return answers


def logged_clients(caplog: pytest.LogCaptureFixture) -> list[Any]:
    return [
        record.msg["client"]
        for record in caplog.records
        if record.name == "esim_gateway.access" and isinstance(record.msg, dict)
    ]


async def test_a_forged_x_forwarded_for_changes_neither_the_bucket_nor_the_logged_address(
    behind_proxy: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    forged = ["198.51.100.1", "198.51.100.2", "198.51.100.3, 198.51.100.4", "198.51.100.5"]
    caplog.set_level(logging.INFO, logger="esim_gateway.access")
    async with from_address(behind_proxy, CLIENT) as client:
        assert await statuses(client, forged, "forger") == [200, 200, 200, 429]
    assert logged_clients(caplog) == [CLIENT] * 4


async def test_the_configured_proxy_gives_each_client_it_forwards_a_bucket_of_its_own(
    behind_proxy: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="esim_gateway.access")
    async with from_address(behind_proxy, PROXY) as proxy:
        assert await statuses(proxy, [CLIENT] * 4, "behind") == [200, 200, 200, 429]
        # another client behind the same proxy: its own bucket
        assert await statuses(proxy, ["198.51.100.9"], "other") == [200]
        # what the client wrote before the proxy's hop is not its address: the proxy's is
        assert await statuses(proxy, [f"198.51.100.9, {CLIENT}"], "chained") == [429]
    assert logged_clients(caplog) == [CLIENT] * 4 + ["198.51.100.9", CLIENT]


async def test_failed_authentications_are_counted_per_forwarded_address_not_per_forgery(
    gateway_factory: GatewayFactory,
) -> None:
    async with (
        gateway_factory(
            jwt_secret=SECRET, auth_failures_per_minute=2, forwarded_allow_ips=(PROXY,)
        ) as gw,
        from_address(gw, CLIENT) as client,
    ):
        answers = []
        for index in range(3):
            response = await client.post(
                "/graphql",
                json=TYPENAME,
                headers={"authorization": "Bearer wrong", "x-forwarded-for": f"198.51.100.{index}"},
            )
            answers.append(response.status_code)
        assert answers == [401, 401, 429]


async def test_the_install_page_limit_is_per_client_address_behind_the_proxy(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(install_page_views_per_minute=2, forwarded_allow_ips=(PROXY,)) as gw:
        async with from_address(gw, CLIENT) as client:
            forged = [
                (
                    await client.get(
                        "/install/no-such-link", headers={"x-forwarded-for": f"198.51.100.{i}"}
                    )
                ).status_code
                for i in range(3)
            ]
        async with from_address(gw, PROXY) as proxy:
            forwarded = [
                (
                    await proxy.get("/install/no-such-link", headers={"x-forwarded-for": address})
                ).status_code
                for address in (CLIENT, "198.51.100.20")
            ]
    assert forged == [404, 404, 429]
    # the client's bucket is empty however it arrives; another client's is not
    assert forwarded == [429, 404]


@pytest.mark.parametrize(
    ("trusted", "seen"),
    [(("127.0.0.1",), "198.51.100.7"), ((PROXY,), "127.0.0.1")],
    ids=["from the configured proxy", "from anyone else"],
)
def test_uvicorns_access_line_and_ours_show_the_same_settled_address(
    trusted: tuple[str, ...],
    seen: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through uvicorn as `serve` runs it (its own proxy-header handling off): the app
    settles the address once, and both access lines read it."""
    settings = gateway_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        library_access_logs=True,
        forwarded_allow_ips=trusted,
    )
    options = server_options(settings)
    assert options["proxy_headers"] is False
    configure_logging("INFO", handler=False, library_access_logs=True)
    try:
        app = create_app(settings, sandboxes=make_sandboxes(), catalog_refresh=False)
        with (
            caplog.at_level(logging.INFO),
            serve_in_thread(
                app,
                log_level=options["log_level"],
                access_log=options["access_log"],
                proxy_headers=options["proxy_headers"],
            ) as url,
            httpx.Client(base_url=url) as client,
        ):
            caplog.clear()
            response = client.post(
                "/graphql", json=TYPENAME, headers={"x-forwarded-for": "198.51.100.7"}
            )
            assert response.status_code == 200
    finally:
        configure_logging("INFO")  # the suite's own set-up (tests/conftest.py)
    assert logged_clients(caplog) == [seen]
    uvicorn_lines = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert len(uvicorn_lines) == 1
    assert str(uvicorn_lines[0].args[0]).startswith(f"{seen}:")  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("10.0.0.5", ("10.0.0.5",)),
        ("10.0.0.5, 10.1.0.0/16,fd00::/8", ("10.0.0.5", "10.1.0.0/16", "fd00::/8")),
        ("none", ()),
    ],
)
def test_trusted_proxies_are_addresses_or_networks(value: str, parsed: tuple[str, ...]) -> None:
    settings = Settings.from_mapping({"ESIM_GATEWAY_FORWARDED_ALLOW_IPS": value})
    assert settings.forwarded_allow_ips == parsed
    assert Settings.from_mapping({}).forwarded_allow_ips == ("127.0.0.1",)  # uvicorn's default


@pytest.mark.parametrize("value", ["*", "proxy.internal", "10.0.0.1/8", "10.0.0.5,*"])
def test_a_wildcard_or_anything_but_an_address_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="ESIM_GATEWAY_FORWARDED_ALLOW_IPS"):
        Settings.from_mapping({"ESIM_GATEWAY_FORWARDED_ALLOW_IPS": value})


def test_uvicorns_own_variable_stops_start_up_instead_of_being_ignored() -> None:
    with pytest.raises(ConfigError, match="ESIM_GATEWAY_FORWARDED_ALLOW_IPS"):
        Settings.from_mapping({"FORWARDED_ALLOW_IPS": "10.0.0.5"})
