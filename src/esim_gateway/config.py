"""Settings: the only module that reads the environment (and only when asked to).

`Settings.from_env()` reads `ESIM_GATEWAY_*` variables, and a `.env` file in the working
directory when present (the environment wins). A bad value stops start-up with one line
naming the variable (`ConfigError`).

Each setting is declared once, as one field of `Settings`:

    port: int = setting(8000, integer(at_least=1), "port `serve` listens on")

The variable is `ESIM_GATEWAY_` + the field's name upper-cased (`env=` names another);
the reader (`TEXT`, `URL`, `FLAG`, `integer`, `number`, `choice`, `one_of` or one of the
`_...` readers below) turns the variable's text into the value, or raises the one-line
`ConfigError`; the string is the setting's line in `docs/configuration.md`. A setting read
once per provider (`ESIM_GATEWAY_MARKUP_ROAMIFY`, `..._SIMPLIFYTRIP`) is declared with
`each_provider(...)` instead.

To add a setting: add its field (a new kind of value gets a new reader: a function
`(text, variable) -> value` wrapped in a `Reader` that names its kind and bounds), then
run `esim-gateway config-reference docs/configuration.md` and commit the regenerated
reference (tests/unit/test_config.py fails while the two differ).
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Generic, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "ApiKey",
    "ConfigError",
    "HttpTransport",
    "Markup",
    "Mode",
    "Settings",
    "is_simulator_url",
    "reference",
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


# -- readers: a variable's text -> a value, or one line naming the variable -------------

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
E = TypeVar("E", bound=enum.StrEnum)
N = TypeVar("N", int, float)


@dataclass(frozen=True, slots=True)
class Reader(Generic[T_co]):
    """How one variable's text becomes a value.

    `parse(text, variable)` gets the stripped, non-empty text and the variable's full name
    (for the `ConfigError` message); `kind` and `bounds` are what the reference shows."""

    parse: Callable[[str, str], T_co]
    kind: str
    bounds: str = ""


def _text(raw: str, name: str) -> str:
    return raw


def _url(raw: str, name: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL")
    return raw.rstrip("/")


def _flag(raw: str, name: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (true/false)")


TEXT: Final = Reader(_text, "string")
URL: Final = Reader(_url, "URL", "http:// or https://")
FLAG: Final = Reader(_flag, "boolean", "true/false, yes/no, on/off, 1/0")


def _at_least(kind: type[N], low: float) -> Callable[[str, str], N]:
    def parse(raw: str, name: str) -> N:
        try:
            parsed = kind(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if parsed < low:
            raise ConfigError(f"{name} must be at least {low}")
        return parsed

    return parse


def integer(*, at_least: int) -> Reader[int]:
    return Reader(_at_least(int, at_least), "integer", f"at least {at_least}")


def number(*, at_least: float, unit: str = "number") -> Reader[float]:
    """A float no lower than `at_least`; `unit` ("seconds", "days") is its kind."""
    return Reader(_at_least(float, at_least), unit, f"at least {at_least}")


def choice(kind: type[E]) -> Reader[E]:
    """One of an enum's values, in any case."""
    choices = " | ".join(member.value for member in kind)

    def parse(raw: str, name: str) -> E:
        try:
            return kind(raw.lower())
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not one of {choices}") from None

    return Reader(parse, choices)


def one_of(*choices: str) -> Reader[str]:
    """One of a few words, in any case, kept lower-case."""
    listed = " | ".join(choices)

    def parse(raw: str, name: str) -> str:
        if raw.lower() not in choices:
            raise ConfigError(f"{name}={raw!r} is not one of {listed}")
        return raw.lower()

    return Reader(parse, listed)


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str, name: str) -> str:
    level = raw.upper()
    if level not in _LOG_LEVELS:
        raise ConfigError(f"{name}={level!r} is not a logging level")
    return level


def _sqlalchemy_url(raw: str, name: str) -> str:
    if "://" not in raw:
        raise ConfigError(f"{name} must be a SQLAlchemy URL")
    return raw


