"""The gateway's own records and vocabulary, shared by every layer.

Provider-neutral orders, eSIMs, packages, usage, refunds and money, as the adapters in
`providers/` map them and the ledger, loaders, resolvers and schema read them (raw
provider statuses are kept next to the mapped `OrderState` so nothing is lost); and the
events the gateway sends to operators' receivers, which the ledger writes to its outbox
in the same transaction as the change they announce.

Imports nothing of the gateway: any module may import it.
"""

from __future__ import annotations

import base64
import enum
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "ANDROID_INSTALL",
    "ESIM_EXPIRING",
    "ESIM_USAGE_THRESHOLD",
    "EVENT_TYPES",
    "IOS_INSTALL",
    "ORDER_COMPLETED",
    "ORDER_EVENTS",
    "ORDER_FAILED",
    "ORDER_REFUNDED",
    "PROVIDER_BALANCE_LOW",
    "SECRET_PREFIX",
    "Balance",
    "CatalogPackage",
    "DestinationKind",
    "EsimProfile",
    "EsimUsage",
    "Money",
    "OrderLine",
    "OrderLineRequest",
    "OrderState",
    "PlaceOrder",
    "ProviderName",
    "ProviderOrder",
    "RefundRecord",
    "ShareLink",
    "TopupRequest",
    "envelope",
    "install_links",
    "new_secret",
    "order_global_id",
]


class ProviderName(enum.StrEnum):
    ROAMIFY = "roamify"
    SIMPLIFYTRIP = "simplifytrip"


