"""The ASGI application: `create_app(settings)` wires everything; the lifespan owns I/O.

In sandbox mode (the default) both provider simulators run inside the process: they are
mounted under /sandbox/... for curl users, and the adapters reach them in-process through
`SandboxTransport`, with the same paths, bodies, signatures and failures as over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from esim_gateway.auth import Authenticator
from esim_gateway.background import BackgroundLoop
from esim_gateway.config import HttpTransport, Settings
from esim_gateway.context import Services
from esim_gateway.dataloaders.catalog import Catalog
from esim_gateway.heap import ServerHeap, freeze_long_lived
from esim_gateway.ledger.repository import Ledger
from esim_gateway.live import create_broker
from esim_gateway.observability import (
    InstrumentedTransport,
    Metrics,
    RequestAccounting,
    RequestMiddleware,
)
from esim_gateway.outbound.dispatcher import WebhookDispatcher
from esim_gateway.outbound.esim_watch import EsimWatcher
from esim_gateway.outbound.urls import Resolver, UrlPolicy, system_resolver
from esim_gateway.persisted import (
    ApqStore,
    MemoryApqStore,
    PersistedDocuments,
    RedisApqStore,
    TrustedDocuments,
)
from esim_gateway.pricing import Prices
from esim_gateway.providers._http import ProviderClient, Timeouts
from esim_gateway.providers.base import ProviderGateway, ProviderName
from esim_gateway.providers.registry import Providers
from esim_gateway.resolvers.install import InstallServices
from esim_gateway.resolvers.purchasing import PurchaseDriver
from esim_gateway.resolvers.reconciler import Reconciler
from esim_gateway.resolvers.scheduling import Scheduler
from esim_gateway.routing import GRAPHQL_PATH, GatewayApp
from esim_gateway.schema import build_schema
from esim_gateway.tracing import Tracing, build_tracing
from esim_gateway.view import GatewayGraphQL
from esim_gateway.webhooks.endpoints import webhook_routes
from esim_gateway.webhooks.processing import EventProcessor

if TYPE_CHECKING:  # imported when chosen: pyreqwest may have no wheel for this platform
    from esim_gateway.providers.reqwest import ReqwestTransport

__all__ = ["Sandboxes", "create_app"]

log = logging.getLogger("esim_gateway")

SANDBOX_HOSTS = {
    ProviderName.ROAMIFY: "http://roamify.sandbox",
    ProviderName.SIMPLIFYTRIP: "http://simplifytrip.sandbox",
}


@dataclass
class Sandboxes:
    """The in-process simulators of sandbox mode (absent in live mode)."""

    roamify: Any = None
    simplifytrip: Any = None

    @classmethod
    def create(cls, settings: Settings) -> Sandboxes:
        from esim_gateway.sandbox.roamify import create_roamify_sandbox
        from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox

        return cls(
            roamify=None
            if settings.roamify_base_url
            else create_roamify_sandbox(
                token=settings.roamify_token or "",
                webhook_secret=settings.roamify_webhook_secret or "",
            ),
            simplifytrip=None
            if settings.simplifytrip_base_url
            else create_simplifytrip_sandbox(
                api_key=settings.simplifytrip_api_key or "",
                secret_key=settings.simplifytrip_secret_key or "",
                checksum_key=settings.simplifytrip_checksum_key or "",
                fulfil_delay=settings.sandbox_fulfil_delay,
            ),
        )

    def deliver_webhooks_to(self, app: Any) -> httpx.AsyncClient:
        """Point both simulators' webhooks at the gateway itself, in-process (sandbox
        mode): the gateway sees the same signed deliveries a live one would."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.internal", timeout=3.0
        )
        for name, sandbox in (("roamify", self.roamify), ("simplifytrip", self.simplifytrip)):
            if sandbox is not None:
                sandbox.webhooks.url = f"http://gateway.internal/webhooks/{name}"
                sandbox.webhooks._client = client
                sandbox.webhooks._own_client = False  # the lifespan closes it
        return client

    def get(self, provider: ProviderName) -> Any:
        return self.roamify if provider is ProviderName.ROAMIFY else self.simplifytrip

    async def aclose(self) -> None:
        for sandbox in (self.roamify, self.simplifytrip):
            if sandbox is not None:
                await sandbox.aclose()


