"""Settings: the only module that reads the environment (and only when asked to).

`Settings.from_env()` reads `ESIM_GATEWAY_*` variables, and a `.env` file in the working
directory when present (the environment wins). A bad value stops start-up with one line
naming the variable (`ConfigError`).
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ApiKey",
    "ConfigError",
    "HttpTransport",
    "Markup",
    "Mode",
    "Settings",
    "is_simulator_url",
]

PREFIX = "ESIM_GATEWAY_"

SANDBOX_ROAMIFY_TOKEN = "sandbox-roamify-token"  # noqa: S105 - documented sandbox credential
SANDBOX_ROAMIFY_WEBHOOK_SECRET = "sandbox-roamify-webhook-secret"  # noqa: S105
SANDBOX_SIMPLIFYTRIP_API_KEY = "pk_test_sandbox"
SANDBOX_SIMPLIFYTRIP_SECRET_KEY = "sk_test_sandbox"  # noqa: S105
SANDBOX_SIMPLIFYTRIP_CHECKSUM_KEY = "ck_test_sandbox"


#: hosts a sandbox-mode gateway may send provider calls to: the machine itself (the
#: simulators run alone by `esim-gateway sandbox`) and the in-process simulators' names
_LOOPBACK_HOSTS = frozenset({"localhost", "::1"})
_SIMULATOR_SUFFIX = ".sandbox"


def is_simulator_url(url: str) -> bool:
    """True for a base URL a simulator answers on: loopback or a `*.sandbox` host."""
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOOPBACK_HOSTS or host.startswith("127.") or host.endswith(_SIMULATOR_SUFFIX)


#: seconds to wait after each failed outbound webhook attempt (the first attempt is
#: immediate): eight attempts over about 27.5 hours, Standard Webhooks' suggested spread
DEFAULT_WEBHOOK_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


class Mode(enum.StrEnum):
    SANDBOX = "sandbox"
    LIVE = "live"


class HttpTransport(enum.StrEnum):
    REQWEST = "reqwest"
    HTTPX = "httpx"

    @classmethod
    def _missing_(cls, value: object) -> HttpTransport | None:
        # "aiohttp" chose a third transport (httpx-aiohttp), since removed: a deployment
        # that still names it keeps starting, on httpx's own, and is told once
        if value != "aiohttp":
            return None
        logging.getLogger("esim_gateway.config").warning(
            "ESIM_GATEWAY_HTTP_TRANSPORT=aiohttp is deprecated: that transport was removed;"
            " provider calls go through httpx's own (set reqwest or httpx)"
        )
        return cls.HTTPX


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured API key; only its SHA-256 digest is kept in memory."""

    principal: str
    role: Role
    sha256: str

    def __repr__(self) -> str:
        return f"ApiKey(principal={self.principal!r}, role={self.role.value!r})"

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _parse_api_keys(raw: str, name: str) -> tuple[ApiKey, ...]:
    keys: list[ApiKey] = []
    for index, entry in enumerate(part.strip() for part in raw.split(",")):
        if not entry:
            continue
        pieces = entry.split(":", 2)
        if len(pieces) != 3 or not all(pieces):
            raise ConfigError(
                f"{name}: entry {index + 1} must be principal:role:key"
                " (or principal:role:sha256:<hex>)"
            )
        principal, role, secret = pieces
        try:
            parsed_role = Role(role)
        except ValueError:
            raise ConfigError(
                f"{name}: entry {index + 1} has role {role!r}; use customer or operator"
            ) from None
        if secret.startswith("sha256:"):
            digest = secret.removeprefix("sha256:").lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ConfigError(f"{name}: entry {index + 1} has a malformed sha256 digest")
        else:
            digest = ApiKey.digest(secret)
        keys.append(ApiKey(principal, parsed_role, digest))
    return tuple(keys)


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


