"""The per-request context handed to every resolver, and the services behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.websockets import WebSocket

    from esim_gateway.auth import Authenticator, Principal
    from esim_gateway.config import Settings
    from esim_gateway.dataloaders.catalog import Catalog
    from esim_gateway.dataloaders.loaders import Loaders
    from esim_gateway.ledger.repository import Ledger
    from esim_gateway.live import LocalBroker
    from esim_gateway.pricing import Prices
    from esim_gateway.providers.registry import Providers
    from esim_gateway.purchasing.driver import PurchaseDriver

__all__ = ["Context", "Services"]


@dataclass(slots=True)
class Services:
    """Long-lived objects owned by the app's lifespan; shared by every request."""

    settings: Settings
    ledger: Ledger
    providers: Providers
    catalog: Catalog
    driver: PurchaseDriver
    authenticator: Authenticator
    broker: LocalBroker
    prices: Prices
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Context:
    services: Services
    principal: Principal
    loaders: Loaders
    request: Request | WebSocket | None = None
    response: Response | None = None
    #: graphql-transport-ws `connection_init` payload (subscriptions only)
    connection_params: dict[str, Any] | None = None

    def fresh_loaders(self) -> None:
        """New loaders (empty caches): each subscription event must see current data."""
        from esim_gateway.dataloaders.loaders import build_loaders

        self.loaders = build_loaders(self.services.providers, self.services.ledger)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def ledger(self) -> Ledger:
        return self.services.ledger

    @property
    def providers(self) -> Providers:
        return self.services.providers