@dataclass
class _Resources:
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    engine: AsyncEngine | None = None


@functools.cache
def _reqwest_transport() -> type[ReqwestTransport] | None:
    """The default transport's class, or None where pyreqwest does not import (no wheel
    for this platform): then httpx's own transport, and one WARNING per process."""
    try:
        from esim_gateway.providers.reqwest import ReqwestTransport
    except ImportError as exc:
        if not (exc.name or "").startswith("pyreqwest"):
            raise  # our module's own fault, not a missing wheel
        log.warning(
            "pyreqwest cannot be imported (%s): provider calls go through httpx's own"
            " transport instead (ESIM_GATEWAY_HTTP_TRANSPORT=httpx says so and stops this"
            " warning)",
            exc,
        )
        return None
    return ReqwestTransport


def _transport(settings: Settings) -> httpx.AsyncBaseTransport:
    reqwest = _reqwest_transport() if settings.http_transport is HttpTransport.REQWEST else None
    if reqwest is not None:
        return reqwest(connect_timeout=Timeouts().connect, max_connections=100)
    return httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
        retries=0,
    )


def _client(base_url: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    return ProviderClient(
        base_url=base_url,
        transport=transport,
        timeout=httpx.Timeout(5.0, connect=3.0),
        headers={"user-agent": "esim-gateway/0.1"},
    )


def build_providers(
    settings: Settings,
    resources: _Resources,
    sandboxes: Sandboxes | None,
    transports: Mapping[ProviderName, httpx.AsyncBaseTransport],
    timeouts: Timeouts,
    metrics: Metrics,
    tracing: Tracing,
) -> Providers:
    from esim_gateway.providers.roamify import RoamifyClient, RoamifyGateway
    from esim_gateway.providers.simplifytrip import SimplifyTripClient, SimplifyTripGateway
    from esim_gateway.sandbox.transport import SandboxTransport

    def endpoint(provider: ProviderName, base_url: str | None) -> tuple[str, Any] | None:
        transport: httpx.AsyncBaseTransport
        sandbox = sandboxes.get(provider) if sandboxes is not None else None
        if provider in transports:
            base_url, transport = base_url or SANDBOX_HOSTS[provider], transports[provider]
        elif base_url is None and sandbox is not None:
            base_url, transport = SANDBOX_HOSTS[provider], SandboxTransport(sandbox.app)
        elif base_url is None:
            return None
        else:
            transport = _transport(settings)
        return base_url, InstrumentedTransport(transport, provider.value, metrics, tracing)

    gateways: dict[ProviderName, ProviderGateway] = {}
    roamify = endpoint(ProviderName.ROAMIFY, settings.roamify_base_url)
    if roamify is not None and settings.roamify_token:
        client = _client(*roamify)
        resources.clients.append(client)
        gateways[ProviderName.ROAMIFY] = RoamifyGateway(
            RoamifyClient(client, token=settings.roamify_token, timeouts=timeouts)
        )
    elif not settings.is_sandbox:
        log.warning("roamify is not configured: its operations answer ProviderError")
    simplifytrip = endpoint(ProviderName.SIMPLIFYTRIP, settings.simplifytrip_base_url)
    if (
        simplifytrip is not None
        and settings.simplifytrip_api_key
        and settings.simplifytrip_secret_key
        and settings.simplifytrip_checksum_key
    ):
        client = _client(*simplifytrip)
        resources.clients.append(client)
        gateways[ProviderName.SIMPLIFYTRIP] = SimplifyTripGateway(
            SimplifyTripClient(
                client,
                api_key=settings.simplifytrip_api_key,
                secret_key=settings.simplifytrip_secret_key,
                checksum_key=settings.simplifytrip_checksum_key,
                timeouts=timeouts,
            )
        )
    elif not settings.is_sandbox:
        log.warning("simplifytrip is not configured: its operations answer ProviderError")
    return Providers(gateways, concurrency=settings.provider_concurrency)


async def refresh_roamify_rates(services: Services, settings: Settings) -> None:
    """Replace the static rates by Roamify's (the rate's source and time are exposed)."""
    from datetime import UTC, datetime

    from esim_gateway.pricing import Rate
    from esim_gateway.providers.roamify import RoamifyGateway

    gateway = services.providers.get(ProviderName.ROAMIFY)
    if not isinstance(gateway, RoamifyGateway):
        return
    currencies = [code for code, _ in settings.usd_rates if code != "USD"]
    rates = await services.providers.read(
        ProviderName.ROAMIFY, lambda: gateway.usd_rates(currencies)
    )
    now = datetime.now(UTC)
    services.prices.update_rates(Rate(code, value, now, "roamify") for code, value in rates.items())


async def _follow_roamify_rates(services: Services, settings: Settings) -> None:
    while True:
        try:
            await refresh_roamify_rates(services, settings)
        except Exception:  # keep the last rates (static or earlier); try again later
            log.warning("could not refresh exchange rates from roamify", exc_info=True)
        await asyncio.sleep(max(60.0, settings.catalog_ttl))


def persisted_documents(settings: Settings) -> PersistedDocuments:
    """APQ's store and the trusted manifests. A bad manifest raises ConfigError (one line
    naming the file and the entry), so the gateway does not start with it."""
    from pathlib import Path

    store: ApqStore | None = None
    if settings.apq_redis_url:
        store = RedisApqStore(settings.apq_redis_url)
    elif settings.apq_cache_size > 0:
        store = MemoryApqStore(settings.apq_cache_size)
    trusted = TrustedDocuments.load(Path(path) for path in settings.trusted_documents)
    if settings.trusted_documents_only and not trusted and not settings.is_sandbox:
        from esim_gateway.config import ConfigError

        raise ConfigError(
            "ESIM_GATEWAY_TRUSTED_DOCUMENTS_ONLY is on but ESIM_GATEWAY_TRUSTED_DOCUMENTS"
            " names no document: nothing could run"
        )
    from esim_gateway.schema import Limits

    return PersistedDocuments(
        store,
        trusted,
        trusted_only=settings.only_trusted_documents,
        max_tokens=Limits().max_tokens,
    )


def _json_text(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_app(
    settings: Settings | None = None,
    *,
    sandboxes: Sandboxes | None = None,
    transports: Mapping[ProviderName, httpx.AsyncBaseTransport] | None = None,
    timeouts: Timeouts | None = None,
    reconcile_interval: float = 15.0,
    sandbox_webhooks: bool = True,
    catalog_refresh: bool = True,
    tracer_provider: Any | None = None,
    optimised: bool = True,
    freeze_heap: bool = False,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    webhook_resolver: Resolver = system_resolver,
    webhook_dispatch: bool = True,
) -> Starlette:
    """Build the gateway. Nothing is connected until the lifespan starts.

    `transports` replaces the HTTP transport per provider (tests, benchmarks);
    `sandboxes` supplies pre-built simulators (tests arm faults on them);
    `tracer_provider` (an OpenTelemetry one) receives the spans instead of the configured one;
    `optimised=False` drops the parser, validation and ledger read caches: the naive build
    the benchmarks measure our tuning against, never for serving; `freeze_heap` is for a
    server process that hosts only this app (see `esim_gateway.heap`);
    `webhook_transport` and `webhook_resolver` replace how outbound webhooks reach their
    receivers and resolve their host names, and `webhook_dispatch=False` leaves the
    delivery loop stopped so a test drives `run_once` itself.

    Raises `ConfigError` for a configuration that would serve purchases to anyone (see
    `Settings.check_safe_to_serve`): no app, no server.
    """
    settings = settings or Settings()
    settings.check_safe_to_serve()
    settings = settings.with_sandbox_credentials()
    if settings.is_sandbox and sandboxes is None:
        sandboxes = Sandboxes.create(settings)
    schema = build_schema(
        introspection=settings.introspection_enabled,
        mask_errors=not settings.is_sandbox,
        caches=optimised,
    )
    view = GatewayGraphQL(schema, settings=settings, documents=persisted_documents(settings))
    metrics = Metrics()
    tracing = build_tracing(
        enabled=settings.otel_enabled,
        endpoint=settings.otel_endpoint,
        tracer_provider=tracer_provider,
    )
    resources = _Resources()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # SQLite is a local file: a liveness ping per checkout would only add latency
        sqlite = settings.database_url.startswith("sqlite")
        engine = create_async_engine(
            settings.database_url,
            pool_pre_ping=not sqlite,
            # a writer waits for another's lock up to 30 s (sqlite3's default: 5) rather
            # than fail a ledger write with "database is locked" on a starved machine
            connect_args={"timeout": 30.0} if sqlite else {},
            # JSON columns (a catalog snapshot is megabytes) coded by orjson, not json
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
        )
        resources.engine = engine
        ledger = Ledger(engine, read_cache_ttl=2.0 if optimised else 0.0)
        await ledger.migrate()
        providers = build_providers(
            settings,
            resources,
            sandboxes,
            transports or {},
            timeouts or Timeouts(),
            metrics,
            tracing,
        )
        if sandboxes is not None and sandbox_webhooks:
            resources.clients.append(sandboxes.deliver_webhooks_to(app))
        broker = create_broker(settings.database_url)
        await broker.start()
        ledger.listeners.append(broker.publish)
        # a change anywhere (this replica or another) evicts the order from the read cache
        broker.observers.append(
            lambda topic, message: (
                ledger.invalidate(message) if topic.startswith("order:") else None
            )
        )
        driver = PurchaseDriver(
            ledger,
            providers,
            quiet_periods={
                ProviderName(name): seconds for name, seconds in settings.quiet_periods.items()
            },
            watch_for=settings.purchase_watch_period,
            on_duplicate=lambda provider: metrics.duplicate_purchases.labels(provider.value).inc(),
        )
        catalog = Catalog(
            providers,
            ttl=settings.catalog_ttl,
            ledger=ledger,
            heap=ServerHeap() if freeze_heap else None,
        )
        reconciler = Reconciler(ledger, driver, interval=reconcile_interval)
        scheduler = Scheduler(ledger, driver, catalog, interval=settings.scheduler_interval)
        services = Services(
            settings=settings,
            ledger=ledger,
            providers=providers,
            catalog=catalog,
            driver=driver,
            authenticator=Authenticator(settings),
            broker=broker,
            prices=Prices(
                settings.usd_rates, dict(settings.markups), source=settings.usd_rates_source
            ),
            extras={
                "reconciler": reconciler,
                "scheduler": scheduler,
                "metrics": metrics,
                "tracing": tracing,
            },
        )
        processor = EventProcessor(ledger, driver, broker)
        services.extras["webhooks"] = processor
        install = InstallServices.create(services)
        services.extras["install"] = install
        reconciler.events = processor
        webhook_client = httpx.AsyncClient(
            transport=webhook_transport
            or httpx.AsyncHTTPTransport(
                retries=0,
                # no reuse: connections are opened to checked addresses, and one opened
                # for one host name must not carry another's delivery
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=0),
            ),
            timeout=httpx.Timeout(settings.webhook_timeout),
            headers={"user-agent": "esim-gateway-webhooks/0.1"},
            follow_redirects=False,  # a redirect could point into a private network
        )
        resources.clients.append(webhook_client)
        dispatcher = WebhookDispatcher(
            ledger.outbound,
            webhook_client,
            UrlPolicy(live=not settings.is_sandbox, resolve=webhook_resolver),
            retry_schedule=settings.webhook_retry_schedule,
            interval=settings.webhook_poll_interval,
            timeout=settings.webhook_timeout,
            retention=timedelta(days=settings.webhook_retention_days),
        )
        services.extras["webhook_dispatcher"] = dispatcher
        services.extras["esim_announcer"] = processor.announcer
        watcher = EsimWatcher(
            ledger.outbound,
            providers,
            processor.announcer,
            interval=settings.usage_poll_interval,
        )
        services.extras["esim_watcher"] = watcher
        services.extras["webhook_policy"] = dispatcher.policy

        async def wake_dispatcher(topic: str, message: str) -> None:
            if topic.startswith("order:"):
                dispatcher.wake()

        ledger.listeners.append(wake_dispatcher)
        app.state.services = services
        view.services = services
        if freeze_heap:
            freeze_long_lived()
        reconciler.start()
        scheduler.start()
        if webhook_dispatch:
            dispatcher.start()
            watcher.start()
        if catalog_refresh:
            catalog.start()
        rates = BackgroundLoop(
            "roamify-rates", functools.partial(_follow_roamify_rates, services, settings)
        )
        if settings.usd_rates_source == "roamify" and ProviderName.ROAMIFY in set(
            providers.enabled()
        ):
            rates.start()
        try:
            yield
        finally:
            await catalog.stop()
            await view.limiter.aclose()
            if view.documents is not None:
                await view.documents.aclose()
            await install.aclose()
            await rates.stop()
            await reconciler.stop()
            await scheduler.stop()
            await dispatcher.stop()
            await watcher.stop()
            await driver.shutdown()
            await broker.stop()
            if sandboxes is not None:
                await sandboxes.aclose()
            for client in resources.clients:
                await client.aclose()
            await engine.dispose()
            tracing.shutdown()

    async def metrics_endpoint(request: Request) -> Response:
        services: Services | None = getattr(request.app.state, "services", None)
        if services is not None:
            for name, breaker in services.providers.breakers.items():
                metrics.circuit_open.labels(name.value).set(
                    0 if breaker.state.value == "closed" else 1
                )
            metrics.reconciler_backlog.set(len(await services.ledger.unsettled(limit=10_000)))
            metrics.outbound_pending.set(await services.ledger.outbound.pending_count())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        services: Services = request.app.state.services
        checks: dict[str, str] = {}
        try:
            await services.ledger.ping()
            checks["database"] = "ok"
        except Exception as exc:  # any driver error means not ready
            checks["database"] = f"unavailable: {type(exc).__name__}"
        enabled = set(services.providers.enabled())
        for provider in ProviderName:
            checks[provider.value] = "enabled" if provider in enabled else "not configured"
        # with no provider enabled every purchase and read would fail: not ready
        ready = checks["database"] == "ok" and bool(enabled)
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    routes: list[BaseRoute] = [
        # GET and POST are answered by GatewayApp before the router; the route still
        # answers the other methods (405, or HEAD through the view)
        Route(GRAPHQL_PATH, view, methods=["GET", "POST"]),
        WebSocketRoute(GRAPHQL_PATH, view),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        *webhook_routes(),
    ]
    from esim_gateway.graphiql import graphiql_assets_dir, graphiql_routes

    routes.extend(graphiql_routes(graphiql_assets_dir()))
    from esim_gateway.install.page import install_routes

    routes.extend(install_routes())
    if sandboxes is not None:
        if sandboxes.roamify is not None:
            routes.append(Mount("/sandbox/roamify", app=sandboxes.roamify.app))
        if sandboxes.simplifytrip is not None:
            routes.append(Mount("/sandbox/simplifytrip", app=sandboxes.simplifytrip.app))
    accounting = RequestAccounting(metrics)
    app = GatewayApp(
        graphql=view.http.answer,
        accounting=accounting,
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(RequestMiddleware, metrics=metrics, accounting=accounting)],
    )
    app.state.settings = settings
    app.state.sandboxes = sandboxes
    app.state.schema = schema
    return app