def _delays(raw: str, name: str) -> tuple[float, ...]:
    try:
        schedule = tuple(float(p) for p in raw.split(",") if p.strip())
    except ValueError:
        schedule = (-1.0,)
    # a delay under 0.1 s would turn a failing receiver into a busy loop
    if not schedule or any(delay < 0.1 for delay in schedule):
        raise ConfigError(f"{name}={raw!r} must be seconds, comma-separated, e.g. 5,300,1800")
    return schedule


def _usd_rates(raw: str, name: str) -> tuple[tuple[str, Decimal], ...]:
    rates: list[tuple[str, Decimal]] = [("USD", Decimal(1))]
    for entry in filter(None, (p.strip() for p in raw.split(","))):
        code, _, value = entry.partition("=")
        try:
            rate = Decimal(value)
        except InvalidOperation:
            rate = Decimal(0)
        if len(code) != 3 or not code.isalpha() or rate <= 0:
            raise ConfigError(f"{name} entry {entry!r} must look like VND=25400")
        rates.append((code.upper(), rate))
    return tuple(rates)


def _paths(raw: str, name: str) -> tuple[str, ...]:
    return tuple(filter(None, (p.strip() for p in raw.split(","))))


def _brand_name(raw: str, name: str) -> str:
    return raw[:80]


def _brand_color(raw: str, name: str) -> str:
    if not re.fullmatch(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})", raw):
        raise ConfigError(f"{name}={raw!r} must look like #0b6bcb")
    return raw


_LOGO_FORMS = (
    re.compile(r"/[A-Za-z0-9._~/-]*"),
    re.compile(r"data:image/(?:png|svg\+xml|webp|jpeg);base64,[A-Za-z0-9+/=]+"),
    re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]+)?/[^\s\"'<>]*"),
)


def _brand_logo(raw: str, name: str) -> str:
    if not any(form.fullmatch(raw) for form in _LOGO_FORMS):
        raise ConfigError(
            f"{name} must be a path on the gateway, a data:image base64 URI or an https URL"
        )
    return raw


_LOG_LEVEL: Final = Reader(_log_level, " | ".join(_LOG_LEVELS))
_DATABASE_URL: Final = Reader(_sqlalchemy_url, "SQLAlchemy URL", "has a scheme (`...://`)")
_API_KEYS: Final = Reader(_parse_api_keys, "principal:role:key, ...", "role customer or operator")
_DELAYS: Final = Reader(_delays, "seconds, comma-separated", "each at least 0.1")
_USD_RATES: Final = Reader(_usd_rates, "CODE=rate, ...", "rate above 0")
_MARKUP: Final = Reader(Markup.parse, "12% or 0.50 or 12%+0.50", "at most 100 % off")
_PATHS: Final = Reader(_paths, "paths, comma-separated")


def _parse_proxies(raw: str, name: str) -> tuple[str, ...]:
    """IP addresses and networks of trusted proxies; `none` for no proxy at all."""
    entries = tuple(filter(None, (part.strip() for part in raw.split(","))))
    if tuple(e.lower() for e in entries) == ("none",):
        return ()
    for entry in entries:
        if entry == "*":
            raise ConfigError(
                f"{name}='*' would take any client's X-Forwarded-For for its address:"
                " name the proxies' addresses or networks (e.g. 10.0.0.5 or 10.0.0.0/24)"
            )
        try:
            if "/" in entry:
                ipaddress.ip_network(entry)
            else:
                ipaddress.ip_address(entry)
        except ValueError:
            raise ConfigError(f"{name}: {entry!r} is not an IP address or network") from None
    return entries


_PROXIES: Final = Reader(_parse_proxies, "addresses or networks, comma-separated, or `none`")
_BRAND_NAME: Final = Reader(_brand_name, "string", "80 characters (longer is cut)")
_BRAND_COLOR: Final = Reader(_brand_color, "#rgb or #rrggbb")
_BRAND_LOGO: Final = Reader(_brand_logo, "path, data:image URI or https URL")


# -- the declaration: one field per setting ----------------------------------------------

