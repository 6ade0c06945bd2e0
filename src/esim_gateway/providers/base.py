"""What the rest of the gateway knows about a provider.

Each provider package has two layers:

* a wire *client* (`RoamifyClient`, `SimplifyTripClient`) handed its `httpx.AsyncClient`:
  one typed method per documented endpoint, returning frozen wire models;
* a *gateway* (`RoamifyGateway`, `SimplifyTripGateway`) implementing `ProviderGateway`
  below on top of that client, in provider-neutral terms.

Resolvers, loaders and the ledger only ever see the neutral models defined here. Raw
provider statuses are kept next to the mapped `OrderState` so nothing is lost.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

__all__ = [
    "ANDROID_INSTALL",
    "IOS_INSTALL",
    "Balance",
    "Capabilities",
    "CatalogPackage",
    "DestinationKind",
    "EsimProfile",
    "EsimUsage",
    "Money",
    "OrderLine",
    "OrderLineRequest",
    "OrderState",
    "PlaceOrder",
    "ProviderGateway",
    "ProviderName",
    "ProviderOrder",
    "RefundGateway",
    "RefundRecord",
    "ShareLink",
    "ShareLinkGateway",
    "TopupRequest",
    "install_links",
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
class Capabilities:
    """What a provider can do; the API layer answers anything else with a typed error."""

    topup: bool
    cancel: bool
    refund: bool
    usage: bool
    instant_fulfilment: bool
    order_listing: bool
    #: the provider refuses a second purchase with a reference it has seen (it answers
    #: `DuplicateReference`), so a purchase whose outcome is unknown can be sent again at
    #: once; without it, a resend waits for the provider's quiet period
    unique_reference: bool = False

    def supports(self, operation: str) -> bool:
        return bool(getattr(self, operation))


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


@runtime_checkable
class ProviderGateway(Protocol):
    """Provider-neutral operations. Every method raises only `esim_gateway.errors` types.

    Purchases (`submit_order`, `submit_topup`) are not retried here: on
    `ProviderUnavailable` the outcome is unknown and the caller must `find_order`
    by reference before anything else.
    """

    @property
    def name(self) -> ProviderName: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def catalog(self) -> Sequence[CatalogPackage]:
        """Every orderable package (all pages)."""
        ...

    async def submit_order(self, request: PlaceOrder) -> ProviderOrder:
        """Place (and pay for) the order. Roamify: POST /order; SimplifyTrip: POST /orders."""
        ...

    async def fulfil_order(
        self, order: ProviderOrder, *, start_date: date | None = None
    ) -> ProviderOrder:
        """Make the eSIM profiles exist, then return the order as it now stands.

        Roamify: `apply` by referenceId (idempotent: profiles already generated are
        returned as they are). SimplifyTrip: fulfilment is asynchronous upstream, so this
        re-reads the order.
        """
        ...

    async def get_order(self, order_id: str) -> ProviderOrder:
        """The order by the provider's id; `NotFound` when there is none."""
        ...

    async def find_order(self, reference: str) -> ProviderOrder | None:
        """The order we sent with this reference, or None when the provider has none."""
        ...

    async def find_orders(self, reference: str) -> Sequence[ProviderOrder]:
        """Every order (or top-up) carrying this reference, oldest first: more than one
        is a duplicate purchase. Empty when the provider shows none *now*, which is no
        proof that none exists (a purchase may still commit; reads may lag writes)."""
        ...

    async def order_esims(self, order: ProviderOrder) -> Sequence[EsimProfile]:
        """The eSIM profiles of an order (empty while they do not exist yet)."""
        ...

    async def get_esim(self, iccid: str) -> EsimProfile: ...

    async def topup_packages(self, iccid: str) -> Sequence[CatalogPackage]: ...

    async def submit_topup(self, request: TopupRequest) -> ProviderOrder: ...

    async def cancel_order(self, order_id: str, reason: str | None) -> ProviderOrder: ...

    async def usage(self, iccid: str) -> EsimUsage: ...

    async def balances(self) -> Sequence[Balance]: ...


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


@runtime_checkable
class RefundGateway(Protocol):
    """What a provider with a refund API offers (capability `refund`)."""

    #: fee per returned eSIM, in the provider's currency
    refund_fee_per_esim: Money

    async def request_refund(
        self,
        reference: str,
        order_id: str,
        lines: Sequence[tuple[str, Sequence[str]]],
        reason: str | None,
    ) -> RefundRecord:
        """`lines` are (the order line's id, ICCIDs to return)."""
        ...

    async def get_refund(self, refund_id_or_reference: str) -> RefundRecord: ...

    async def cancel_refund(self, refund_id: str) -> RefundRecord: ...


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


@runtime_checkable
class ShareLinkGateway(Protocol):
    """What a provider with its own share page offers."""

    async def share_link(self, iccid: str) -> ShareLink: ...
