"""Quotes, and the orders scheduled for later at a quoted price.

A quote is a firm price given to one owner until it expires; the order placed with it
takes it with its insert (`OrderStore.claim`), so a quote buys once. A scheduled order
waits at step SCHEDULED until the scheduler moves it, once, to NEW (or refuses it when
its quoted price no longer holds), or it is cancelled before that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from esim_gateway.domain import Money, OrderState, ProviderName
from esim_gateway.ledger.orders import OrderRecord, OrderStore, Step
from esim_gateway.ledger.store import Sessions, fetch_all, fetch_by_id, utc, utc_now
from esim_gateway.ledger.tables import OrderRow, QuoteRow

__all__ = ["QuoteRecord", "QuoteStore"]


@dataclass(frozen=True, slots=True)
class QuoteRecord:
    """A price given to `owner` for `request`, firm until `expires_at`."""

    id: str
    owner: str
    provider: ProviderName
    request: dict[str, Any]
    #: the quoted unit price of each package id
    unit_prices: dict[str, Money]
    total: Money
    created_at: datetime
    expires_at: datetime
    #: the order that took this quote, if one did
    order_id: str | None = None

    @classmethod
    def from_row(cls, row: QuoteRow) -> QuoteRecord:
        return cls(
            id=row.id,
            owner=row.owner,
            provider=ProviderName(row.provider),
            request=dict(row.request),
            unit_prices={
                package_id: Money(Decimal(price["amount"]), price["currency"])
                for package_id, price in row.prices.items()
            },
            total=Money(row.total_amount, row.currency),
            created_at=utc(row.created_at),
            expires_at=utc(row.expires_at),
            order_id=row.order_id,
        )


class QuoteStore:
    """Quotes (table `quotes`) and the scheduled orders' moves, made through `orders` so
    that each commits with its history, its outbound event and the read cache."""

    def __init__(self, sessions: Sessions, orders: OrderStore) -> None:
        self._sessions = sessions
        self._orders = orders

    # -- quotes -------------------------------------------------------------------------

    async def save(self, quote: QuoteRecord) -> None:
        async with self._sessions.begin() as session:
            session.add(
                QuoteRow(
                    id=quote.id,
                    owner=quote.owner,
                    provider=quote.provider.value,
                    request=quote.request,
                    prices={
                        package_id: {"amount": str(price.amount), "currency": price.currency}
                        for package_id, price in quote.unit_prices.items()
                    },
                    total_amount=quote.total.amount,
                    currency=quote.total.currency,
                    created_at=quote.created_at,
                    expires_at=quote.expires_at,
                )
            )

    async def get(self, quote_id: str) -> QuoteRecord | None:
        return await fetch_by_id(self._sessions, QuoteRow, quote_id, QuoteRecord.from_row)

    # -- scheduled orders ---------------------------------------------------------------

    async def due_scheduled(
        self, *, now: datetime | None = None, limit: int = 50
    ) -> list[OrderRecord]:
        """Scheduled orders whose time has come by `now`, earliest first (not claimed)."""
        return await fetch_all(
            self._sessions,
            select(OrderRow)
            .where(
                OrderRow.step == Step.SCHEDULED.value,
                OrderRow.scheduled_at <= (now or utc_now()),
            )
            .order_by(OrderRow.scheduled_at)
            .limit(limit),
            OrderRecord.from_row,
        )

    async def claim_scheduled(
        self, order_id: str, holder: str, *, lease: float = 120.0
    ) -> OrderRecord | None:
        """Move a scheduled order to NEW, leased to `holder`. Of every replica trying,
        exactly one gets the record; from then on it is an ordinary purchase (lease,
        lookup before any resend, the reconciler if this replica dies)."""
        return await self._orders.move_from(
            order_id,
            Step.SCHEDULED,
            note="scheduled time reached: placing",
            step=Step.NEW.value,
            state=OrderState.PENDING.value,
            lease_owner=holder,
            lease_expires=utc_now() + timedelta(seconds=lease),
        )

    async def refuse_scheduled(
        self, order_id: str, reason: str, error_code: str
    ) -> OrderRecord | None:
        """Fail a scheduled order without placing it (its quoted price no longer holds)."""
        return await self._orders.move_from(
            order_id,
            Step.SCHEDULED,
            note=f"not placed: {reason}",
            step=Step.REJECTED.value,
            state=OrderState.FAILED.value,
            failure_reason=reason,
            error_code=error_code,
        )

    async def cancel_scheduled(self, order_id: str, note: str) -> OrderRecord | None:
        """Cancel an order still waiting for its time; None when it is not (any more)."""
        return await self._orders.move_from(
            order_id,
            Step.SCHEDULED,
            note=note,
            step=Step.SETTLED.value,
            state=OrderState.CANCELLED.value,
        )
