"""The ASGI application: `create_app(settings)` wires everything; the lifespan owns I/O.

In sandbox mode (the default) both provider simulators run inside the process: they are
mounted under /sandbox/... for curl users, and the adapters reach them in-process through
`SandboxTransport`, with the same paths, bodies, signatures and failures as over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from esim_gateway.config import HttpTransport, Settings
from esim_gateway.context import Services
from esim_gateway.dataloaders.catalog import Catalog
from esim_gateway.domain import ProviderName
from esim_gateway.http.auth import Authenticator, bearer_matches
from esim_gateway.http.persisted import (
    ApqStore,
    MemoryApqStore,
    PersistedDocuments,
    RedisApqStore,
    TrustedDocuments,
)
from esim_gateway.http.routing import GRAPHQL_PATH, GatewayApp
from esim_gateway.http.view import GatewayGraphQL
from esim_gateway.ledger.repository import Ledger
from esim_gateway.live.broker import LocalBroker, create_broker
from esim_gateway.ops.background import BackgroundLoop
from esim_gateway.ops.heap import ServerHeap, freeze_long_lived
from esim_gateway.ops.metrics import Metrics
from esim_gateway.ops.requests import RequestAccounting, RequestMiddleware
from esim_gateway.ops.tracing import Tracing, build_tracing
from esim_gateway.outbound.dispatcher import WebhookDispatcher
from esim_gateway.outbound.esim_watch import EsimWatcher
from esim_gateway.outbound.urls import Resolver, UrlPolicy, system_resolver
from esim_gateway.pricing.prices import Prices
from esim_gateway.providers._http import ProviderClient, Timeouts
from esim_gateway.providers.base import ProviderGateway
from esim_gateway.providers.instrumented import InstrumentedTransport
from esim_gateway.providers.registry import Providers
from esim_gateway.purchasing.driver import PurchaseDriver
from esim_gateway.purchasing.reconciler import Reconciler
from esim_gateway.purchasing.scheduler import Scheduler
from esim_gateway.resolvers.install import InstallServices
from esim_gateway.schema import build_schema
from esim_gateway.webhooks.endpoints import webhook_routes
from esim_gateway.webhooks.processing import EventProcessor

if TYPE_CHECKING:  # imported when chosen: pyreqwest may have no wheel for this platform
    from esim_gateway.providers.reqwest import ReqwestTransport

__all__ = ["Running", "Sandboxes", "Wiring", "build_services", "create_app", "started"]

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
        from esim_gateway.sandbox.persistence import state_for_ledger
        from esim_gateway.sandbox.roamify import create_roamify_sandbox
        from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox

        store = state_for_ledger(settings.database_url, settings.sandbox_state)
        return cls(
            roamify=None
            if settings.roamify_base_url
            else create_roamify_sandbox(
                token=settings.roamify_token or "",
                webhook_secret=settings.roamify_webhook_secret or "",
                store=store,
            ),
            simplifytrip=None
            if settings.simplifytrip_base_url
            else create_simplifytrip_sandbox(
                api_key=settings.simplifytrip_api_key or "",
                secret_key=settings.simplifytrip_secret_key or "",
                checksum_key=settings.simplifytrip_checksum_key or "",
                fulfil_delay=settings.sandbox_fulfil_delay,
                store=store,
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
    clients: list[httpx.AsyncClient],
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
        clients.append(client)
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
        clients.append(client)
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

    from esim_gateway.pricing.prices import Rate
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


@dataclass(frozen=True, slots=True)
class Wiring:
    """What `create_app`'s keyword arguments change in the build (tests, benchmarks)."""

    sandboxes: Sandboxes | None
    transports: Mapping[ProviderName, httpx.AsyncBaseTransport]
    timeouts: Timeouts
    reconcile_interval: float
    sandbox_webhooks: bool
    catalog_refresh: bool
    optimised: bool
    freeze_heap: bool
    webhook_transport: httpx.AsyncBaseTransport | None
    webhook_resolver: Resolver
    webhook_dispatch: bool


@dataclass(frozen=True, slots=True)
class Running:
    """A long-running part of the gateway. The lifespan starts the parts in list order and
    stops the started ones in reverse; `start` and `stop` may be coroutine functions."""

    name: str
    stop: Callable[[], object]
    start: Callable[[], object] | None = None


def _engine(settings: Settings) -> AsyncEngine:
    # SQLite is a local file: a liveness ping per checkout would only add latency
    sqlite = settings.database_url.startswith("sqlite")
    return create_async_engine(
        settings.database_url,
        pool_pre_ping=not sqlite,
        # a writer waits for another's lock up to 30 s (sqlite3's default: 5) rather than
        # fail a ledger write with "database is locked" on a starved machine
        connect_args={"timeout": 30.0} if sqlite else {},
        # JSON columns (a catalog snapshot is megabytes) coded by orjson, not json
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )


def _broker(settings: Settings, ledger: Ledger) -> LocalBroker:
    broker = create_broker(settings.database_url)
    ledger.listeners.append(broker.publish)
    # a change anywhere (this replica or another) evicts the order from the read cache;
    # the id is read from the topic: a wake-up after a reconnection carries no message
    broker.observers.append(
        lambda topic, message: (
            ledger.invalidate(topic.removeprefix("order:")) if topic.startswith("order:") else None
        )
    )
    return broker


def _webhook_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport
        or httpx.AsyncHTTPTransport(
            retries=0,
            # no reuse: connections are opened to checked addresses, and one opened for
            # one host name must not carry another's delivery
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=0),
        ),
        timeout=httpx.Timeout(settings.webhook_timeout),
        headers={"user-agent": "esim-gateway-webhooks/0.1"},
        follow_redirects=False,  # a redirect could point into a private network
    )


def _dispatcher(
    settings: Settings, wiring: Wiring, ledger: Ledger, client: httpx.AsyncClient
) -> WebhookDispatcher:
    dispatcher = WebhookDispatcher(
        ledger.outbound,
        client,
        UrlPolicy(live=not settings.is_sandbox, resolve=wiring.webhook_resolver),
        retry_schedule=settings.webhook_retry_schedule,
        interval=settings.webhook_poll_interval,
        timeout=settings.webhook_timeout,
        retention=timedelta(days=settings.webhook_retention_days),
    )

    async def wake_dispatcher(topic: str, message: str) -> None:
        if topic.startswith("order:"):
            dispatcher.wake()

    ledger.listeners.append(wake_dispatcher)
    return dispatcher


async def build_services(
    settings: Settings, wiring: Wiring, *, metrics: Metrics, tracing: Tracing, app: Starlette
) -> tuple[Services, list[Running]]:
    """Every long-lived service, the database migrated, nothing started yet; and the parts
    the lifespan starts in order and stops in reverse."""
    clients: list[httpx.AsyncClient] = []
    ledger = Ledger(_engine(settings), read_cache_ttl=2.0 if wiring.optimised else 0.0)
    await ledger.migrate()
    providers = build_providers(
        settings, clients, wiring.sandboxes, wiring.transports, wiring.timeouts, metrics, tracing
    )
    if wiring.sandboxes is not None and wiring.sandbox_webhooks:
        clients.append(wiring.sandboxes.deliver_webhooks_to(app))
    broker = _broker(settings, ledger)
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
        heap=ServerHeap() if wiring.freeze_heap else None,
    )
    processor = EventProcessor(ledger, driver, broker)
    reconciler = Reconciler(ledger, driver, interval=wiring.reconcile_interval)
    reconciler.events = processor
    clients.append(_webhook_client(settings, wiring.webhook_transport))
    dispatcher = _dispatcher(settings, wiring, ledger, clients[-1])
    services = Services(
        settings=settings,
        ledger=ledger,
        providers=providers,
        catalog=catalog,
        driver=driver,
        authenticator=Authenticator(settings),
        broker=broker,
        prices=Prices(settings.usd_rates, dict(settings.markups), source=settings.usd_rates_source),
        metrics=metrics,
        tracing=tracing,
        reconciler=reconciler,
        scheduler=Scheduler(ledger, driver, catalog, interval=settings.scheduler_interval),
        webhooks=processor,
        install=InstallServices.create(settings, ledger),
        webhook_dispatcher=dispatcher,
        webhook_policy=dispatcher.policy,
        esim_announcer=processor.announcer,
        esim_watcher=EsimWatcher(
            ledger.outbound, providers, processor.announcer, interval=settings.usage_poll_interval
        ),
    )
    return services, _running(services, wiring, clients)


def _running(services: Services, wiring: Wiring, clients: list[httpx.AsyncClient]) -> list[Running]:
    """Started top to bottom, stopped bottom to top: the loops stop before the driver they
    use, the driver before the broker, everything before the clients and the database."""
    s = services
    rates = BackgroundLoop("roamify-rates", functools.partial(_follow_roamify_rates, s, s.settings))
    follow_rates = s.settings.usd_rates_source == "roamify" and ProviderName.ROAMIFY in set(
        s.providers.enabled()
    )
    dispatch = wiring.webhook_dispatch
    parts = [
        Running("tracing", stop=s.tracing.shutdown),
        Running("database", stop=s.ledger.engine.dispose),
        Running("HTTP clients", stop=functools.partial(_close_clients, clients)),
    ]
    if wiring.sandboxes is not None:
        parts.append(Running("sandboxes", stop=wiring.sandboxes.aclose))
    parts += [
        Running("broker", start=s.broker.start, stop=s.broker.stop),
        Running("purchase driver", stop=s.driver.shutdown),
        Running("install rate limits", stop=s.install.aclose),
    ]
    if wiring.freeze_heap:
        parts.append(Running("heap", start=freeze_long_lived, stop=_nothing))
    return [
        *parts,
        Running("reconciler", start=s.reconciler.start, stop=s.reconciler.stop),
        Running("scheduler", start=s.scheduler.start, stop=s.scheduler.stop),
        Running(
            "webhook dispatcher",
            start=s.webhook_dispatcher.start if dispatch else None,
            stop=s.webhook_dispatcher.stop,
        ),
        Running(
            "eSIM watcher",
            start=s.esim_watcher.start if dispatch else None,
            stop=s.esim_watcher.stop,
        ),
        Running(
            "catalog refresh",
            start=s.catalog.start if wiring.catalog_refresh else None,
            stop=s.catalog.stop,
        ),
        Running("exchange rates", start=rates.start if follow_rates else None, stop=rates.stop),
    ]