@dataclass(frozen=True, slots=True)
class Markup:
    """A retail price rule: `price * (1 + percent / 100) + fixed` (in the price's currency)."""

    percent: Decimal = Decimal(0)
    fixed: Decimal = Decimal(0)

    @classmethod
    def parse(cls, raw: str, name: str) -> Markup:
        percent, fixed = Decimal(0), Decimal(0)
        for part in filter(None, (p.strip() for p in raw.replace(" ", "").split("+"))):
            try:
                if part.endswith("%"):
                    percent += Decimal(part[:-1])
                else:
                    fixed += Decimal(part)
            except InvalidOperation:
                raise ConfigError(
                    f"{name}={raw!r} must look like 12% or 0.50 or 12%+0.50"
                ) from None
        if percent < -100:
            raise ConfigError(f"{name} cannot take more than 100 % off")
        return cls(percent, fixed)


@dataclass(frozen=True, slots=True)
class Settings:
    mode: Mode = Mode.SANDBOX
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite+aiosqlite:///./esim_gateway.db"
    log_level: str = "INFO"

    roamify_base_url: str | None = None
    roamify_token: str | None = None
    roamify_webhook_secret: str | None = None
    simplifytrip_base_url: str | None = None
    simplifytrip_api_key: str | None = None
    simplifytrip_secret_key: str | None = None
    simplifytrip_checksum_key: str | None = None
    simplifytrip_currency: str = "VND"

    api_keys: tuple[ApiKey, ...] = ()
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: str | None = field(default=None, repr=False)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    #: a mutation returns by then; unfinished work goes on in the background
    order_deadline: float = 30.0
    http_transport: HttpTransport = HttpTransport.REQWEST
    provider_concurrency: int = 16
    introspection: bool | None = None
    graphiql: bool | None = None
    #: how long SimplifyTrip's sandbox takes to fulfil an eSIM order
    sandbox_fulfil_delay: float = 2.0
    #: where the gateway can be reached by the providers' webhooks
    public_url: str | None = None
    catalog_ttl: float = 300.0
    #: requests per second (sustained) and burst, per principal and per client IP
    rate_limit_per_second: float = 20.0
    rate_limit_burst: int = 60
    #: keep rate-limit buckets in Redis, shared by every replica (else in memory)
    rate_limit_redis_url: str | None = None
    #: units of each currency per 1 USD, for `Package.priceUsd` (static table)
    usd_rates: tuple[tuple[str, Decimal], ...] = (("USD", Decimal(1)), ("VND", Decimal(25400)))
    #: where rates come from: the static table, or Roamify's exchange-rate endpoint
    usd_rates_source: str = "static"
    #: per-provider retail price rules (provider value -> Markup)
    markups: tuple[tuple[str, Markup], ...] = ()
    #: OpenTelemetry traces (extra `otel`): on with the global tracer provider, or sent
    #: by our own exporter to an OTLP/HTTP traces endpoint when one is given
    otel_enabled: bool = False
    otel_endpoint: str | None = None
    #: after a purchase whose outcome is unknown, seconds without the provider showing it
    #: before it may be sent again (or given up): longer than the provider's slowest
    #: documented processing (Roamify: 60-90 s); SimplifyTrip refuses a second order with
    #: the same trackId, so there it only decides when to give up
    roamify_quiet_period: float = 180.0
    simplifytrip_quiet_period: float = 120.0
    #: how long a reference stays watched for late or duplicate purchases after a resend
    #: or after giving up
    purchase_watch_period: float = 86_400.0

    #: seconds a `quoteOrder` price stays firm for `createOrder(quoteId)`
    quote_ttl: float = 900.0
    #: how far ahead `createOrder(scheduledAt)` may schedule, in days
    schedule_horizon_days: float = 90.0
    #: seconds between two looks for scheduled orders that are due (every replica looks)
    scheduler_interval: float = 5.0

    #: persisted-document manifests (files, or directories of *.json) loaded at start-up
    trusted_documents: tuple[str, ...] = ()
    #: live mode runs trusted documents only; operators too unless exempted
    trusted_documents_only: bool = False
    trusted_documents_exempt_operators: bool = False
    #: automatic persisted queries: documents kept in this process (0: APQ off) ...
    apq_cache_size: int = 1000
    #: ... or in Redis, shared by every replica
    apq_redis_url: str | None = None
    #: JSON arrays of operations (Apollo BatchHttpLink): off unless enabled; at most so many
    #: (QUALITY.md C7: off, or at most 5)
    batching: bool = False
    batch_max_operations: int = 5

    #: the install page's branding: name, accent colour (#rgb or #rrggbb) and logo (a
    #: path on the gateway, a data: image, or an https URL allowed by the page's CSP)
    brand_name: str = "eSIM"
    brand_color: str = "#0b6bcb"
    brand_logo_url: str | None = None
    #: install links a principal may create per hour; page views per client IP per minute
    install_links_per_hour: int = 30
    install_page_views_per_minute: int = 60

    #: outbound webhooks: seconds to wait after each failed attempt (the first is
    #: immediate; about 27.5 h in all), how often each replica looks for due deliveries,
    #: and how long one attempt may take
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_WEBHOOK_RETRY_SCHEDULE
    webhook_poll_interval: float = 2.0
    webhook_timeout: float = 10.0
    #: delivered outbound webhooks (deliveries and their messages) older than this are
    #: pruned by the delivery loop; FAILED and PENDING ones are kept
    webhook_retention_days: float = 30.0
    #: how often each replica reads the usage of recent eSIMs for `esim.*` webhooks
    #: (only while an endpoint subscribes to one)
    usage_poll_interval: float = 3600.0

    #: uvicorn's access line and httpx's line per provider call, besides our own access
    #: line; None: only at DEBUG (three lines per request cost CPU and say little more)
    library_access_logs: bool | None = None

    @property
    def quiet_periods(self) -> dict[str, float]:
        """Provider value -> quiet period in seconds."""
        return {
            "roamify": self.roamify_quiet_period,
            "simplifytrip": self.simplifytrip_quiet_period,
        }

    @property
    def is_sandbox(self) -> bool:
        return self.mode is Mode.SANDBOX

    @property
    def introspection_enabled(self) -> bool:
        return self.is_sandbox if self.introspection is None else self.introspection

    @property
    def only_trusted_documents(self) -> bool:
        """In the sandbox every document runs: it is where apps are developed."""
        return self.trusted_documents_only and not self.is_sandbox

    @property
    def graphiql_enabled(self) -> bool:
        return self.is_sandbox if self.graphiql is None else self.graphiql

    @property
    def library_access_logs_enabled(self) -> bool:
        if self.library_access_logs is None:
            return self.log_level == "DEBUG"
        return self.library_access_logs

    def check_safe_to_serve(self) -> None:
        """Refuse a configuration that would serve real purchases to anyone.

        The sandbox lets every caller in as its demo customer, which is harmless only
        while every provider is a simulator: a real base URL or a credential other than
        the documented sandbox ones in sandbox mode is an operator who forgot
        `MODE=live`. Live mode without API keys or JWT settings could only refuse every
        request, so it does not start either. Raises `ConfigError` (one line).
        """
        if self.is_sandbox:
            for name, url in (
                ("ROAMIFY_BASE_URL", self.roamify_base_url),
                ("SIMPLIFYTRIP_BASE_URL", self.simplifytrip_base_url),
            ):
                if url is not None and not is_simulator_url(url):
                    raise ConfigError(
                        f"{PREFIX}{name} points at a real provider but {PREFIX}MODE is sandbox,"
                        f" where anyone may buy: set {PREFIX}MODE=live and {PREFIX}API_KEYS"
                        f" (or {PREFIX}JWT_SECRET), or unset {PREFIX}{name} to use the simulator"
                    )
            for name, value, sandbox_value in (
                ("ROAMIFY_TOKEN", self.roamify_token, SANDBOX_ROAMIFY_TOKEN),
                (
                    "ROAMIFY_WEBHOOK_SECRET",
                    self.roamify_webhook_secret,
                    SANDBOX_ROAMIFY_WEBHOOK_SECRET,
                ),
                ("SIMPLIFYTRIP_API_KEY", self.simplifytrip_api_key, SANDBOX_SIMPLIFYTRIP_API_KEY),
                (
                    "SIMPLIFYTRIP_SECRET_KEY",
                    self.simplifytrip_secret_key,
                    SANDBOX_SIMPLIFYTRIP_SECRET_KEY,
                ),
                (
                    "SIMPLIFYTRIP_CHECKSUM_KEY",
                    self.simplifytrip_checksum_key,
                    SANDBOX_SIMPLIFYTRIP_CHECKSUM_KEY,
                ),
            ):
                if value is not None and value != sandbox_value:
                    raise ConfigError(
                        f"{PREFIX}{name} is a provider credential but {PREFIX}MODE is sandbox,"
                        f" where anyone may buy: set {PREFIX}MODE=live and {PREFIX}API_KEYS"
                        f" (or {PREFIX}JWT_SECRET), or unset {PREFIX}{name} to use the simulator"
                    )
        elif not self.api_keys and not self.jwt_secret and not self.jwt_public_key:
            raise ConfigError(
                f"{PREFIX}MODE=live needs {PREFIX}API_KEYS or {PREFIX}JWT_SECRET"
                f" (or {PREFIX}JWT_PUBLIC_KEY): without them every request would be refused"
            )

    def with_sandbox_credentials(self) -> Settings:
        """Sandbox mode: fill unset credentials with the documented sandbox ones."""
        if not self.is_sandbox:
            return self
        return replace(
            self,
            roamify_token=self.roamify_token or SANDBOX_ROAMIFY_TOKEN,
            roamify_webhook_secret=self.roamify_webhook_secret or SANDBOX_ROAMIFY_WEBHOOK_SECRET,
            simplifytrip_api_key=self.simplifytrip_api_key or SANDBOX_SIMPLIFYTRIP_API_KEY,
            simplifytrip_secret_key=self.simplifytrip_secret_key or SANDBOX_SIMPLIFYTRIP_SECRET_KEY,
            simplifytrip_checksum_key=self.simplifytrip_checksum_key
            or SANDBOX_SIMPLIFYTRIP_CHECKSUM_KEY,
        )

    def __repr__(self) -> str:
        return f"Settings(mode={self.mode.value!r}, database_url=<set>, host={self.host!r})"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env")
    ) -> Settings:
        values: dict[str, str] = dict(_read_dotenv(dotenv)) if dotenv is not None else {}
        values.update(os.environ if environ is None else environ)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            raw = values.get(PREFIX + name)
            return raw.strip() if raw is not None and raw.strip() != "" else None

        kwargs: dict[str, Any] = {}

        def enum_value(name: str, kind: type[enum.StrEnum], attr: str) -> None:
            raw = get(name)
            if raw is None:
                return
            try:
                kwargs[attr] = kind(raw.lower())
            except ValueError:
                choices = " | ".join(m.value for m in kind)
                raise ConfigError(f"{PREFIX}{name}={raw!r} is not one of {choices}") from None

        def number(name: str, attr: str, kind: type[int] | type[float], low: float) -> None:
            raw = get(name)
            if raw is None:
                return
            try:
                parsed = kind(raw)
            except ValueError:
                raise ConfigError(f"{PREFIX}{name}={raw!r} is not a number") from None
            if parsed < low:
                raise ConfigError(f"{PREFIX}{name} must be at least {low}")
            kwargs[attr] = parsed

        def flag(name: str, attr: str) -> None:
            raw = get(name)
            if raw is None:
                return
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                kwargs[attr] = True
            elif lowered in ("0", "false", "no", "off"):
                kwargs[attr] = False
            else:
                raise ConfigError(f"{PREFIX}{name}={raw!r} is not a boolean (true/false)")

        def url(name: str, attr: str) -> None:
            raw = get(name)
            if raw is None:
                return
            if not raw.startswith(("http://", "https://")):
                raise ConfigError(f"{PREFIX}{name} must be an http(s) URL")
            kwargs[attr] = raw.rstrip("/")

        enum_value("MODE", Mode, "mode")
        enum_value("HTTP_TRANSPORT", HttpTransport, "http_transport")
        number("PORT", "port", int, 1)
        number("ORDER_DEADLINE", "order_deadline", float, 0.1)
        number("PROVIDER_CONCURRENCY", "provider_concurrency", int, 1)
        number("SANDBOX_FULFIL_DELAY", "sandbox_fulfil_delay", float, 0)
        number("CATALOG_TTL", "catalog_ttl", float, 0)
        number("ROAMIFY_QUIET_PERIOD", "roamify_quiet_period", float, 0)
        number("SIMPLIFYTRIP_QUIET_PERIOD", "simplifytrip_quiet_period", float, 0)
        number("PURCHASE_WATCH_PERIOD", "purchase_watch_period", float, 0)
        number("RATE_LIMIT_PER_SECOND", "rate_limit_per_second", float, 0.001)
        number("RATE_LIMIT_BURST", "rate_limit_burst", int, 1)
        number("QUOTE_TTL", "quote_ttl", float, 1)
        number("SCHEDULE_HORIZON_DAYS", "schedule_horizon_days", float, 0.001)
        number("SCHEDULER_INTERVAL", "scheduler_interval", float, 0.05)
        number("APQ_CACHE_SIZE", "apq_cache_size", int, 0)
        number("BATCH_MAX_OPERATIONS", "batch_max_operations", int, 1)
        flag("BATCHING", "batching")
        flag("TRUSTED_DOCUMENTS_ONLY", "trusted_documents_only")
        flag("TRUSTED_DOCUMENTS_EXEMPT_OPERATORS", "trusted_documents_exempt_operators")
        number("WEBHOOK_POLL_INTERVAL", "webhook_poll_interval", float, 0.05)
        number("WEBHOOK_TIMEOUT", "webhook_timeout", float, 0.1)
        number("WEBHOOK_RETENTION_DAYS", "webhook_retention_days", float, 0.001)
        number("USAGE_POLL_INTERVAL", "usage_poll_interval", float, 1)
        raw_schedule = get("WEBHOOK_RETRY_SCHEDULE")
        if raw_schedule is not None:
            try:
                schedule = tuple(float(p) for p in raw_schedule.split(",") if p.strip())
            except ValueError:
                schedule = (-1.0,)
            # a delay under 0.1 s would turn a failing receiver into a busy loop
            if not schedule or any(delay < 0.1 for delay in schedule):
                raise ConfigError(
                    f"{PREFIX}WEBHOOK_RETRY_SCHEDULE={raw_schedule!r} must be seconds,"
                    " comma-separated, e.g. 5,300,1800"
                )
            kwargs["webhook_retry_schedule"] = schedule
        flag("INTROSPECTION", "introspection")
        flag("GRAPHIQL", "graphiql")
        flag("OTEL_ENABLED", "otel_enabled")
        flag("LIBRARY_ACCESS_LOGS", "library_access_logs")
        url("OTEL_ENDPOINT", "otel_endpoint")
        url("ROAMIFY_BASE_URL", "roamify_base_url")
        url("SIMPLIFYTRIP_BASE_URL", "simplifytrip_base_url")
        url("PUBLIC_URL", "public_url")
        for name, attr in (
            ("HOST", "host"),
            ("DATABASE_URL", "database_url"),
            ("LOG_LEVEL", "log_level"),
            ("ROAMIFY_TOKEN", "roamify_token"),
            ("ROAMIFY_WEBHOOK_SECRET", "roamify_webhook_secret"),
            ("SIMPLIFYTRIP_API_KEY", "simplifytrip_api_key"),
            ("SIMPLIFYTRIP_SECRET_KEY", "simplifytrip_secret_key"),
            ("SIMPLIFYTRIP_CHECKSUM_KEY", "simplifytrip_checksum_key"),
            ("SIMPLIFYTRIP_CURRENCY", "simplifytrip_currency"),
            ("JWT_SECRET", "jwt_secret"),
            ("JWT_PUBLIC_KEY", "jwt_public_key"),
            ("JWT_ISSUER", "jwt_issuer"),
            ("JWT_AUDIENCE", "jwt_audience"),
            ("RATE_LIMIT_REDIS_URL", "rate_limit_redis_url"),
            ("APQ_REDIS_URL", "apq_redis_url"),
        ):
            raw = get(name)
            if raw is not None:
                kwargs[attr] = raw
        raw_rates = get("USD_RATES")
        if raw_rates is not None:
            rates: list[tuple[str, Decimal]] = [("USD", Decimal(1))]
            for entry in filter(None, (p.strip() for p in raw_rates.split(","))):
                code, _, value = entry.partition("=")
                try:
                    rate = Decimal(value)
                except InvalidOperation:
                    rate = Decimal(0)
                if len(code) != 3 or not code.isalpha() or rate <= 0:
                    raise ConfigError(f"{PREFIX}USD_RATES entry {entry!r} must look like VND=25400")
                rates.append((code.upper(), rate))
            kwargs["usd_rates"] = tuple(rates)
        source = get("USD_RATES_SOURCE")
        if source is not None:
            if source.lower() not in ("static", "roamify"):
                raise ConfigError(
                    f"{PREFIX}USD_RATES_SOURCE={source!r} is not one of static | roamify"
                )
            kwargs["usd_rates_source"] = source.lower()
        markups = []
        for provider in ("ROAMIFY", "SIMPLIFYTRIP"):
            raw_markup = get(f"MARKUP_{provider}")
            if raw_markup is not None:
                markups.append(
                    (provider.lower(), Markup.parse(raw_markup, f"{PREFIX}MARKUP_{provider}"))
                )
        if markups:
            kwargs["markups"] = tuple(markups)
        raw_documents = get("TRUSTED_DOCUMENTS")
        if raw_documents is not None:
            kwargs["trusted_documents"] = tuple(
                filter(None, (p.strip() for p in raw_documents.split(",")))
            )
        number("INSTALL_LINKS_PER_HOUR", "install_links_per_hour", int, 1)
        number("INSTALL_PAGE_VIEWS_PER_MINUTE", "install_page_views_per_minute", int, 1)
        brand_name = get("BRAND_NAME")
        if brand_name is not None:
            kwargs["brand_name"] = brand_name[:80]
        brand_color = get("BRAND_COLOR")
        if brand_color is not None:
            if not re.fullmatch(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})", brand_color):
                raise ConfigError(f"{PREFIX}BRAND_COLOR={brand_color!r} must look like #0b6bcb")
            kwargs["brand_color"] = brand_color
        logo = get("BRAND_LOGO_URL")
        if logo is not None:
            if not (
                re.fullmatch(r"/[A-Za-z0-9._~/-]*", logo)
                or re.fullmatch(
                    r"data:image/(?:png|svg\+xml|webp|jpeg);base64,[A-Za-z0-9+/=]+", logo
                )
                or re.fullmatch(r"https://[A-Za-z0-9.-]+(?::[0-9]+)?/[^\s\"'<>]*", logo)
            ):
                raise ConfigError(
                    f"{PREFIX}BRAND_LOGO_URL must be a path on the gateway, a data:image"
                    " base64 URI or an https URL"
                )
            kwargs["brand_logo_url"] = logo
        raw_keys = get("API_KEYS")
        if raw_keys is not None:
            kwargs["api_keys"] = _parse_api_keys(raw_keys, PREFIX + "API_KEYS")
        if "database_url" in kwargs and "://" not in kwargs["database_url"]:
            raise ConfigError(f"{PREFIX}DATABASE_URL must be a SQLAlchemy URL")
        level = str(kwargs.get("log_level", "INFO")).upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"{PREFIX}LOG_LEVEL={level!r} is not a logging level")
        kwargs["log_level"] = level
        return cls(**kwargs)
