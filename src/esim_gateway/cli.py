"""`esim-gateway serve | sandbox | export-schema | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esim_gateway.config import Settings

__all__ = ["main", "server_options"]


def _settings() -> object:
    from esim_gateway.config import ConfigError, Settings

    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"esim-gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the gateway, one process or N workers alike. Its access line
    is off unless asked for: ours (`esim_gateway.access`) says more, once per request."""
    return {
        "log_level": settings.log_level.lower(),
        "access_log": settings.library_access_logs_enabled,
        "proxy_headers": True,
        "log_config": None,
        "timeout_graceful_shutdown": 30,
    }


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from esim_gateway.config import Settings

    settings = _settings()
    assert isinstance(settings, Settings)
    from esim_gateway.observability import configure_logging

    configure_logging(settings.log_level, library_access_logs=settings.library_access_logs_enabled)
    host = args.host or settings.host
    port = args.port or settings.port
    if args.workers > 1:
        uvicorn.run(
            "esim_gateway.asgi:create",
            factory=True,
            host=host,
            port=port,
            workers=args.workers,
            **server_options(settings),
        )
        return 0
    from esim_gateway.app import create_app

    app = create_app(settings, freeze_heap=True)
    mode = "sandbox (simulated providers, no credentials needed)" if settings.is_sandbox else "live"
    print(f"esim-gateway {mode}: GraphiQL at http://{host}:{port}/graphql", file=sys.stderr)
    uvicorn.run(
        app,
        host=host,
        port=port,
        **server_options(settings),
    )
    return 0


def sandbox(args: argparse.Namespace) -> int:
    import uvicorn

    from esim_gateway.sandbox import standalone_app
    from esim_gateway.sandbox.roamify import create_roamify_sandbox
    from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox

    app = standalone_app(
        create_roamify_sandbox(), create_simplifytrip_sandbox(fulfil_delay=args.fulfil_delay)
    )
    print(
        f"Roamify sandbox:      http://{args.host}:{args.port}/roamify/api/...  "
        "(Authorization: Bearer sandbox-roamify-token)\n"
        f"SimplifyTrip sandbox: http://{args.host}:{args.port}/simplifytrip/api/v1/...  "
        "(X-Api-Key: pk_test_sandbox, Authorization: Bearer sk_test_sandbox, "
        "X-Signature with ck_test_sandbox)",
        file=sys.stderr,
    )
    from esim_gateway.heap import freeze_long_lived

    freeze_long_lived()  # the seeded catalogs and state: see esim_gateway.heap
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


def export_schema(args: argparse.Namespace) -> int:
    from esim_gateway.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl)
    return 0


def migrate(args: argparse.Namespace) -> int:
    from sqlalchemy.ext.asyncio import create_async_engine

    from esim_gateway.config import Settings
    from esim_gateway.ledger.repository import Ledger

    settings = _settings()
    assert isinstance(settings, Settings)

    async def run() -> None:
        engine = create_async_engine(settings.database_url)
        try:
            await Ledger(engine).migrate()
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("ledger schema is up to date", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="esim-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve", help="run the gateway (sandbox mode by default)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=serve)
    p = commands.add_parser("sandbox", help="run the two provider simulators alone")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--fulfil-delay", type=float, default=2.0)
    p.set_defaults(func=sandbox)
    p = commands.add_parser("export-schema", help="print or write the GraphQL SDL")
    p.add_argument("output", nargs="?", default="-")
    p.set_defaults(func=export_schema)
    p = commands.add_parser("migrate", help="create or upgrade the ledger's tables")
    p.set_defaults(func=migrate)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