_SETTING: Final = "esim_gateway.setting"
_PROVIDERS: Final = ("ROAMIFY", "SIMPLIFYTRIP")
_UNSET: Final = object()


@dataclass(frozen=True, slots=True)
class _Declared:
    """A field's metadata: how it is read and how the reference describes it."""

    reader: Reader[object]
    doc: str
    env: str | None = None  # None: the field's name upper-cased
    shown: str | None = None  # the default as the reference words it, when not the value
    each_provider: bool = False

    def variables(self, attr: str) -> list[tuple[str, str]]:
        """(provider value or "", variable without the prefix) for each variable read."""
        name = self.env or attr.upper()
        if self.each_provider:
            return [(provider.lower(), f"{name}_{provider}") for provider in _PROVIDERS]
        return [("", name)]

    def read(self, attr: str, get: Callable[[str], str | None]) -> object:
        """The value the variables give, or `_UNSET` when none of them is set."""
        found = [
            (provider, self.reader.parse(raw, PREFIX + variable))
            for provider, variable in self.variables(attr)
            if (raw := get(variable)) is not None
        ]
        if not found:
            return _UNSET
        return tuple(found) if self.each_provider else found[0][1]


def setting(
    default: T,
    reader: Reader[T],
    doc: str,
    *,
    env: str | None = None,
    shown: str | None = None,
    secret: bool = False,
) -> T:
    """One setting: its default, its reader and its line in the reference."""
    declared = _Declared(reader, doc, env, shown)
    return field(default=default, repr=not secret, metadata={_SETTING: declared})


def each_provider(reader: Reader[T], doc: str, *, env: str) -> tuple[tuple[str, T], ...]:
    """A setting read from `<env>_ROAMIFY` and `<env>_SIMPLIFYTRIP`: (provider, value)
    pairs for those that are set."""
    declared = _Declared(reader, doc, env, each_provider=True)
    return field(default=(), metadata={_SETTING: declared})


def _declared(item: Field[Any]) -> _Declared:
    declared = item.metadata.get(_SETTING)
    if not isinstance(declared, _Declared):
        raise TypeError(f"Settings.{item.name} is not declared with setting(...)")
    return declared


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


