"""Roamify's own share link (`POST /api/esim/link`) through the adapter, on the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from esim_gateway.errors import NotFound, ProviderError
from esim_gateway.providers.base import ShareLinkGateway
from tests.contract.test_roamify_adapter import Rig, a_fulfilled_order, open_rig


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with open_rig() as opened:
        yield opened


async def test_the_share_link_is_read_by_iccid_and_keeps_every_field(rig: Rig) -> None:
    order = await a_fulfilled_order(rig, quantity=1)
    esim = order.esims[0]
    gateway = rig.gateway()
    assert isinstance(gateway, ShareLinkGateway)
    link = await gateway.share_link(esim.iccid)
    wire = await rig.client().share_link(esim_id=esim.esim_id)
    assert link.iccid == esim.iccid == wire.iccid and wire.esim_id == esim.esim_id
    assert link.url == wire.link and link.url.startswith("https://dev.esims.link/")
    assert link.whatsapp_url == wire.whatsapp_link and link.access_code == wire.access_code
    assert wire.key is not None and len(wire.key) == 12 and link.created_at is not None
    assert esim.iccid in repr(link) and link.url not in repr(link) and link.url not in repr(wire)
    assert rig.calls("POST", "/api/esim/link") == 2


async def test_an_unknown_esim_has_no_share_link(rig: Rig) -> None:
    with pytest.raises(NotFound):
        await rig.gateway().share_link("8999999999999999999")


async def test_the_client_asks_for_exactly_one_key(rig: Rig) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await rig.client().share_link()
    assert rig.calls("POST", "/api/esim/link") == 0


async def test_a_refusal_keeps_roamifys_code(rig: Rig) -> None:
    rig.sandbox.control.faults.arm(
        "POST", "/api/esim/link", status=403, body={"message": "Not enabled", "code": "NO_LINK"}
    )
    with pytest.raises(ProviderError) as caught:
        await rig.gateway().share_link("8999999999999999999")
    assert (caught.value.status, caught.value.error_code) == (403, "NO_LINK")
