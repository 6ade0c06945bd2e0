"""A newcomer's first query and mutation work as written: the README's and GraphiQL's
saved tabs, with the first packageId of the listing pasted into the purchase."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from esim_gateway.app import Sandboxes
from esim_gateway.http.view import EXAMPLE_OPERATIONS
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox
from tests.conftest import Gateway, GatewayFactory

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_blocks() -> list[str]:
    return re.findall(r"```graphql\n(.*?)```", README.read_text(), re.DOTALL)


def examples() -> list[tuple[str, str, str]]:
    """(where, the listing, the purchase with its placeholder)."""
    blocks = readme_blocks()
    tabs = dict(EXAMPLE_OPERATIONS)
    return [
        ("README", blocks[0], blocks[1]),
        ("GraphiQL", tabs["List plans"], tabs["Buy an eSIM"]),
    ]


@pytest.mark.parametrize(("where", "listing", "purchase"), examples(), ids=["README", "GraphiQL"])
async def test_the_first_listed_package_can_be_bought_as_written(
    gateway_factory: GatewayFactory, where: str, listing: str, purchase: str
) -> None:
    # the catalogs a newcomer's sandbox has (the fixture's are smaller, in another order)
    sandboxes = Sandboxes(
        roamify=create_roamify_sandbox(),
        simplifytrip=create_simplifytrip_sandbox(fulfil_delay=0),
    )
    async with gateway_factory(sandboxes=sandboxes) as gateway:
        await first_steps(gateway, where, listing, purchase)


async def first_steps(gateway: Gateway, where: str, listing: str, purchase: str) -> None:
    plans = (await gateway.execute(listing))["packages"]["edges"]
    assert plans, where
    first = plans[0]["node"]["packageId"]
    placeholder = re.search(r'packageId: "([^"]*)"', purchase)
    assert placeholder is not None, where
    document = purchase.replace(placeholder.group(1), first)
    before = await gateway.upstream_calls()
    answer = (await gateway.execute(document))["createOrder"]
    assert answer["__typename"] == "Order", (where, answer)
    assert answer["status"] == "COMPLETED" and answer["esims"], answer
    assert await gateway.upstream_calls() > before
