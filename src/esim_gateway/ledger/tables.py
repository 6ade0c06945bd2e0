"""The ledger's tables: every order the gateway places, written before the provider is called."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "CatalogSnapshotRow",
    "DuplicatePurchaseRow",
    "EsimRow",
    "InstallLinkRow",
    "OrderEventRow",
    "OrderRow",
    "OutboundDeliveryRow",
    "OutboundEndpointRow",
    "OutboundMarkRow",
    "OutboundMessageRow",
    "QuoteRow",
    "WebhookEventRow",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("owner", "idempotency_key", name="uq_orders_owner_key"),
        UniqueConstraint("provider", "reference", name="uq_orders_provider_reference"),
        Index("ix_orders_owner_created", "owner", "created_at"),
        Index("ix_orders_step", "step"),
        Index("ix_orders_watch_until", "watch_until"),
        Index("ix_orders_step_scheduled", "step", "scheduled_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # order | topup
    provider: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    reference: Mapped[str] = mapped_column(String(64))
    provider_order_id: Mapped[str | None] = mapped_column(String(100), default=None)
    state: Mapped[str] = mapped_column(String(32))
    provider_status: Mapped[str | None] = mapped_column(String(64), default=None)
    #: where the purchase stands on our side; see `ledger.orders.Step`
    step: Mapped[str] = mapped_column(String(32))
    total_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), default=None)
    currency: Mapped[str | None] = mapped_column(String(8), default=None)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    #: the provider's refusal, kept so a replay with the same key answers the same error
    error_code: Mapped[str | None] = mapped_column(String(100), default=None)
    error_status: Mapped[int | None] = mapped_column(Integer, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: not before then: the next lookup of an unsettled order, or the next watch pass
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: when the purchase was last sent (its outcome may still be unknown)
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: lookups by reference that found nothing since the last send
    lookups: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: when the provider refused a resend because it has the reference: it was placed
    reference_taken_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    #: the reconciler keeps looking for late or duplicate purchases until then
    watch_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: a scheduled order is placed at this time (step SCHEDULED until then)
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrderEventRow(Base):
    """Status history: one row per change of state or step."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    provider_status: Mapped[str | None] = mapped_column(String(64), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)


class DuplicatePurchaseRow(Base):
    """A second provider order found under one order's reference: bought twice."""

    __tablename__ = "duplicate_purchases"
    __table_args__ = (
        UniqueConstraint(
            "order_id", "provider_order_id", name="uq_duplicate_purchases_order_provider"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    provider_order_id: Mapped[str] = mapped_column(String(100))
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: what was done about it: cancelled | cancel failed: ... | reported
    action: Mapped[str] = mapped_column(String(200))


class EsimRow(Base):
    """Which order (and so which owner) an ICCID belongs to."""

    __tablename__ = "esims"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    iccid: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookEventRow(Base):
    """Every accepted webhook delivery, stored before it is applied (at most once per key)."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_key", name="uq_webhook_events_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    #: the provider's event id plus a digest of the content: a redelivery maps to the same key
    event_key: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    iccid: Mapped[str | None] = mapped_column(String(32), default=None)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: applied | unmatched (no such order yet) | ignored | failed: <reason>
    outcome: Mapped[str | None] = mapped_column(String(200), default=None)


class CatalogSnapshotRow(Base):
    """The last good catalog of a provider, so a restart or another replica starts warm."""

    __tablename__ = "catalog_snapshots"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    packages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class QuoteRow(Base):
    """A firm price given by `quoteOrder`: `createOrder` with its id refuses another price."""

    __tablename__ = "quotes"
    __table_args__ = (Index("ix_quotes_owner_created", "owner", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(32))
    #: the order payload quoted (items, startDate), compared with the order's
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: the unit price of each package id, as quoted: {packageId: {amount, currency}}
    prices: Mapped[dict[str, Any]] = mapped_column(JSON)
    total_amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: the order this quote backs: set with the order's insert, so a quote buys once
    order_id: Mapped[str | None] = mapped_column(String(36), default=None)


class InstallLinkRow(Base):
    """A shareable install page's capability: only the SHA-256 of its token is stored."""

    __tablename__ = "install_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    iccid: Mapped[str] = mapped_column(String(32), index=True)
    #: the eSIM's owner (the page shows that owner's eSIM), and who made the link
    owner: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class OutboundEndpointRow(Base):
    """A receiver an operator registered for our outbound webhooks."""

    __tablename__ = "outbound_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(200), default=None)
    #: Standard Webhooks secret (`whsec_` + base64); needed in clear to sign
    secret: Mapped[str] = mapped_column(String(100))
    #: the secret before the last rotation, still signed with until `previous_expires`
    previous_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    previous_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboundMessageRow(Base):
    """The outbox: one row per event, written in the transaction that changed the state."""

    __tablename__ = "outbound_messages"

    #: the `webhook-id` receivers deduplicate on: the same for every attempt and replay
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    #: what the event is about (an order id, an ICCID, a provider): deliveries of one
    #: subject to one endpoint go out in the order their messages were written
    subject: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboundDeliveryRow(Base):
    """One message to one endpoint: its state, attempts and next try."""

    __tablename__ = "outbound_deliveries"
    __table_args__ = (
        Index("ix_outbound_deliveries_due", "status", "next_attempt_at"),
        Index("ix_outbound_deliveries_sequence", "endpoint_id", "subject", "id"),
        # retention finds what was delivered before a cutoff
        Index("ix_outbound_deliveries_delivered", "status", "delivered_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("outbound_messages.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("outbound_endpoints.id", ondelete="CASCADE")
    )
    subject: Mapped[str] = mapped_column(String(100))
    #: PENDING | DELIVERED | FAILED (retries exhausted)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: attempts since the delivery was (re)queued: indexes the backoff schedule
    round_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboundMarkRow(Base):
    """Events that must fire once per subject (a usage threshold, an expiry warning, a
    provider balance alert): inserting the mark is what makes the second emit a no-op."""

    __tablename__ = "outbound_marks"

    subject: Mapped[str] = mapped_column(String(100), primary_key=True)
    mark: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
