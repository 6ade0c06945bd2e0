"""`make run` stopped and started again: the sandbox gateway still knows what it sold.

The gateway is built the way `esim-gateway serve` builds it (`create_app(settings)`, its
simulators made by `Sandboxes.create`) on a SQLite ledger file, shut down, and built again
from the same files.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from esim_gateway.app import Sandboxes, create_app
from esim_gateway.cli import main
from esim_gateway.config import Settings
from tests.conftest import gateway_settings

ORDER_FIELDS = """__typename ... on Order { id status esims { iccid status lpa } }
  ... on Error { message }"""
CREATE = f"""mutation Create($input: CreateOrderInput!) {{
  createOrder(input: $input) {{ {ORDER_FIELDS} }} }}"""
ORDER = f"query Order($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
PACKAGE = """query Packages($filter: PackageFilter) {
  packages(filter: $filter, first: 50) { edges { node { packageId requiresTravelDate } } } }"""
LINK = """mutation Link($iccid: String!) { createInstallLink(iccid: $iccid) { __typename
  ... on InstallLink { url } ... on Error { message } } }"""
PROVIDERS = ("ROAMIFY", "SIMPLIFYTRIP")


class Running:
    def __init__(self, app: Any, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http

    @property
    def sandboxes(self) -> Sandboxes:
        sandboxes: Sandboxes = self.app.state.sandboxes
        return sandboxes

    async def execute(self, document: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": document, "variables": variables}
        )
        body = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def buy(self, provider: str) -> dict[str, Any]:
        edges = (await self.execute(PACKAGE, filter={"provider": provider}))["packages"]["edges"]
        package = next(e["node"] for e in edges if not e["node"]["requiresTravelDate"])
        payload = {
            "provider": provider,
            "items": [{"packageId": package["packageId"], "quantity": 1}],
            "idempotencyKey": f"restart-{provider}",
        }
        order: dict[str, Any] = (await self.execute(CREATE, input=payload))["createOrder"]
        return order


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Running]:
    app = create_app(settings, reconcile_interval=3600, catalog_refresh=False)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway.test"
        ) as http,
    ):
        yield Running(app, http)


def json_files(folder: Path) -> list[Path]:
    return list(folder.glob("*.json"))


def install_path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")


async def test_after_a_restart_orders_keep_their_esims_and_install_links_still_open(
    settings: Settings, tmp_path: Path
) -> None:
    async with running(settings) as gw:
        bought = {provider: await gw.buy(provider) for provider in PROVIDERS}
        for order in bought.values():
            assert order["__typename"] == "Order" and order["status"] == "COMPLETED", order
            assert len(order["esims"]) == 1 and order["esims"][0]["lpa"]
        link = (await gw.execute(LINK, iccid=bought["ROAMIFY"]["esims"][0]["iccid"]))[
            "createInstallLink"
        ]
        assert link["__typename"] == "InstallLink", link
        assert (await gw.http.get(install_path(link["url"]))).status_code == 200
    assert (tmp_path / "ledger.sandbox.json").is_file()

    async with running(settings) as gw:
        for provider, order in bought.items():
            again = (await gw.execute(ORDER, id=order["id"]))["order"]
            assert again["__typename"] == "Order", (provider, again)
            assert again["status"] == "COMPLETED"
            assert [e["iccid"] for e in again["esims"]] == [e["iccid"] for e in order["esims"]]
            assert [e["lpa"] for e in again["esims"]] == [e["lpa"] for e in order["esims"]]
        page = await gw.http.get(install_path(link["url"]))
        assert page.status_code == 200, page.text
        assert bought["ROAMIFY"]["esims"][0]["lpa"].split("$")[-1] in page.text


async def test_with_the_state_in_memory_a_restart_forgets_the_simulated_orders(
    tmp_path: Path,
) -> None:
    """The contrast (ESIM_GATEWAY_SANDBOX_STATE=memory): what the test above guards."""
    settings = gateway_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", sandbox_state="memory"
    )
    async with running(settings) as gw:
        order = await gw.buy("ROAMIFY")
        assert len(order["esims"]) == 1
    assert json_files(tmp_path) == []
    async with running(settings) as gw:
        assert gw.sandboxes.roamify.state.orders == {}
        again = (await gw.execute(ORDER, id=order["id"]))["order"]
        assert again["__typename"] != "Order" or again["esims"] != order["esims"]


async def test_sandbox_reset_empties_the_simulators_and_the_ledger_keeps_its_orders(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(settings) as gw:
        order = await gw.buy("SIMPLIFYTRIP")
        assert order["__typename"] == "Order"
    monkeypatch.setenv("ESIM_GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's is read
    assert main(["sandbox-reset"]) == 0
    assert not (tmp_path / "ledger.sandbox.json").exists()
    assert main(["sandbox-reset"]) == 0  # nothing left: still fine

    async with running(settings) as gw:
        assert gw.sandboxes.simplifytrip.state.orders == {}
        assert gw.sandboxes.roamify.state.orders == {}
        again = (await gw.execute(ORDER, id=order["id"]))["order"]
        assert again["__typename"] == "Order" and again["id"] == order["id"]


async def test_a_reset_ledger_takes_the_simulators_state_with_it(
    settings: Settings, tmp_path: Path
) -> None:
    async with running(settings) as gw:
        await gw.buy("ROAMIFY")
    assert (tmp_path / "ledger.sandbox.json").is_file()
    (tmp_path / "ledger.db").unlink()
    async with running(settings) as gw:
        assert gw.sandboxes.roamify.state.orders == {}


def test_the_standalone_sandbox_reset_takes_its_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "sims.json"
    state.write_text('{"version": 1}')
    assert main(["sandbox-reset", "--state", str(state)]) == 0
    assert not state.exists()
    assert "removed" in capsys.readouterr().out


async def test_the_standalone_sandbox_with_a_state_file_restores_and_saves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    import esim_gateway.ops.heap

    state = tmp_path / "sims.json"
    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    monkeypatch.setattr(esim_gateway.ops.heap, "freeze_long_lived", lambda: None)
    auth = {"authorization": "Bearer sandbox-roamify-token"}
    for run in range(2):
        assert main(["sandbox", "--state", str(state)]) == 0
        async with (
            LifespanManager(served[-1]) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://sims"
            ) as http,
        ):
            if run == 0:
                packages = await http.get(
                    "/roamify/api/esim/packages?countryCode=JP&page=1&pageSize=50", headers=auth
                )
                package = next(
                    p["packageId"]
                    for p in packages.json()["data"]["packages"]
                    if p["activation"] != "travel-date"
                )
                created = await http.post(
                    "/roamify/api/esim/order",
                    json={"items": [{"packageId": package, "quantity": 1}]},
                    headers=auth,
                )
                order_id = created.json()["data"]["id"]
            found = await http.get(f"/roamify/api/esim/order?orderId={order_id}", headers=auth)
            assert found.status_code == 200, found.text
        assert state.is_file()