def _nothing() -> None:
    return None


async def _close_clients(clients: list[httpx.AsyncClient]) -> None:
    for client in clients:
        await client.aclose()


async def _close_view(view: GatewayGraphQL) -> None:
    await view.limiter.aclose()
    await view.auth_failures.aclose()
    if view.documents is not None:
        await view.documents.aclose()


@contextlib.asynccontextmanager
async def started(parts: list[Running]) -> AsyncIterator[None]:
    """Each part started in order; those started stopped in reverse, however it ends."""
    done: list[Running] = []
    try:
        for part in parts:
            if part.start is not None and inspect.isawaitable(result := part.start()):
                await result
            done.append(part)
        yield
    finally:
        for part in reversed(done):
            if inspect.isawaitable(result := part.stop()):
                await result


def _metrics_endpoint(
    metrics: Metrics, token: str | None
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if token is not None and not bearer_matches(request.headers.get("authorization"), token):
            return PlainTextResponse(
                "GET /metrics needs Authorization: Bearer <ESIM_GATEWAY_METRICS_TOKEN>.",
                status_code=401,
                headers={"www-authenticate": 'Bearer realm="metrics"'},
            )
        services: Services | None = getattr(request.app.state, "services", None)
        if services is not None:
            for name, breaker in services.providers.breakers.items():
                metrics.circuit_open.labels(name.value).set(
                    0 if breaker.state.value == "closed" else 1
                )
            metrics.reconciler_backlog.set(await services.ledger.orders.count_unsettled())
            metrics.outbound_pending.set(await services.ledger.outbound.pending_count())
            metrics.live_broker_connected.set(1 if services.broker.connected else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return endpoint


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
    # reported, not required: with the broker down a replica still sells and answers
    # reads, and its own changes still reach its subscribers; the broker shares the
    # database with every replica, so failing here would take them all out together
    # over live updates alone (the database check fails when the database is away)
    checks["live_updates"] = services.broker.health()
    # with no provider enabled every purchase and read would fail: not ready
    ready = checks["database"] == "ok" and bool(enabled)
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def _routes(view: GatewayGraphQL, metrics: Metrics, sandboxes: Sandboxes | None) -> list[BaseRoute]:
    from esim_gateway.http.graphiql import graphiql_assets_dir, graphiql_routes
    from esim_gateway.http.install_page import install_routes

    routes: list[BaseRoute] = [
        # GET and POST are answered by GatewayApp before the router; the route still
        # answers the other methods (405, or HEAD through the view)
        Route(GRAPHQL_PATH, view, methods=["GET", "POST"]),
        WebSocketRoute(GRAPHQL_PATH, view),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", _metrics_endpoint(metrics, view.settings.metrics_token)),
        *webhook_routes(),
        *graphiql_routes(graphiql_assets_dir()),
        *install_routes(),
    ]
    if sandboxes is not None:
        if sandboxes.roamify is not None:
            routes.append(Mount("/sandbox/roamify", app=sandboxes.roamify.app))
        if sandboxes.simplifytrip is not None:
            routes.append(Mount("/sandbox/simplifytrip", app=sandboxes.simplifytrip.app))
    return routes


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
    server process that hosts only this app (see `esim_gateway.ops.heap`);
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
    wiring = Wiring(
        sandboxes, transports or {}, timeouts or Timeouts(), reconcile_interval,
        sandbox_webhooks, catalog_refresh, optimised, freeze_heap, webhook_transport,
        webhook_resolver, webhook_dispatch,
    )  # fmt: skip
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

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services, parts = await build_services(
            settings, wiring, metrics=metrics, tracing=tracing, app=app
        )
        app.state.services = services
        view.services = services
        # the edge's own stores: stopped first
        parts.append(Running("GraphQL view", stop=functools.partial(_close_view, view)))
        async with started(parts):
            yield

    accounting = RequestAccounting(metrics)
    app = GatewayApp(
        graphql=view.http.answer,
        accounting=accounting,
        proxies=settings.forwarded_allow_ips,
        routes=_routes(view, metrics, sandboxes),
        lifespan=lifespan,
        middleware=[Middleware(RequestMiddleware, metrics=metrics, accounting=accounting)],
    )
    app.state.settings = settings
    app.state.sandboxes = sandboxes
    app.state.schema = schema
    return app
