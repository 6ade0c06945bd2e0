"""The whole stack in one process: gql client -> ASGI app -> adapters -> simulators."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

import httpx
import hypothesis
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.httpx import HTTPXAsyncTransport
from starlette.applications import Starlette

from esim_gateway.app import Sandboxes, create_app
from esim_gateway.config import Mode, Settings
from esim_gateway.context import Services
from esim_gateway.ledger.repository import Ledger
from esim_gateway.ledger.tables import Base
from esim_gateway.providers.parts import RequestParts, ResponseParts, takes_parts
from tests.purchase_moves import MoveLog

if TYPE_CHECKING:
    from esim_gateway.sandbox.roamify import RoamifySandbox
    from esim_gateway.sandbox.simplifytrip import SimplifyTripSandbox

GATEWAY_URL = "http://gateway.test/graphql"

T = TypeVar("T")

# Hypothesis' default 200 ms deadline per example is a timing assertion: with `make test`'s
# workers sharing two cores, an example can take longer without being wrong (it failed
# test_provider_http that way). Every property still runs all its examples.
hypothesis.settings.register_profile("suite", deadline=None)
hypothesis.settings.load_profile("suite")


def _aiosqlite_worker(tx: Any) -> None:
    """aiosqlite 0.22's connection thread, handing an outcome back only to a loop that is
    still open. Upstream's thread calls `call_soon_threadsafe` on the future's loop
    whatever its state (omnilib/aiosqlite#241, open): a connection whose last call (or
    whose `stop()` from a late `__del__`) finishes after its test's event loop closed
    raised RuntimeError in the thread, which pytest reports as an error of whichever
    test runs next on that worker (2 of 1,424 in a CI run on a loaded machine). Nobody
    awaits a future of a closed loop, so nothing is lost by not handing it over.
    Otherwise as upstream: one call at a time, until the stop sentinel."""
    from aiosqlite import core

    while True:
        future, function = tx.get()
        handler: Any
        try:
            result = function()
            handler, outcome = core.set_result, result
        except BaseException as exc:
            result, handler, outcome = None, core.set_exception, exc
        if future is not None:
            loop = future.get_loop()
            with contextlib.suppress(RuntimeError):  # closed since the check
                if not loop.is_closed():
                    loop.call_soon_threadsafe(handler, future, outcome)
        if result is core._STOP_RUNNING_SENTINEL:
            break


def _tolerate_closed_loops_in_aiosqlite() -> None:
    from aiosqlite import core

    assert core.__dict__.get("_connection_worker_thread") is not None, "aiosqlite changed"
    core._connection_worker_thread = _aiosqlite_worker


_tolerate_closed_loops_in_aiosqlite()

#: modules whose tests take tens of seconds each (real processes, fault schedules); run
#: first, so `make test`'s workers do not end waiting on one of them while the other idles
SLOW_FIRST = ("tests/reliability/",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow modules first, otherwise collection order (the same in every xdist worker,
    as xdist requires); every item's node id unique."""
    items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))
    # schemathesis gives each operation of test_fuzz the function's node id (the operation
    # is only in its name): xdist's --dist loadgroup queues by node id and ran one of 27
    seen: set[str] = set()
    for item in items:
        if item.nodeid in seen and item.parent is not None:
            item._id = item.parent.id.child(item.name)  # what a parametrized item gets
        seen.add(item.nodeid)


@pytest.fixture(scope="session", autouse=True)
def _json_logs() -> None:
    """Route structlog through stdlib logging (captured by pytest) as in production."""
    from esim_gateway.ops.logging import configure_logging

    configure_logging("INFO")


