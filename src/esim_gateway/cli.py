"""`esim-gateway serve | sandbox | sandbox-reset | export-schema | config-reference | migrate |
healthcheck | webhook-receiver`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esim_gateway.config import Settings

if TYPE_CHECKING:
    from esim_gateway.config import Settings

__all__ = ["main", "server_options"]


def _settings(*, serving: bool = False) -> Settings:
    """The environment's settings; bad ones (or, for `serving`, unsafe ones) end the
    process with one line and status 2."""
    from esim_gateway.config import ConfigError, Settings

    try:
        settings = Settings.from_env()
        if serving:
            settings.check_safe_to_serve()
    except ConfigError as exc:
        print(f"esim-gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return settings


def banner(settings: Settings, host: str, port: int) -> str:
    """The start-up line: the mode, and only the URLs this configuration serves."""
    base = f"http://{host}:{port}"
    sandbox = "sandbox (simulated providers, no credentials needed)"
    mode = sandbox if settings.is_sandbox else "live"
    api = "GraphQL API and GraphiQL" if settings.graphiql_enabled else "GraphQL API"
    served = [f"{api} at {base}/graphql"]
    if settings.is_sandbox and not (settings.roamify_base_url and settings.simplifytrip_base_url):
        served.append(f"simulators under {base}/sandbox/")
    return f"esim-gateway {mode}: " + "; ".join(served)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the gateway, one process or N workers alike. Its access line
    is off unless asked for: ours (`esim_gateway.access`) says more, once per request.
    Its proxy headers are off: the app applies the same rule under its own setting
    (`esim_gateway.ops.forwarded`), once."""
    return {
        "log_level": settings.log_level.lower(),
        "access_log": settings.library_access_logs_enabled,
        "proxy_headers": False,
        "log_config": None,
        "timeout_graceful_shutdown": 30,
    }


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(serving=True)
    from esim_gateway.ops.logging import configure_logging

    configure_logging(settings.log_level, library_access_logs=settings.library_access_logs_enabled)
    host = args.host or settings.host
    port = args.port or settings.port
    if args.workers > 1:
        print(banner(settings, host, port), file=sys.stderr)
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
    from esim_gateway.config import ConfigError

    try:
        app = create_app(settings, freeze_heap=True)
    except ConfigError as exc:  # e.g. a trusted-document manifest that does not parse
        print(f"esim-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    # only once the app is built: a configuration error is then the one line printed
    print(banner(settings, host, port), file=sys.stderr)
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
    from esim_gateway.sandbox.persistence import SandboxStore
    from esim_gateway.sandbox.roamify import create_roamify_sandbox
    from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox

    store = SandboxStore.open(Path(args.state)) if args.state else None
    app = standalone_app(
        create_roamify_sandbox(store=store),
        create_simplifytrip_sandbox(fulfil_delay=args.fulfil_delay, store=store),
    )
    print(
        f"Roamify sandbox:      http://{args.host}:{args.port}/roamify/api/...  "
        "(Authorization: Bearer sandbox-roamify-token)\n"
        f"SimplifyTrip sandbox: http://{args.host}:{args.port}/simplifytrip/api/v1/...  "
        "(X-Api-Key: pk_test_sandbox, Authorization: Bearer sk_test_sandbox, "
        "X-Signature with ck_test_sandbox)",
        file=sys.stderr,
    )
    from esim_gateway.ops.heap import freeze_long_lived

    freeze_long_lived()  # the seeded catalogs and state: see esim_gateway.ops.heap
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


def sandbox_reset(args: argparse.Namespace) -> int:
    """Forget the simulators' orders, eSIMs and balances (the gateway's sandbox state, or
    `--state FILE` of `esim-gateway sandbox`). The ledger keeps its orders."""
    from esim_gateway.sandbox.persistence import SandboxStore, state_path

    if args.state:
        path: Path | None = Path(args.state)
    else:
        settings = _settings()
        path = state_path(settings.database_url, settings.sandbox_state)
    if path is None:
        print("esim-gateway: the sandbox keeps its state in memory: nothing to reset")
        return 0
    removed = SandboxStore.reset(path)
    print(f"sandbox state {path} {'removed' if removed else 'was already empty'}")
    return 0


def possible_types_json() -> str:
    import json

    from esim_gateway.schema import build_schema, possible_types

    return json.dumps(possible_types(build_schema()), indent=2) + "\n"


def export_schema(args: argparse.Namespace) -> int:
    """The SDL, and next to it (when written to a file) `possible-types.json`."""
    from esim_gateway.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        output = Path(args.output)
        output.write_text(sdl)
        (output.parent / "possible-types.json").write_text(possible_types_json())
    return 0


def config_reference(args: argparse.Namespace) -> int:
    """docs/configuration.md: every setting's variable, type, default, bounds and meaning."""
    from esim_gateway.config import reference

    text = reference()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


def migrate(args: argparse.Namespace) -> int:
    from sqlalchemy.ext.asyncio import create_async_engine

    from esim_gateway.ledger.repository import Ledger

    settings = _settings()

    async def run() -> None:
        engine = create_async_engine(settings.database_url)
        try:
            await Ledger(engine).migrate()
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("ledger schema is up to date", file=sys.stderr)
    return 0


def healthcheck(args: argparse.Namespace) -> int:
    """0 when the gateway on this machine answers /healthz, else 1 (a container's
    HEALTHCHECK): the port is the configured one, so it follows ESIM_GATEWAY_PORT."""
    import httpx

    settings = _settings()
    port = args.port or settings.port
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"esim-gateway: not healthy: {type(exc).__name__}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(
            f"esim-gateway: not healthy: /healthz answered {response.status_code}", file=sys.stderr
        )
        return 1
    return 0