_SANDBOX_FILLS = "; unset in sandbox mode: the simulator's"


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, declared once (see the module docstring); `Settings(...)` takes them
    as keywords, unchecked, and `from_env`/`from_mapping` read and check them."""

    mode: Mode = setting(
        Mode.SANDBOX,
        choice(Mode),
        "`sandbox`: the simulators, GraphiQL and introspection, and a caller that sends no"
        " key buys as the demo customer (a wrong key is a 401); `live`: real providers, and"
        " callers need an API key or a JWT",
    )
    host: str = setting("127.0.0.1", TEXT, "address `serve` listens on (`--host` wins)")
    port: int = setting(
        8000,
        integer(at_least=1),
        "port `serve` listens on and `healthcheck` asks (`--port` wins)",
    )
    database_url: str = setting(
        "sqlite+aiosqlite:///./esim_gateway.db",
        _DATABASE_URL,
        "the ledger; `postgresql+asyncpg://...` for several replicas",
    )
    log_level: str = setting("INFO", _LOG_LEVEL, "one access line per request (ours) at `INFO`")

    roamify_base_url: str | None = setting(
        None, URL, "Roamify's API (e.g. `https://api.getroamify.com`); unset: the simulator"
    )
    roamify_token: str | None = setting(None, TEXT, "Roamify API token" + _SANDBOX_FILLS)
    roamify_webhook_secret: str | None = setting(
        None, TEXT, "secret Roamify's webhooks are signed with" + _SANDBOX_FILLS
    )
    simplifytrip_base_url: str | None = setting(
        None, URL, "SimplifyTrip's merchant API; unset: the simulator"
    )
    simplifytrip_api_key: str | None = setting(
        None, TEXT, "SimplifyTrip API key (`X-Api-Key`)" + _SANDBOX_FILLS
    )
    simplifytrip_secret_key: str | None = setting(
        None, TEXT, "SimplifyTrip secret key (the bearer token)" + _SANDBOX_FILLS
    )
    simplifytrip_checksum_key: str | None = setting(
        None, TEXT, "SimplifyTrip checksum key (`X-Signature`)" + _SANDBOX_FILLS
    )
    simplifytrip_currency: str = setting("VND", TEXT, "the currency SimplifyTrip prices are in")

    api_keys: tuple[ApiKey, ...] = setting(
        (),
        _API_KEYS,
        "who may call: `principal:role:key` entries, comma-separated; role `customer` or"
        " `operator`; key in clear or `sha256:<hex>` (only digests are kept)",
    )
    jwt_secret: str | None = setting(None, TEXT, "HS256 secret of bearer JWTs", secret=True)
    jwt_public_key: str | None = setting(
        None, TEXT, "RS256/ES256 public key of bearer JWTs: PEM text or a file", secret=True
    )
    jwt_issuer: str | None = setting(None, TEXT, "the `iss` bearer JWTs must carry")
    jwt_audience: str | None = setting(None, TEXT, "the `aud` bearer JWTs must carry")

    order_deadline: float = setting(
        30.0,
        number(at_least=0.1, unit="seconds"),
        "a mutation answers by then (PENDING/PROCESSING); unfinished work goes on in the"
        " background",
    )
    http_transport: HttpTransport = setting(
        HttpTransport.REQWEST,
        choice(HttpTransport),
        "how provider calls go out, always through httpx's API: `reqwest` (pyreqwest, Rust;"
        " cheapest per call; httpx's own where pyreqwest has no wheel) or `httpx` (httpx's own"
        " transport); `aiohttp`, a removed third, is read as `httpx` with a warning",
    )
    provider_concurrency: int = setting(16, integer(at_least=1), "concurrent calls per provider")
    introspection: bool | None = setting(
        None, FLAG, "GraphQL introspection", shown="on in sandbox, off in live"
    )
    graphiql: bool | None = setting(
        None, FLAG, "the GraphiQL IDE", shown="on in sandbox, off in live"
    )
    sandbox_fulfil_delay: float = setting(
        2.0,
        number(at_least=0, unit="seconds"),
        "how long SimplifyTrip's simulator takes to fulfil an eSIM order",
    )
    sandbox_state: str | None = setting(
        None,
        TEXT,
        "the JSON file the simulators keep their orders, eSIMs and balances in across"
        " restarts (`memory`: not kept); dropped with a SQLite ledger's file, emptied by"
        " `esim-gateway sandbox-reset`",
        shown="beside a SQLite ledger (`esim_gateway.sandbox.json`); in memory otherwise",
    )
    public_url: str | None = setting(
        None,
        URL,
        "where the gateway is reached from outside (providers' webhooks, install links);"
        " unset: the request's own URL",
    )
    catalog_ttl: float = setting(
        300.0,
        number(at_least=0, unit="seconds"),
        "time between background catalog refreshes (with jitter)",
    )
    rate_limit_per_second: float = setting(
        20.0,
        number(at_least=0.001, unit="per second"),
        "sustained requests per principal and per client IP; past the burst: 429 with"
        " `Retry-After`",
    )
    rate_limit_burst: int = setting(
        60, integer(at_least=1), "requests a principal or client IP may make at once"
    )
    rate_limit_redis_url: str | None = setting(
        None, TEXT, "keep the rate-limit buckets in Redis, shared by every replica (else in memory)"
    )
    auth_failures_per_minute: int = setting(
        10,
        integer(at_least=1),
        "failed authentications (a wrong API key or JWT) per client address: a burst, refilled"
        " over a minute; past it, 429 until the budget has room again",
    )
    forwarded_allow_ips: tuple[str, ...] = setting(
        ("127.0.0.1",),
        _PROXIES,
        "the proxies whose X-Forwarded-For gives the client's address (uvicorn's"
        " forwarded_allow_ips rule, applied by the app: `esim_gateway.ops.forwarded`);"
        " `*` is refused",
    )
    metrics_token: str | None = setting(
        None,
        TEXT,
        "a bearer token GET /metrics requires (unset: /metrics answers anyone who reaches it)",
        secret=True,
    )
    usd_rates: tuple[tuple[str, Decimal], ...] = setting(
        (("USD", Decimal(1)), ("VND", Decimal(25400))),
        _USD_RATES,
        "units of each currency per 1 USD, for `Package.priceUsd` (a static table; USD=1 is"
        " implied)",
        shown="`VND=25400`",
    )
    usd_rates_source: str = setting(
        "static",
        one_of("static", "roamify"),
        "`roamify`: follow Roamify's exchange-rate endpoint (rate, source and time shown on"
        " `Package.usdRate`) instead of the static table",
    )
    markups: tuple[tuple[str, Markup], ...] = each_provider(
        _MARKUP,
        "retail price rule for the provider the variable names, e.g. `12%+0.50`:"
        " `Package.retailPrice`",
        env="MARKUP",
    )
    otel_enabled: bool = setting(
        False,
        FLAG,
        "OpenTelemetry spans to the global tracer provider (e.g. under"
        " `opentelemetry-instrument`); needs `pip install 'esim-gateway[otel]'`",
    )
    otel_endpoint: str | None = setting(
        None,
        URL,
        "an OTLP/HTTP traces endpoint (e.g. `http://collector:4318/v1/traces`) the gateway"
        " exports to itself",
    )
    # longer than the provider's slowest documented processing (Roamify: 60-90 s);
    # SimplifyTrip refuses a second order with the same trackId, so there it only decides
    # when to give up
    roamify_quiet_period: float = setting(
        180.0,
        number(at_least=0, unit="seconds"),
        "after a Roamify purchase of unknown outcome, how long without Roamify showing it"
        " before it may be sent again (or given up)",
    )
    simplifytrip_quiet_period: float = setting(
        120.0,
        number(at_least=0, unit="seconds"),
        "after a SimplifyTrip purchase of unknown outcome, how long without SimplifyTrip"
        " showing it before it is given up",
    )
    purchase_watch_period: float = setting(
        86_400.0,
        number(at_least=0, unit="seconds"),
        "how long a reference stays watched for late or duplicate purchases after a resend"
        " or after giving up",
    )

    quote_ttl: float = setting(
        900.0,
        number(at_least=1, unit="seconds"),
        "how long a `quoteOrder` price stays firm for `createOrder(quoteId)`",
    )
    schedule_horizon_days: float = setting(
        90.0,
        number(at_least=0.001, unit="days"),
        "how far ahead `createOrder(scheduledAt)` may schedule",
    )
    scheduler_interval: float = setting(
        5.0,
        number(at_least=0.05, unit="seconds"),
        "time between two looks for scheduled orders that are due (every replica looks)",
    )

    trusted_documents: tuple[str, ...] = setting(
        (),
        _PATHS,
        "persisted-document manifests (Codegen, Apollo, Relay formats) loaded at start-up:"
        " files, or directories of `*.json`",
    )
    trusted_documents_only: bool = setting(
        False, FLAG, "live mode runs trusted documents only (the sandbox runs any)"
    )
    trusted_documents_exempt_operators: bool = setting(
        False, FLAG, "operators may run any document even then"
    )
    apq_cache_size: int = setting(
        1000,
        integer(at_least=0),
        "automatic persisted queries: documents kept in this process (`0`: APQ off)",
    )
    apq_redis_url: str | None = setting(
        None, TEXT, "keep APQ documents in Redis instead, shared by every replica"
    )
    # QUALITY.md C7: batching off, or at most 5 operations
    batching: bool = setting(False, FLAG, "accept JSON arrays of operations (Apollo BatchHttpLink)")
    batch_max_operations: int = setting(
        5, integer(at_least=1), "operations in one JSON array at most"
    )

    brand_name: str = setting("eSIM", _BRAND_NAME, "the install page's brand name")
    brand_color: str = setting("#0b6bcb", _BRAND_COLOR, "the install page's accent colour")
    brand_logo_url: str | None = setting(
        None,
        _BRAND_LOGO,
        "the install page's logo: a path on the gateway, a `data:image/...;base64,` URI or"
        " an https URL (its origin is then allowed by the page's CSP)",
    )
    install_links_per_hour: int = setting(
        30, integer(at_least=1), "install links a principal may create per hour"
    )
    install_page_views_per_minute: int = setting(
        60, integer(at_least=1), "install page views per client IP per minute"
    )

    webhook_retry_schedule: tuple[float, ...] = setting(
        DEFAULT_WEBHOOK_RETRY_SCHEDULE,
        _DELAYS,
        "outbound webhooks: time to wait after each failed attempt (the first attempt is"
        " immediate; about 27.5 h in all by default)",
    )
    webhook_poll_interval: float = setting(
        2.0,
        number(at_least=0.05, unit="seconds"),
        "how often each replica looks for outbound webhooks due (changes wake it sooner)",
    )
    webhook_timeout: float = setting(
        10.0, number(at_least=0.1, unit="seconds"), "how long one webhook attempt may take"
    )
    webhook_retention_days: float = setting(
        30.0,
        number(at_least=0.001, unit="days"),
        "delivered outbound webhooks (and their messages) older than this are pruned;"
        " FAILED and PENDING ones are kept",
    )
    usage_poll_interval: float = setting(
        3600.0,
        number(at_least=1, unit="seconds"),
        "how often each replica reads recent eSIMs' usage for `esim.*` webhooks (only while"
        " an endpoint subscribes to one)",
    )

    # three lines per request cost CPU and say little more than our own access line
    library_access_logs: bool | None = setting(
        None,
        FLAG,
        "uvicorn's access line and httpx's line per provider call, besides our own",
        shown="on at `DEBUG`, else off",
    )

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

        The sandbox lets every caller without a key in as its demo customer, harmless only
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
        """Settings from `ESIM_GATEWAY_*` entries; an empty value counts as unset. Every
        declared variable is looked up with `values.get` (a test records them)."""

        def get(name: str) -> str | None:
            raw = values.get(PREFIX + name)
            return raw.strip() if raw is not None and raw.strip() != "" else None

        if values.get("FORWARDED_ALLOW_IPS"):
            # uvicorn's variable: the gateway applies the rule itself now, and a trust list
            # silently ignored would put every client behind the proxy in one bucket
            raise ConfigError(
                f"FORWARDED_ALLOW_IPS is no longer read: set {PREFIX}FORWARDED_ALLOW_IPS"
                " to the proxies' addresses instead"
            )
        kwargs: dict[str, Any] = {}
        for item in fields(cls):
            value = _declared(item).read(item.name, get)
            if value is not _UNSET:
                kwargs[item.name] = value
        return cls(**kwargs)


# -- the reference: docs/configuration.md -------------------------------------------------

_REFERENCE_HEADER = """\
# Configuration

<!-- Generated from src/esim_gateway/config.py by
     `esim-gateway config-reference docs/configuration.md`: edit the declarations there. -->

The gateway reads these environment variables, and a `.env` file in the working directory
(the environment wins). An empty value counts as unset. A value that does not parse, or is
out of bounds, stops start-up with one line naming the variable.

"""


def _shown(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, enum.Enum):
        return f"`{value.value}`"
    if isinstance(value, float):
        return f"`{value:.15g}`"
    if isinstance(value, tuple):
        return f"`{','.join(_shown(v).strip('`') for v in value)}`" if value else "none"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference() -> str:
    """The configuration reference: one table row per variable, from the declaration."""
    rows = [
        "| variable | type | default | bounds | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for item in fields(Settings):
        declared = _declared(item)
        default = declared.shown or _shown(item.default)
        for _, variable in declared.variables(item.name):
            cells = (
                f"`{PREFIX}{variable}`",
                declared.reader.kind,
                default,
                declared.reader.bounds,
                declared.doc,
            )
            rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return _REFERENCE_HEADER + "\n".join(rows) + "\n"
