"""What the rest of the gateway knows about a provider.

Each provider package has two layers:

* a wire *client* (`RoamifyClient`, `SimplifyTripClient`) handed its `httpx.AsyncClient`:
  one typed method per documented endpoint, returning frozen wire models;
* a *gateway* (`RoamifyGateway`, `SimplifyTripGateway`) implementing `ProviderGateway`
  below on top of that client, in provider-neutral terms.

Resolvers, loaders and the ledger only ever see the neutral records of
`esim_gateway.domain`; this module holds what is the adapters' own: the operations a
gateway offers and the capability table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

from esim_gateway.domain import (
    Balance,
    CatalogPackage,
    EsimProfile,
    EsimUsage,
    Money,
    PlaceOrder,
    ProviderName,
    ProviderOrder,
    RefundRecord,
    ShareLink,
    TopupRequest,
)

__all__ = ["CancelRule", "Capabilities", "ProviderGateway", "RefundGateway", "ShareLinkGateway"]


@dataclass(frozen=True, slots=True)
class CancelRule:
    """Which placed orders a provider cancels, as its documentation states it: the
    gateway refuses the others itself, saying why, instead of calling the provider only
    to pass its refusal on."""

    #: product types it cancels (`CatalogPackage.product_type`, compared in upper case)
    product_types: frozenset[str]
    #: the provider's order statuses (raw, upper case) in which it still cancels
    statuses: frozenset[str]
    #: the product type a top-up buys there (a top-up has no catalog package)
    topup_product_type: str

    def cancels_product(self, product_type: str) -> bool:
        return product_type.upper() in self.product_types

    def cancels_status(self, provider_status: str | None) -> bool:
        return (provider_status or "").strip().upper() in self.statuses


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
    #: which orders `cancel` applies to (set where `cancel` is)
    cancel_rule: CancelRule | None = None

    def supports(self, operation: str) -> bool:
        return bool(getattr(self, operation))


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


@runtime_checkable
class ShareLinkGateway(Protocol):
    """What a provider with its own share page offers."""

    async def share_link(self, iccid: str) -> ShareLink: ...