class OrderState(enum.StrEnum):
    """The gateway's order status; the mapping from each provider is in its gateway."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    ACTION_REQUIRED = "ACTION_REQUIRED"
    ARCHIVED = "ARCHIVED"
    #: recorded for a later time; not sent to the provider yet (never a provider status)
    SCHEDULED = "SCHEDULED"

    @property
    def is_final(self) -> bool:
        return self not in (OrderState.PENDING, OrderState.PROCESSING, OrderState.SCHEDULED)


class DestinationKind(enum.StrEnum):
    LOCAL = "local"
    REGIONAL = "regional"
    GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class EsimProfile:
    """One eSIM as the gateway exposes it. Credentials are sensitive: never log this."""

    provider: ProviderName
    iccid: str
    status: str
    esim_id: str | None = None
    order_id: str | None = None
    order_reference: str | None = None
    package_id: str | None = None
    lpa: str | None = None
    smdp_address: str | None = None
    activation_code: str | None = None
    qr_code_url: str | None = None
    ios_install_url: str | None = None
    android_install_url: str | None = None
    pin: str | None = None
    puk: str | None = None
    apn: str | None = None
    expires_at: datetime | None = None
    topup_allowed: bool = False
    #: network settings as the provider states them; None where it says nothing
    apn_automatic: bool | None = None
    data_roaming: bool | None = None
    hotspot: bool | None = None

    def __repr__(self) -> str:  # credentials stay out of logs and tracebacks
        return f"EsimProfile(provider={self.provider.value!r}, iccid={self.iccid!r})"


IOS_INSTALL = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata="
ANDROID_INSTALL = "https://esimsetup.android.com/esim_qrcode_provisioning?carddata="


def install_links(lpa: str | None) -> tuple[str | None, str | None]:
    """Apple's and Android's one-tap install links for an LPA string (both providers)."""
    if not lpa:
        return None, None
    return IOS_INSTALL + lpa, ANDROID_INSTALL + lpa


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One ordered package. Roamify lists one item per eSIM; its gateway groups them."""

    line_id: str
    package_id: str
    quantity: int
    package_name: str | None = None
    unit_price: Money | None = None
    state: OrderState | None = None
    provider_status: str | None = None
    sub_reference: str | None = None
    esim_ids: tuple[str, ...] = ()
    esims: tuple[EsimProfile, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderOrder:
    provider: ProviderName
    order_id: str
    reference: str | None
    state: OrderState
    provider_status: str
    total: Money | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    failure_reason: str | None = None
    lines: tuple[OrderLine, ...] = ()
    #: True when `lines[*].esims` holds every eSIM profile of the order. SimplifyTrip
    #: order details carry them; a Roamify order does only after `apply`.
    esims_included: bool = False
    #: refunds (return requests) of the order, newest first, where the provider lists them
    refunds: tuple[RefundRecord, ...] = ()
    #: the provider's own summary of them (SimplifyTrip `returnStatus`: NONE/PARTIAL/FULL)
    refund_status: str | None = None

    @property
    def esims(self) -> tuple[EsimProfile, ...]:
        return tuple(esim for line in self.lines for esim in line.esims)


@dataclass(frozen=True, slots=True)
class OrderLineRequest:
    package_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """A purchase. `reference` is sent upstream (Roamify referenceId, SimplifyTrip trackId)."""

    reference: str
    lines: tuple[OrderLineRequest, ...]
    start_date: date | None = None


@dataclass(frozen=True, slots=True)
class TopupRequest:
    reference: str
    iccid: str
    package_id: str


@dataclass(frozen=True, slots=True)
class CatalogPackage:
    provider: ProviderName
    package_id: str
    name: str
    destination: DestinationKind
    country_codes: tuple[str, ...]
    days: int
    data_mb: int | None
    unlimited: bool
    price: Money
    region_code: str | None = None
    region_name: str | None = None
    daily: bool = False
    throttle: str | None = None
    voice: bool = False
    sms: bool = False
    hotspot: bool = False
    topup: bool = False
    activation: str | None = None
    requires_travel_date: bool = False
    usage_check: bool = True
    product_type: str = "eSIM"
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class EsimUsage:
    """Usage normalised to MB, minutes and messages. `None` means the provider did not say."""

    provider: ProviderName
    iccid: str
    status: str | None
    unlimited: bool = False
    data_allowed_mb: Decimal | None = None
    data_used_mb: Decimal | None = None
    data_remaining_mb: Decimal | None = None
    sms_allowed: int | None = None
    sms_used: int | None = None
    sms_remaining: int | None = None
    voice_allowed_minutes: Decimal | None = None
    voice_used_minutes: Decimal | None = None
    voice_remaining_minutes: Decimal | None = None
    plan_start: datetime | None = None
    plan_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    provider: ProviderName
    account_id: str
    kind: str
    balance: Money


@dataclass(frozen=True, slots=True)
class RefundRecord:
    """A refund (SimplifyTrip: a return request) in neutral terms."""

    provider: ProviderName
    refund_id: str
    reference: str | None
    order_id: str | None
    status: str
    fee: Money
    extra_fee: Money
    amount: Money
    iccids: tuple[str, ...] = ()
    reason: str | None = None
    rejection_reason: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ShareLink:
    """A provider's own hosted install page for one eSIM (Roamify `POST /api/esim/link`).

    Whoever holds `url` (and `access_code`, where the provider asks for one) can install
    the eSIM: treat both as credentials."""

    provider: ProviderName
    iccid: str
    url: str
    whatsapp_url: str | None = None
    access_code: str | None = None
    created_at: datetime | None = None

    def __repr__(self) -> str:
        return f"ShareLink(provider={self.provider.value!r}, iccid={self.iccid!r})"


# --- the events the gateway sends ----------------------------------------------------------
# Every body is `{"type": <event>, "timestamp": <ISO 8601 UTC>, "data": {...}}` (the
# Standard Webhooks convention); README.md documents each event's `data`.

ORDER_COMPLETED = "order.completed"
ORDER_FAILED = "order.failed"
ORDER_REFUNDED = "order.refunded"
ESIM_USAGE_THRESHOLD = "esim.usage_threshold"
ESIM_EXPIRING = "esim.expiring"
PROVIDER_BALANCE_LOW = "provider.balance_low"

EVENT_TYPES = (
    ORDER_COMPLETED,
    ORDER_FAILED,
    ORDER_REFUNDED,
    ESIM_USAGE_THRESHOLD,
    ESIM_EXPIRING,
    PROVIDER_BALANCE_LOW,
)

#: order state (ledger value) -> the event announcing that the order entered it
ORDER_EVENTS = {
    "COMPLETED": ORDER_COMPLETED,
    "FAILED": ORDER_FAILED,
    "REFUNDED": ORDER_REFUNDED,
    "PARTIALLY_REFUNDED": ORDER_REFUNDED,
}


def order_global_id(order_id: str) -> str:
    """The Order's GraphQL id (relay: base64 of `Order:<id>`), what API clients hold."""
    return base64.b64encode(f"Order:{order_id}".encode()).decode()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def envelope(event_type: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": event_type,
        "timestamp": _plain(at),
        "data": {key: _plain(value) for key, value in data.items()},
    }


#: the format marker of an endpoint's signing secret (Standard Webhooks: `whsec_<base64>`)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format marker, not a secret


def new_secret() -> str:
    """A fresh signing secret for an outbound endpoint (`outbound.signing` uses it)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