def _usable_secret(secret: str | None) -> bool:
    """A `whsec_` secret whose key decodes: anything else would reject every delivery."""
    import base64
    import binascii

    from esim_gateway.domain import SECRET_PREFIX

    key = (secret or "").strip().removeprefix(SECRET_PREFIX)
    try:
        return bool(key) and bool(base64.b64decode(key, validate=True))
    except binascii.Error:
        return False


def webhook_receiver(args: argparse.Namespace) -> int:
    import uvicorn

    from esim_gateway.outbound.receiver import create_receiver

    if not _usable_secret(args.secret):
        # it would answer 401 to every delivery: say where the secret comes from instead
        print(
            "esim-gateway: webhook-receiver needs --secret whsec_...: the `secret` that the"
            " createWebhookEndpoint mutation returns (or rotateWebhookSecret(id) issues)",
            file=sys.stderr,
        )
        return 2
    print(
        f"webhook receiver: POST http://{args.host}:{args.port}/ (any path); verified"
        " deliveries are printed one JSON line each",
        file=sys.stderr,
    )
    uvicorn.run(create_receiver(args.secret), host=args.host, port=args.port, log_level="warning")
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
    p.add_argument("--state", help="keep the simulators' state in this JSON file")
    p.set_defaults(func=sandbox)
    p = commands.add_parser(
        "sandbox-reset", help="forget the simulators' orders, eSIMs and balances"
    )
    p.add_argument("--state", help="the state file of `sandbox --state FILE`")
    p.set_defaults(func=sandbox_reset)
    p = commands.add_parser(
        "export-schema",
        help="print or write the GraphQL SDL (a file gets possible-types.json beside it)",
    )
    p.add_argument("output", nargs="?", default="-")
    p.set_defaults(func=export_schema)
    p = commands.add_parser(
        "config-reference",
        help="print or write the configuration reference (docs/configuration.md)",
    )
    p.add_argument("output", nargs="?", default="-")
    p.set_defaults(func=config_reference)
    p = commands.add_parser("migrate", help="create or upgrade the ledger's tables")
    p.set_defaults(func=migrate)
    p = commands.add_parser("healthcheck", help="exit 0 when the local gateway is up")
    p.add_argument("--port", type=int)
    p.add_argument("--timeout", type=float, default=2.0)
    p.set_defaults(func=healthcheck)
    p = commands.add_parser(
        "webhook-receiver", help="print outbound webhooks whose signature checks out (sandbox)"
    )
    p.add_argument(
        "--secret",
        help="the endpoint's whsec_... secret (from createWebhookEndpoint or rotateWebhookSecret)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8200)
    p.set_defaults(func=webhook_receiver)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
