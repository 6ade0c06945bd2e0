"""The per-request context handed to every resolver, and the services behind it.

`Services` names every long-lived service of the gateway, so this module imports their
types for type checking only: at run time it needs nothing but the loaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.websockets import WebSocket

    from esim_gateway.config import Settings
    from esim_gateway.dataloaders.catalog import Catalog
    from esim_gateway.dataloaders.loaders import Loaders
    from esim_gateway.http.auth import Authenticator, Principal
    from esim_gateway.ledger.repository import Ledger
    from esim_gateway.live.broker import LocalBroker
    from esim_gateway.ops.metrics import Metrics
    from esim_gateway.ops.tracing import Tracing
    from esim_gateway.outbound.dispatcher import WebhookDispatcher
    from esim_gateway.outbound.esim_watch import EsimAnnouncer, EsimWatcher
    from esim_gateway.outbound.urls import UrlPolicy
    from esim_gateway.pricing.prices import Prices
    from esim_gateway.providers.registry import Providers
    from esim_gateway.purchasing.driver import PurchaseDriver
    from esim_gateway.purchasing.reconciler import Reconciler
    from esim_gateway.purchasing.scheduler import Scheduler
    from esim_gateway.resolvers.install import InstallServices
    from esim_gateway.webhooks.processing import EventProcessor

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
    metrics: Metrics
    tracing: Tracing
    #: settles purchases whose outcome is not known yet
    reconciler: Reconciler
    #: sends scheduled orders when their time comes
    scheduler: Scheduler
    #: applies the providers' webhook events
    webhooks: EventProcessor
    install: InstallServices
    #: delivers the outbound webhooks of the ledger's outbox
    webhook_dispatcher: WebhookDispatcher
    #: which receiver URLs outbound webhooks may be sent to
    webhook_policy: UrlPolicy
    esim_announcer: EsimAnnouncer
    #: polls usage and expiry of the eSIMs that outbound endpoints follow
    esim_watcher: EsimWatcher


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
