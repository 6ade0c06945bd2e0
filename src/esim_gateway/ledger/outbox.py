"""The outbound webhook outbox: endpoints, messages and their deliveries.

A message is written by `enqueue` inside the caller's transaction (the order update that
moved the state, or the once-only mark of `emit`), together with one delivery row per
endpoint subscribed to its event at that moment. Nothing is sent here: the dispatcher
(`outbound.dispatcher`, above the ledger) claims due deliveries and records each attempt.

Order per subject: a delivery is only due when no earlier delivery of the same subject
to the same endpoint is still pending (in flight counts as pending), so a receiver sees
`order.completed` before `order.refunded` of the same order, across replicas.

Retention: `prune` deletes deliveries delivered before a cutoff, a small batch at a time,
and then the messages left with no delivery. FAILED and PENDING deliveries stay until
they are delivered (an operator may still replay them); once-only marks are never pruned,
or an event could fire twice.
"""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, delete, exists, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from esim_gateway.domain import ORDER_EVENTS, ProviderName, envelope, order_global_id
from esim_gateway.ledger.store import Sessions, fetch_all, fetch_by_id, utc, utc_now, utc_or_none
from esim_gateway.ledger.tables import (
    EsimRow,
    OrderRow,
    OutboundDeliveryRow,
    OutboundEndpointRow,
    OutboundMarkRow,
    OutboundMessageRow,
)

__all__ = [
    "DeliveryPage",
    "DeliveryRecord",
    "DeliveryStatus",
    "DueDelivery",
    "EndpointRecord",
    "OutboundStore",
    "decode_delivery_cursor",
    "encode_delivery_cursor",
    "enqueue",
    "enqueue_order_event",
]

#: how long the secret before a rotation keeps being signed with
ROTATION_GRACE = timedelta(hours=24)


class DeliveryStatus(enum.StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    #: every retry of the schedule failed; `redeliver` queues it again
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    #: never logged; shown to the operator once, at creation and rotation
    secret: str

    def __repr__(self) -> str:
        return f"EndpointRecord(id={self.id!r}, url={self.url!r}, enabled={self.enabled})"

    @classmethod
    def from_row(cls, row: OutboundEndpointRow) -> EndpointRecord:
        return cls(
            id=row.id,
            url=row.url,
            events=tuple(row.events),
            description=row.description,
            enabled=row.enabled,
            created_by=row.created_by,
            created_at=utc(row.created_at),
            updated_at=utc(row.updated_at),
            secret=row.secret,
        )


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    message_id: str
    event_type: str
    subject: str
    endpoint_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]

    @classmethod
    def from_rows(cls, row: OutboundDeliveryRow, message: OutboundMessageRow) -> DeliveryRecord:
        return cls(
            id=row.id,
            message_id=row.message_id,
            event_type=message.event_type,
            subject=row.subject,
            endpoint_id=row.endpoint_id,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            next_attempt_at=utc_or_none(row.next_attempt_at),
            last_attempt_at=utc_or_none(row.last_attempt_at),
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            delivered_at=utc_or_none(row.delivered_at),
            created_at=utc(row.created_at),
            payload=dict(message.payload),
        )


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    """Deliveries newest first, and whether older ones follow the last."""

    records: tuple[DeliveryRecord, ...]
    has_next: bool


def encode_delivery_cursor(record: DeliveryRecord) -> str:
    return base64.urlsafe_b64encode(f"delivery|{record.id}".encode()).decode()


