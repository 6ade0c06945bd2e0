"""Provider events: the webhook deliveries received from each provider.

Each is stored once under (provider, event key) before it is applied, so a replayed
delivery is recognised, and one that names an order we have not recorded yet waits
("unmatched") and is applied again later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.exc import IntegrityError

from esim_gateway.domain import ProviderName
from esim_gateway.ledger.store import Sessions, fetch_all, fetch_first, utc_now
from esim_gateway.ledger.tables import WebhookEventRow

__all__ = ["EventStore", "StoredEvent"]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    provider: ProviderName
    event_key: str
    event_type: str
    reference: str | None
    iccid: str | None
    body: dict[str, Any]
    outcome: str | None = None

    @classmethod
    def from_row(cls, row: WebhookEventRow) -> StoredEvent:
        return cls(
            ProviderName(row.provider),
            row.event_key,
            row.event_type,
            row.reference,
            row.iccid,
            dict(row.body),
            row.outcome,
        )


def _keyed(
    provider: ProviderName, event_key: str
) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The conditions that pick one delivery: its provider and its key."""
    return (WebhookEventRow.provider == provider.value, WebhookEventRow.event_key == event_key)


class EventStore:
    """Webhook deliveries received (table `webhook_events`)."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def store(self, event: StoredEvent) -> bool:
        """Persist a delivery; False when the same event was stored before (a replay)."""
        try:
            async with self._sessions.begin() as session:
                session.add(
                    WebhookEventRow(
                        provider=event.provider.value,
                        event_key=event.event_key,
                        event_type=event.event_type,
                        reference=event.reference,
                        iccid=event.iccid,
                        body=event.body,
                        received_at=utc_now(),
                    )
                )
            return True
        except IntegrityError:
            return False

    async def to_process(self, *, limit: int = 100) -> list[StoredEvent]:
        """Deliveries not applied yet: never processed, or waiting for their order."""
        return await fetch_all(
            self._sessions,
            select(WebhookEventRow)
            .where(
                or_(
                    WebhookEventRow.processed_at.is_(None),
                    WebhookEventRow.outcome == "unmatched",
                )
            )
            .order_by(WebhookEventRow.id)
            .limit(limit),
            StoredEvent.from_row,
        )

    async def get(self, provider: ProviderName, event_key: str) -> StoredEvent | None:
        return await fetch_first(
            self._sessions,
            select(WebhookEventRow).where(*_keyed(provider, event_key)),
            StoredEvent.from_row,
        )

    async def mark(self, provider: ProviderName, event_key: str, outcome: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(WebhookEventRow)
                .where(*_keyed(provider, event_key))
                .values(processed_at=utc_now(), outcome=outcome[:200])
            )

    async def latest(
        self, provider: ProviderName, event_types: Sequence[str]
    ) -> StoredEvent | None:
        return await fetch_first(
            self._sessions,
            select(WebhookEventRow)
            .where(
                WebhookEventRow.provider == provider.value,
                WebhookEventRow.event_type.in_(list(event_types)),
            )
            .order_by(WebhookEventRow.id.desc())
            .limit(1),
            StoredEvent.from_row,
        )