@contextlib.contextmanager
def written_lines(level: str = "INFO") -> Iterator[io.StringIO]:
    """What `configure_logging`'s handler writes, in a string (handlers and level restored)."""
    from esim_gateway.ops.logging import configure_logging

    stream = io.StringIO()
    root = logging.getLogger()
    saved, saved_level = root.handlers[:], root.level
    configure_logging(level)
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved
        root.setLevel(saved_level)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No `ESIM_GATEWAY_*` variable and no .env file, as `Settings.from_env()` sees them."""
    for name in list(os.environ):
        if name.startswith("ESIM_GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


POSTGRES_VARIABLE = "ESIM_GATEWAY_TEST_POSTGRES_URL"
LOCAL_POSTGRES = ("127.0.0.1", 5432)


def find_postgres_url(
    environ: Mapping[str, str], address: tuple[str, int] = LOCAL_POSTGRES
) -> str | None:
    """The PostgreSQL server for the tests: the one `ESIM_GATEWAY_TEST_POSTGRES_URL`
    names, else the local one when something answers on its port (as `.ci/run` finds it);
    none when the variable says `off`."""
    configured = environ.get(POSTGRES_VARIABLE)
    if configured == "off":
        return None
    if configured:
        return configured
    host, port = address
    try:
        with socket.create_connection(address, timeout=0.2):
            pass
    except OSError:
        return None
    return f"postgresql+asyncpg://postgres@{host}:{port}/test"


@functools.cache
def postgres_url() -> str | None:
    return find_postgres_url(os.environ)


def in_ci(environ: Mapping[str, str]) -> bool:
    """True in a CI run: `CI` set to true (as CI services and `.ci/run` set it)."""
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(reason: str, environ: Mapping[str, str] = os.environ) -> NoReturn:
    """A test cannot get what it needs (a database, a tool): it skips, except in CI,
    where it fails: a CI run that skipped the PostgreSQL tests would go green without
    the replica promise ever tested. `ESIM_GATEWAY_TEST_POSTGRES_URL=off` still skips
    them on purpose (`postgres_database`)."""
    if in_ci(environ):
        pytest.fail(f"{reason} (CI=true: a skip would hide it)", pytrace=False)
    pytest.skip(reason)


async def postgres_admin(url: str, statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def run_sync(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from sync code, even while an event loop is running
    (a fixture's setup inside an async fixture's)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def _admin_sync(url: str, statement: str) -> None:
    run_sync(postgres_admin(url, statement))


#: every table of the ledger, as the latest migration leaves it
LEDGER_TABLES = tuple(table.name for table in Base.metadata.sorted_tables)


@functools.cache
def ledger_head() -> str:
    """The ledger's latest Alembic revision."""
    from alembic.script import ScriptDirectory

    from esim_gateway.ledger.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def migrate_ledger(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        await Ledger(engine).migrate()
    finally:
        await engine.dispose()


async def empty_postgres(url: str, *, migrated: bool) -> None:
    """Empty the session's PostgreSQL database. `migrated`: leave the ledger's tables at
    the latest revision with no rows in them; a TRUNCATE when they are there already (the
    usual case, ~0.1 s faster than migrating again), else a migration from scratch.
    Otherwise: leave an empty schema, for a test that migrates (or races to) itself."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            if migrated and set(found.scalars()) == {*LEDGER_TABLES, "alembic_version"}:
                version = await conn.execute(text("SELECT version_num FROM alembic_version"))
                if version.scalars().all() == [ledger_head()]:
                    tables = ", ".join(LEDGER_TABLES)
                    await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                    return
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()
    if migrated:
        await migrate_ledger(url)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test session on the configured PostgreSQL server;
    each test empties it before use (`empty_postgres`)."""
    if os.environ.get(POSTGRES_VARIABLE) == "off":
        pytest.skip(f"PostgreSQL tests turned off ({POSTGRES_VARIABLE}=off)")
    url = postgres_url()
    if url is None:
        missing(
            f"no PostgreSQL: {POSTGRES_VARIABLE} is unset and nothing answers at"
            f" {LOCAL_POSTGRES[0]}:{LOCAL_POSTGRES[1]}"
        )
    name = f"esim_gateway_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    base = url.rsplit("/", 1)[0]
    # a server found on the port may not be ours to use (another user, no such role):
    # skip then (fail in CI); one named by the variable must work
    found = not os.environ.get(POSTGRES_VARIABLE)
    try:
        _admin_sync(url, f'CREATE DATABASE "{name}"')
    except OSError as exc:
        missing(f"PostgreSQL at {base} is not reachable: {exc}")
    except Exception as exc:
        if not found:
            raise
        missing(f"PostgreSQL found at {base} refused the tests: {type(exc).__name__}")
    try:
        yield f"{base}/{name}"
    finally:
        _admin_sync(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def clean_postgres(postgres_database: str) -> str:
    """The session's PostgreSQL database with an empty schema: the gateway processes of
    the test migrate it themselves."""
    await empty_postgres(postgres_database, migrated=False)
    return postgres_database


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite ledger at the latest revision, migrated once per worker: a test's ledger
    starts as a copy of it (a migration costs ~0.1 s of CPU, hundreds of times a run)."""
    path = tmp_path_factory.mktemp("migrated") / "ledger.db"
    run_sync(migrate_ledger(f"sqlite+aiosqlite:///{path}"))
    return path


def migrated_sqlite_url(template: Path, folder: Path) -> str:
    """A new SQLite ledger in `folder`, a copy of the migrated `template`."""
    path = folder / "ledger.db"
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every ledger-backed test runs on SQLite and, where configured, on PostgreSQL: on a
    ledger of its own, empty and migrated to the latest revision. (The gateway migrates at
    start-up all the same: finding it at the latest revision, it changes nothing.)"""
    if request.param == "sqlite":
        return migrated_sqlite_url(request.getfixturevalue("migrated_sqlite"), tmp_path)
    url: str = request.getfixturevalue("postgres_database")
    await empty_postgres(url, migrated=True)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def unmigrated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """As `database_url`, but with no tables at all: for the tests of the migrations."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_database")
    await empty_postgres(url, migrated=False)
    return url


REDIS_URL = "redis://127.0.0.1:6379/0"


async def redis_or_skip() -> str:
    """The local Redis' URL, or a skip saying why (CI starts one)."""
    import redis.asyncio
    import redis.exceptions

    probe = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await probe.ping()
    except (redis.exceptions.ConnectionError, OSError):
        pytest.skip("no Redis on 127.0.0.1:6379 (CI starts one)")
    finally:
        await probe.aclose()
    return REDIS_URL


@pytest.fixture
async def redis_url() -> str:
    """The local Redis (CI starts one); the test is skipped without it."""
    return await redis_or_skip()


@dataclass
class Gateway:
    app: Starlette
    session: AsyncClientSession
    http: httpx.AsyncClient
    sandboxes: Sandboxes

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def ledger(self) -> Ledger:
        return self.services.ledger

    @property
    def roamify(self) -> RoamifySandbox:
        sandbox: RoamifySandbox = self.sandboxes.roamify
        return sandbox

    @property
    def simplifytrip(self) -> SimplifyTripSandbox:
        sandbox: SimplifyTripSandbox = self.sandboxes.simplifytrip
        return sandbox

    async def execute(self, document: str, **variables: Any) -> dict[str, Any]:
        """Run an operation through gql; any GraphQL `errors` entry raises."""
        result: dict[str, Any] = await self.session.execute(
            GraphQLRequest(document, variable_values=variables or None)
        )
        return result

    async def post(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """A raw POST (to look at status codes and `errors`)."""
        payload: dict[str, Any] = {"query": document}
        if variables:
            payload["variables"] = dict(variables)
        return await self.http.post("/graphql", json=payload, headers=dict(headers or {}))

    async def upstream_calls(self) -> int:
        return len(self.roamify.control.calls.calls) + len(self.simplifytrip.control.calls.calls)


def make_sandboxes(*, fulfil_delay: float = 0.0) -> Sandboxes:
    from esim_gateway.sandbox.roamify import create_roamify_sandbox
    from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox

    return Sandboxes(
        roamify=create_roamify_sandbox(packages_per_country=3),
        simplifytrip=create_simplifytrip_sandbox(fulfil_delay=fulfil_delay, products_per_country=2),
    )


def gateway_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "order_deadline": 5.0,
        "sandbox_fulfil_delay": 0.0,
        # the suite fires requests far faster than any client; rate limits have their own test
        "rate_limit_per_second": 100_000.0,
        "rate_limit_burst": 100_000,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class GatewayFactory:
    database_url: str

    def __call__(self, **overrides: Any) -> _GatewayContext:
        return _GatewayContext(self.database_url, overrides)


class _GatewayContext:
    def __init__(self, database_url: str, overrides: dict[str, Any]) -> None:
        self.fulfil_delay = float(overrides.pop("fulfil_delay", 0.0))
        #: live mode: real credentials checks, adapters reach the simulators by transport
        self.live = bool(overrides.pop("live", False))
        if self.live:
            overrides.setdefault("mode", Mode.LIVE)
            overrides.setdefault("roamify_base_url", "http://roamify.sandbox")
            overrides.setdefault("roamify_token", "sandbox-roamify-token")
            overrides.setdefault("roamify_webhook_secret", "sandbox-roamify-webhook-secret")
            overrides.setdefault("simplifytrip_base_url", "http://simplifytrip.sandbox")
            overrides.setdefault("simplifytrip_api_key", "pk_test_sandbox")
            overrides.setdefault("simplifytrip_secret_key", "sk_test_sandbox")
            overrides.setdefault("simplifytrip_checksum_key", "ck_test_sandbox")
        self.sandboxes: Sandboxes | None = overrides.pop("sandboxes", None)
        self.headers: dict[str, str] = overrides.pop("headers", {})
        self.tracer_provider: Any = overrides.pop("tracer_provider", None)
        self.timeouts: Any = overrides.pop("timeouts", None)
        #: outbound webhooks: how they reach receivers, resolve hosts, and whether the
        #: delivery loop runs (False: the test calls the dispatcher's `run_once`)
        self.webhook_options: dict[str, Any] = {
            key: overrides.pop(key)
            for key in ("webhook_transport", "webhook_resolver", "webhook_dispatch")
            if key in overrides
        }
        self.settings = gateway_settings(database_url, **overrides)

    async def __aenter__(self) -> Gateway:
        sandboxes = self.sandboxes or make_sandboxes(fulfil_delay=self.fulfil_delay)
        self._sandboxes = sandboxes
        if self.live:
            from esim_gateway.domain import ProviderName
            from esim_gateway.sandbox.transport import SandboxTransport

            transports: dict[ProviderName, httpx.AsyncBaseTransport] = {
                ProviderName.ROAMIFY: SandboxTransport(sandboxes.roamify.app),
                ProviderName.SIMPLIFYTRIP: SandboxTransport(sandboxes.simplifytrip.app),
            }
            app = create_app(
                self.settings,
                transports=transports,
                reconcile_interval=3600,
                catalog_refresh=False,
                tracer_provider=self.tracer_provider,
                timeouts=self.timeouts,
                **self.webhook_options,
            )
        else:
            app = create_app(
                self.settings,
                sandboxes=sandboxes,
                reconcile_interval=3600,
                catalog_refresh=False,
                tracer_provider=self.tracer_provider,
                timeouts=self.timeouts,
                **self.webhook_options,
            )
        self._manager = LifespanManager(app)
        await self._manager.__aenter__()
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self._manager.app),
            base_url="http://gateway.test",
            headers=self.headers,
        )
        transport = HTTPXAsyncTransport(
            url=GATEWAY_URL,
            transport=httpx.ASGITransport(app=self._manager.app),
            headers=self.headers,
        )
        self._client = Client(transport=transport, fetch_schema_from_transport=False)
        session = await self._client.connect_async()  # type: ignore[no-untyped-call]  # gql
        return Gateway(app, session, self._http, sandboxes)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.close_async()  # type: ignore[no-untyped-call]  # gql is untyped
        await self._http.aclose()
        await self._manager.__aexit__(exc_type, exc, tb)
        if self.live:
            await self._sandboxes.aclose()


@pytest.fixture
def gateway_factory(database_url: str) -> GatewayFactory:
    return GatewayFactory(database_url)


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory) -> AsyncIterator[Gateway]:
    async with gateway_factory() as gw:
        yield gw