def decode_delivery_cursor(cursor: str) -> int:
    """Raises ValueError on anything that is not one of our cursors."""
    try:
        kind, _, number = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("malformed cursor") from exc
    if kind != "delivery" or not number.isdigit():
        raise ValueError("malformed cursor")
    return int(number)


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery with what it takes to send it."""

    id: int
    message_id: str
    payload: dict[str, Any]
    url: str
    secrets: tuple[str, ...]
    round_attempts: int
    endpoint_id: str
    #: the claim: until then no other worker takes it (`OutboundStore.renew_claim`)
    leased_until: datetime


async def enqueue(
    session: AsyncSession, event_type: str, subject: str, data: dict[str, Any], at: datetime
) -> str | None:
    """Write a message and its deliveries in `session`'s transaction. Returns the message
    id, or None when no enabled endpoint subscribes to `event_type` (nothing is written)."""
    endpoints = [
        row
        for row in (
            await session.scalars(
                select(OutboundEndpointRow).where(OutboundEndpointRow.enabled.is_(True))
            )
        ).all()
        if event_type in row.events
    ]
    if not endpoints:
        return None
    message_id = "msg_" + uuid.uuid4().hex
    session.add(
        OutboundMessageRow(
            id=message_id,
            event_type=event_type,
            subject=subject,
            payload=envelope(event_type, at, data),
            created_at=at,
        )
    )
    await session.flush()  # the deliveries reference it
    session.add_all(
        OutboundDeliveryRow(
            message_id=message_id,
            endpoint_id=endpoint.id,
            subject=subject,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            round_attempts=0,
            next_attempt_at=at,
            created_at=at,
        )
        for endpoint in sorted(endpoints, key=lambda e: e.id)
    )
    return message_id


async def enqueue_order_event(
    session: AsyncSession, row: OrderRow, previous_state: str, at: datetime
) -> str | None:
    """The order event for a state change of `row`, if that change is one we announce."""
    event_type = ORDER_EVENTS.get(row.state)
    if event_type is None or row.state == previous_state:
        return None
    total = (
        {"amount": str(row.total_amount), "currency": row.currency}
        if row.total_amount is not None and row.currency
        else None
    )
    data: dict[str, Any] = {
        "orderId": order_global_id(row.id),
        "kind": row.kind,
        "owner": row.owner,
        "provider": row.provider.upper(),
        "reference": row.reference,
        "providerOrderId": row.provider_order_id,
        "status": row.state,
        "previousStatus": previous_state,
        "providerStatus": row.provider_status,
        "total": total,
        "failureReason": row.failure_reason,
    }
    return await enqueue(session, event_type, f"order:{row.id}", data, at)


def _due_query(
    now: datetime, limit: int, per_endpoint: int | None, in_flight: Mapping[str, int] | None
) -> Select[OutboundDeliveryRow, OutboundMessageRow, OutboundEndpointRow]:
    delivery = OutboundDeliveryRow
    earlier = aliased(OutboundDeliveryRow)
    blocked = exists().where(
        earlier.endpoint_id == delivery.endpoint_id,
        earlier.subject == delivery.subject,
        earlier.id < delivery.id,
        earlier.status == DeliveryStatus.PENDING.value,
    )
    due = (
        delivery.status == DeliveryStatus.PENDING.value,
        delivery.next_attempt_at <= now,
        OutboundEndpointRow.enabled.is_(True),
        ~blocked,
    )
    query = (
        select(delivery, OutboundMessageRow, OutboundEndpointRow)
        .join(OutboundMessageRow, OutboundMessageRow.id == delivery.message_id)
        .join(OutboundEndpointRow, OutboundEndpointRow.id == delivery.endpoint_id)
    )
    if per_endpoint is None:
        return query.where(*due).order_by(delivery.id).limit(limit)
    busy = {endpoint: count for endpoint, count in (in_flight or {}).items() if count > 0}
    full = [endpoint for endpoint, count in busy.items() if count >= per_endpoint]
    ranked = (
        select(
            delivery.id.label("id"),
            delivery.endpoint_id.label("endpoint_id"),
            func.row_number()
            .over(partition_by=delivery.endpoint_id, order_by=delivery.id)
            .label("rank"),
        )
        .join(OutboundEndpointRow, OutboundEndpointRow.id == delivery.endpoint_id)
        .where(*due, delivery.endpoint_id.not_in(full))
        .subquery()
    )
    partly = {endpoint: per_endpoint - count for endpoint, count in busy.items()}
    slots: ColumnElement[int] = (
        case(partly, value=ranked.c.endpoint_id, else_=per_endpoint)
        if partly
        else literal(per_endpoint)
    )
    return (
        query.join(ranked, ranked.c.id == delivery.id)
        .where(ranked.c.rank <= slots)
        .order_by(delivery.id)
        .limit(limit)
    )


class OutboundStore:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    # -- endpoints ------------------------------------------------------------------

    async def create_endpoint(
        self,
        url: str,
        events: tuple[str, ...],
        description: str | None,
        created_by: str,
        *,
        secret: str,
    ) -> EndpointRecord:
        now = utc_now()
        row = OutboundEndpointRow(
            id=str(uuid.uuid4()),
            url=url,
            events=list(events),
            description=description,
            secret=secret,
            enabled=True,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return EndpointRecord.from_row(row)

    async def endpoints(self) -> list[EndpointRecord]:
        return await fetch_all(
            self._sessions,
            select(OutboundEndpointRow).order_by(
                OutboundEndpointRow.created_at, OutboundEndpointRow.id
            ),
            EndpointRecord.from_row,
        )

    async def endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        return await fetch_by_id(
            self._sessions, OutboundEndpointRow, endpoint_id, EndpointRecord.from_row
        )

    async def set_enabled(self, endpoint_id: str, enabled: bool) -> EndpointRecord | None:
        async with self._sessions.begin() as session:
            row = await session.get(OutboundEndpointRow, endpoint_id, with_for_update=True)
            if row is None:
                return None
            row.enabled = enabled
            row.updated_at = utc_now()
            return EndpointRecord.from_row(row)

    async def rotate_secret(self, endpoint_id: str, secret: str) -> EndpointRecord | None:
        """`secret` in place of the current one, which is still signed with for
        `ROTATION_GRACE`, so a receiver can switch without losing a delivery."""
        now = utc_now()
        async with self._sessions.begin() as session:
            row = await session.get(OutboundEndpointRow, endpoint_id, with_for_update=True)
            if row is None:
                return None
            row.previous_secret = row.secret
            row.previous_expires = now + ROTATION_GRACE
            row.secret = secret
            row.updated_at = now
            return EndpointRecord.from_row(row)

    # -- emitting outside an order update ---------------------------------------------

    async def emit(
        self, event_type: str, subject: str, data: dict[str, Any], *, once: str | None = None
    ) -> str | None:
        """Write a message in its own transaction. With `once`, at most one message per
        (subject, once) is ever written: the mark and the message commit together."""
        now = utc_now()
        try:
            async with self._sessions.begin() as session:
                if once is not None:
                    session.add(OutboundMarkRow(subject=subject, mark=once, created_at=now))
                    await session.flush()
                return await enqueue(session, event_type, subject, data, now)
        except IntegrityError:
            return None

    async def claim_mark(self, subject: str, mark: str) -> bool:
        """Write a mark alone; False when it was there already (someone else's turn)."""
        try:
            async with self._sessions.begin() as session:
                session.add(OutboundMarkRow(subject=subject, mark=mark, created_at=utc_now()))
            return True
        except IntegrityError:
            return False

    async def marks(self, subject: str) -> set[str]:
        async with self._sessions() as session:
            return set(
                (
                    await session.scalars(
                        select(OutboundMarkRow.mark).where(OutboundMarkRow.subject == subject)
                    )
                ).all()
            )

    async def subscribed(self, event_types: tuple[str, ...]) -> bool:
        """Whether an enabled endpoint listens to any of `event_types`."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(OutboundEndpointRow.events).where(OutboundEndpointRow.enabled.is_(True))
                )
            ).all()
            return any(event in events for events in rows for event in event_types)

    async def watched_esims(self, *, limit: int) -> list[tuple[ProviderName, str, str, str]]:
        """(provider, ICCID, order id, owner) of the newest eSIMs of completed orders."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(EsimRow.provider, EsimRow.iccid, EsimRow.order_id, EsimRow.owner)
                    .join(OrderRow, OrderRow.id == EsimRow.order_id)
                    .where(OrderRow.state == "COMPLETED")
                    .order_by(EsimRow.created_at.desc())
                    .limit(limit)
                )
            ).all()
            return [(ProviderName(p), iccid, order_id, owner) for p, iccid, order_id, owner in rows]

    # -- delivering -----------------------------------------------------------------

    async def claim_due(
        self,
        now: datetime,
        *,
        limit: int,
        lease: float,
        per_endpoint: int | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[DueDelivery]:
        """Deliveries due now whose earlier siblings (same endpoint and subject) are done,
        each leased for `lease` seconds by moving its next attempt past the lease: a
        worker that dies mid-delivery leaves it due again afterwards.

        With `per_endpoint`, at most that many per endpoint less what the caller has
        `in_flight` to it already, oldest first: a backlog for one endpoint does not
        fill the claim and hold up the others."""
        until = now + timedelta(seconds=lease)
        claimed: list[DueDelivery] = []
        async with self._sessions.begin() as session:
            rows = (await session.execute(_due_query(now, limit, per_endpoint, in_flight))).all()
            for row, message, endpoint in rows:
                # compare-and-set: another replica may have read the same candidate
                result = await session.execute(
                    update(OutboundDeliveryRow)
                    .where(
                        OutboundDeliveryRow.id == row.id,
                        OutboundDeliveryRow.status == DeliveryStatus.PENDING.value,
                        OutboundDeliveryRow.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=until)
                    .execution_options(synchronize_session=False)
                )
                if getattr(result, "rowcount", 0) != 1:
                    continue
                secrets = [endpoint.secret]
                expires = utc_or_none(endpoint.previous_expires)
                if endpoint.previous_secret and expires is not None and expires > now:
                    secrets.append(endpoint.previous_secret)
                claimed.append(
                    DueDelivery(
                        id=row.id,
                        message_id=message.id,
                        payload=dict(message.payload),
                        url=endpoint.url,
                        secrets=tuple(secrets),
                        round_attempts=row.round_attempts,
                        endpoint_id=endpoint.id,
                        leased_until=until,
                    )
                )
        return claimed

    async def renew_claim(self, delivery_id: int, leased_until: datetime, until: datetime) -> bool:
        """Extend a claim still held (`leased_until` as `claim_due` or the last renewal
        set it) to `until`; False when it is not held any more (expired and taken by
        another worker, or recorded)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(OutboundDeliveryRow)
                .where(
                    OutboundDeliveryRow.id == delivery_id,
                    OutboundDeliveryRow.status == DeliveryStatus.PENDING.value,
                    OutboundDeliveryRow.next_attempt_at == leased_until,
                )
                .values(next_attempt_at=until)
                .execution_options(synchronize_session=False)
            )
            return getattr(result, "rowcount", 0) == 1

    async def record_attempt(
        self,
        delivery_id: int,
        at: datetime,
        *,
        delivered: bool,
        status_code: int | None,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        """The outcome of one attempt: delivered, retried at `retry_at`, or (failed with
        no `retry_at`) given up."""
        if delivered:
            status, next_attempt = DeliveryStatus.DELIVERED, None
        elif retry_at is not None:
            status, next_attempt = DeliveryStatus.PENDING, retry_at
        else:
            status, next_attempt = DeliveryStatus.FAILED, None
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboundDeliveryRow)
                .where(OutboundDeliveryRow.id == delivery_id)
                .values(
                    status=status.value,
                    attempts=OutboundDeliveryRow.attempts + 1,
                    round_attempts=OutboundDeliveryRow.round_attempts + 1,
                    last_attempt_at=at,
                    last_status_code=status_code,
                    last_error=error[:300] if error else None,
                    next_attempt_at=next_attempt,
                    delivered_at=at if delivered else None,
                )
            )

    # -- reading and replaying ---------------------------------------------------------

    async def deliveries(
        self,
        *,
        endpoint_id: str | None = None,
        status: DeliveryStatus | None = None,
        subject: str | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> DeliveryPage:
        """Newest first; `after` is the cursor of the last delivery of the previous page
        (ValueError when it is not one of ours)."""
        query = select(OutboundDeliveryRow, OutboundMessageRow).join(
            OutboundMessageRow, OutboundMessageRow.id == OutboundDeliveryRow.message_id
        )
        if endpoint_id is not None:
            query = query.where(OutboundDeliveryRow.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(OutboundDeliveryRow.status == status.value)
        if subject is not None:
            query = query.where(OutboundDeliveryRow.subject == subject)
        if after is not None:
            query = query.where(OutboundDeliveryRow.id < decode_delivery_cursor(after))
        query = query.order_by(OutboundDeliveryRow.id.desc()).limit(first + 1)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            records = tuple(DeliveryRecord.from_rows(row, message) for row, message in rows)
        return DeliveryPage(records[:first], len(records) > first)

    async def pending_count(self) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OutboundDeliveryRow)
                .where(OutboundDeliveryRow.status == DeliveryStatus.PENDING.value)
            )
            return int(count or 0)

    async def delivery(self, delivery_id: int) -> DeliveryRecord | None:
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(OutboundDeliveryRow, OutboundMessageRow)
                    .join(
                        OutboundMessageRow, OutboundMessageRow.id == OutboundDeliveryRow.message_id
                    )
                    .where(OutboundDeliveryRow.id == delivery_id)
                )
            ).first()
            return DeliveryRecord.from_rows(*found) if found is not None else None

    async def redeliver(self, delivery_id: int) -> DeliveryRecord | None:
        """Queue a delivery again now, with the same `webhook-id` (receivers dedupe on
        it) and a fresh retry schedule. A pending one is just made due now."""
        now = utc_now()
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboundDeliveryRow)
                .where(OutboundDeliveryRow.id == delivery_id)
                .values(
                    status=DeliveryStatus.PENDING.value,
                    round_attempts=0,
                    next_attempt_at=now,
                    delivered_at=None,
                )
            )
        return await self.delivery(delivery_id)

    async def prune(self, delivered_before: datetime, *, limit: int) -> int:
        """Delete up to `limit` deliveries delivered before `delivered_before`, oldest
        first, and their messages once no delivery of theirs is left. Returns how many
        deliveries went: `limit` means there may be more."""
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    select(OutboundDeliveryRow.id, OutboundDeliveryRow.message_id)
                    .where(
                        OutboundDeliveryRow.status == DeliveryStatus.DELIVERED.value,
                        OutboundDeliveryRow.delivered_at < delivered_before,
                    )
                    .order_by(OutboundDeliveryRow.id)
                    .limit(limit)
                )
            ).all()
            if not rows:
                return 0
            await session.execute(
                delete(OutboundDeliveryRow).where(OutboundDeliveryRow.id.in_([r[0] for r in rows]))
            )
            remaining = select(OutboundDeliveryRow.id).where(
                OutboundDeliveryRow.message_id == OutboundMessageRow.id
            )
            await session.execute(
                delete(OutboundMessageRow).where(
                    OutboundMessageRow.id.in_({r[1] for r in rows}), ~remaining.exists()
                )
            )
            return len(rows)
