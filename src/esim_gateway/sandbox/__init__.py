"""The provider simulators; `standalone_app` serves both alone (`esim-gateway sandbox`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import Mount

if TYPE_CHECKING:
    from esim_gateway.sandbox.roamify import RoamifySandbox
    from esim_gateway.sandbox.simplifytrip import SimplifyTripSandbox

__all__ = ["standalone_app"]


def standalone_app(roamify: RoamifySandbox, simplifytrip: SimplifyTripSandbox) -> Starlette:
    """Both simulators under one server: `/roamify/api/...` and `/simplifytrip/api/v1/...`,
    the base URLs a gateway is given for them (see docker-compose.yml). At shutdown both
    close: pending work is cancelled and a persisted state is saved."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await roamify.aclose()
            await simplifytrip.aclose()

    return Starlette(
        routes=[Mount("/roamify", app=roamify.app), Mount("/simplifytrip", app=simplifytrip.app)],
        lifespan=lifespan,
    )