@pytest.fixture
def declared_moves_only() -> Iterator[MoveLog]:
    """Fails the test when an order moved in a way the purchase state table
    (`esim_gateway.purchasing.states`) does not declare."""
    with MoveLog().listening() as moves:
        yield moves
    assert moves.problems == [], "\n".join(moves.problems)


SERVE_TIMEOUT = 10.0


@contextlib.contextmanager
def serve_in_thread(
    app: Any, lifespan: Literal["on", "off"] = "on", keep_alive: int = 5, **options: Any
) -> Iterator[str]:
    """`app` on a loopback socket in a background thread; yields its base URL. Idle
    keep-alive connections are closed after `keep_alive` seconds (uvicorn's default);
    `options` are more `uvicorn.Config` arguments (they win)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        **{
            "lifespan": lifespan,
            "log_level": "warning",
            "log_config": None,
            "ws": "websockets-sansio",
            "timeout_keep_alive": keep_alive,
            **options,
        },
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVE_TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SERVE_TIMEOUT)
        sock.close()


def parts_of(request: httpx.Request) -> RequestParts:
    """What an httpx.Request is as parts (`providers.parts`)."""
    return RequestParts(
        request.method,
        str(request.url),
        request.headers.multi_items(),
        request.content,  # b"" for none
        request.extensions["timeout"],
    )


class EntryPoints(httpx.AsyncBaseTransport):
    """Passes every call on to `inner`, noting which entry point it came through:
    ``parts`` (the direct path of `providers.parts`) or ``httpx``
    (`handle_async_request`). Takes parts only when `inner` does and `parts` is True:
    `parts=False` makes a client use httpx's objects over the very same transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, parts: bool = True) -> None:
        self.inner = inner
        self.parts = parts
        self.used: list[str] = []

    @property
    def takes_parts(self) -> bool:
        return self.parts and takes_parts(self.inner)

    async def send_parts(self, request: RequestParts) -> ResponseParts:
        self.used.append("parts")
        assert takes_parts(self.inner)
        return await self.inner.send_parts(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.used.append("httpx")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
