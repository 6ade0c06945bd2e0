"""eSIMs: lookup with ownership, usage through the loader, QR codes drawn locally."""

from __future__ import annotations

import functools
import re

import segno

from esim_gateway.context import Context
from esim_gateway.domain import EsimProfile, EsimUsage, ProviderName
from esim_gateway.errors import InvalidInput, ResourceNotFound, UnsupportedOperation
from esim_gateway.ledger.orders import OrderRecord
from esim_gateway.resolvers.orders import order_esims

__all__ = ["find_esim", "qr_svg", "usage"]

_ICCID = re.compile(r"^[0-9]{18,22}F?$")


def check_iccid(iccid: str, field: str = "iccid") -> str:
    iccid = iccid.strip()
    if not _ICCID.match(iccid):
        raise InvalidInput(field, "An ICCID is 18 to 22 digits.")
    return iccid


@functools.lru_cache(maxsize=1024)
def qr_svg(lpa: str | None) -> str | None:
    """An SVG QR code of the LPA activation string (error correction M, 4-module border)."""
    if not lpa:
        return None
    code = segno.make_qr(lpa, error="m")
    svg: str = code.svg_inline(scale=4, border=4, omitsize=False)
    return svg


async def find_esim(context: Context, iccid: str) -> tuple[EsimProfile, OrderRecord]:
    iccid = check_iccid(iccid)
    record = await context.ledger.orders.order_for_iccid(iccid)
    if record is None or not context.principal.can_see(record.owner):
        raise ResourceNotFound("No eSIM with this ICCID.")
    if record.provider is ProviderName.ROAMIFY:
        result = await context.loaders.esims.load((record.provider, iccid))
        if isinstance(result, Exception):
            raise result
        return result, record
    for profile in await order_esims(context, record):
        if profile.iccid == iccid:
            return profile, record
    result = await context.loaders.esims.load((record.provider, iccid))
    if isinstance(result, Exception):
        raise result
    return result, record


async def usage(context: Context, profile: EsimProfile) -> EsimUsage:
    gateway = context.providers.get(profile.provider)
    if not gateway.capabilities.usage:
        raise UnsupportedOperation(profile.provider.value, "usage")
    result = await context.loaders.usage.load((profile.provider, profile.iccid))
    if isinstance(result, Exception):
        raise result

    async def lookup() -> tuple[str, str] | None:
        record = await context.ledger.orders.order_for_iccid(profile.iccid)
        return (record.id, record.owner) if record is not None else None

    # a client polling usage is a reading like any other
    await context.services.esim_announcer.observe(result, lookup, source="polling")
    return result
