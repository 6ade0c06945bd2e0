"""The ledger: orders we placed, their idempotency keys, references, steps and history.

Exactly-once rests on three facts kept here:

* a row (owner, idempotency key) -> one upstream `reference`, written *before* the
  provider is called, so every retry reuses the same reference and body;
* `step` says how far the purchase got on our side (see `Step`), so an interrupted
  purchase is resumed by looking it up by reference, never by buying again;
* a short lease per order, so one worker (request, follower or reconciler, in any
  replica) drives an order at a time.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from esim_gateway.domain import Money, OrderState, ProviderName
from esim_gateway.errors import QuoteUsed
from esim_gateway.ledger.outbox import OutboundStore, enqueue_order_event
from esim_gateway.ledger.tables import (
    CatalogSnapshotRow,
    DuplicatePurchaseRow,
    EsimRow,
    OrderEventRow,
    OrderRow,
    QuoteRow,
    WebhookEventRow,
)

__all__ = [
    "DuplicatePurchase",
    "Ledger",
    "NewOrder",
    "OrderEvent",
    "OrderRecord",
    "Page",
    "QuoteRecord",
    "Step",
    "StoredEvent",
    "derive_reference",
    "request_hash",
]


class Step(enum.StrEnum):
    #: written for a later time (`scheduled_at`); nothing sent; the scheduler moves it to
    #: NEW once, atomically, when it is due, or it is cancelled before that
    SCHEDULED = "SCHEDULED"
    #: written; nothing sent yet
    NEW = "NEW"
    #: the purchase request may have reached the provider: outcome unknown until looked up
    SUBMITTING = "SUBMITTING"
    #: the provider confirmed the order (its id is known); eSIMs may not exist yet
    SUBMITTED = "SUBMITTED"
    #: terminal: the order reached a final state at the provider
    SETTLED = "SETTLED"
    #: terminal: the provider refused the purchase; nothing was bought
    REJECTED = "REJECTED"
    #: terminal: every send's outcome stayed unknown, and the provider showed nothing under
    #: the reference through its quiet period; still watched, and revived if found
    ABANDONED = "ABANDONED"

    @property
    def is_terminal(self) -> bool:
        return self in (Step.SETTLED, Step.REJECTED, Step.ABANDONED)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return _utc(value) if value is not None else None


def _now() -> datetime:
    return datetime.now(UTC)


def request_hash(payload: Any) -> str:
    import orjson

    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def derive_reference(provider: ProviderName, owner: str, idempotency_key: str) -> str:
    """The reference sent upstream: a pure function of (provider, owner, key).

    Deterministic so that a lost ledger write can never mint a second reference for the
    same purchase; short and URL-safe so both providers accept it.
    """
    digest = hashlib.sha256(f"{provider.value}\x00{owner}\x00{idempotency_key}".encode())
    return "eg-" + digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: str
    owner: str
    kind: str
    provider: ProviderName
    idempotency_key: str
    request_hash: str
    request: dict[str, Any]
    reference: str
    provider_order_id: str | None
    state: OrderState
    provider_status: str | None
    step: Step
    total_amount: Decimal | None
    currency: str | None
    failure_reason: str | None
    error_code: str | None
    error_status: int | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    last_sent_at: datetime | None = None
    lookups: int = 0
    reference_taken_at: datetime | None = None
    watch_until: datetime | None = None
    next_check_at: datetime | None = None
    scheduled_at: datetime | None = None

    @classmethod
    def from_mapping(cls, m: Mapping[Any, Any]) -> OrderRecord:
        return cls(
            id=m["id"],
            owner=m["owner"],
            kind=m["kind"],
            provider=ProviderName(m["provider"]),
            idempotency_key=m["idempotency_key"],
            request_hash=m["request_hash"],
            request=dict(m["request"]),
            reference=m["reference"],
            provider_order_id=m["provider_order_id"],
            state=OrderState(m["state"]),
            provider_status=m["provider_status"],
            step=Step(m["step"]),
            total_amount=m["total_amount"],
            currency=m["currency"],
            failure_reason=m["failure_reason"],
            error_code=m["error_code"],
            error_status=m["error_status"],
            attempts=m["attempts"],
            created_at=_utc(m["created_at"]),
            updated_at=_utc(m["updated_at"]),
            last_sent_at=_utc_or_none(m["last_sent_at"]),
            lookups=m["lookups"] or 0,
            reference_taken_at=_utc_or_none(m["reference_taken_at"]),
            watch_until=_utc_or_none(m["watch_until"]),
            next_check_at=_utc_or_none(m["next_check_at"]),
            scheduled_at=_utc(m["scheduled_at"]) if m.get("scheduled_at") else None,
        )

    @classmethod
    def from_row(cls, row: OrderRow) -> OrderRecord:
        return cls(
            id=row.id,
            owner=row.owner,
            kind=row.kind,
            provider=ProviderName(row.provider),
            idempotency_key=row.idempotency_key,
            request_hash=row.request_hash,
            request=dict(row.request),
            reference=row.reference,
            provider_order_id=row.provider_order_id,
            state=OrderState(row.state),
            provider_status=row.provider_status,
            step=Step(row.step),
            total_amount=row.total_amount,
            currency=row.currency,
            failure_reason=row.failure_reason,
            error_code=row.error_code,
            error_status=row.error_status,
            attempts=row.attempts,
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
            last_sent_at=_utc_or_none(row.last_sent_at),
            lookups=row.lookups or 0,
            reference_taken_at=_utc_or_none(row.reference_taken_at),
            watch_until=_utc_or_none(row.watch_until),
            next_check_at=_utc_or_none(row.next_check_at),
            scheduled_at=_utc(row.scheduled_at) if row.scheduled_at else None,
        )


@dataclass(frozen=True, slots=True)
class OrderEvent:
    at: datetime
    state: OrderState
    step: Step
    provider_status: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class DuplicatePurchase:
    provider_order_id: str
    detected_at: datetime
    action: str


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


@dataclass(frozen=True, slots=True)
class NewOrder:
    owner: str
    kind: str
    provider: ProviderName
    idempotency_key: str
    request: dict[str, Any]
    #: set: record the order as SCHEDULED, to be placed at this time (nothing is sent now)
    scheduled_at: datetime | None = None
    #: set: the order takes this quote with its insert (`QuoteUsed` when another has it)
    quote_id: str | None = None


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
            created_at=_utc(row.created_at),
            expires_at=_utc(row.expires_at),
            order_id=row.order_id,
        )


def _bought_nothing(row: OrderRow) -> bool:
    """An order that ended with nothing bought and nothing left to find: refused by the
    provider (or at its scheduled time), or cancelled before it was placed. An abandoned
    order is still watched and may yet turn out bought, so it keeps its quote."""
    return row.provider_order_id is None and row.step in (Step.REJECTED, Step.SETTLED)


async def _take_quote(session: AsyncSession, quote_id: str, order_id: str) -> None:
    """Make `order_id` the order of quote `quote_id`, in the caller's transaction; raise
    `QuoteUsed` when another order holds it and may have bought with it. A compare-and-set
    on the holder seen, so two orders racing for one quote cannot both take it."""
    holder_id = await session.scalar(select(QuoteRow.order_id).where(QuoteRow.id == quote_id))
    if holder_id is not None and holder_id != order_id:
        holder = await session.get(OrderRow, holder_id)
        if holder is not None and not _bought_nothing(holder):
            raise QuoteUsed(quote_id, holder_id)
    seen = QuoteRow.order_id.is_(None) if holder_id is None else QuoteRow.order_id == holder_id
    taken = await session.execute(
        update(QuoteRow)
        .where(QuoteRow.id == quote_id, seen)
        .values(order_id=order_id)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        # another order took it between our read and our update (quotes are never deleted)
        current = await session.scalar(select(QuoteRow.order_id).where(QuoteRow.id == quote_id))
        if current is not None:
            raise QuoteUsed(quote_id, current)


@dataclass(frozen=True, slots=True)
class Page:
    records: tuple[OrderRecord, ...]
    has_next: bool


def encode_cursor(record: OrderRecord) -> str:
    raw = f"{record.created_at.isoformat()}|{record.id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError on anything that is not one of our cursors."""
    try:
        created, _, order_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return _utc(datetime.fromisoformat(created)), str(uuid.UUID(order_id))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("malformed cursor") from exc


def _history(row: OrderRow, at: datetime, note: str | None) -> OrderEventRow:
    """The status-history entry of an order as `row` now stands."""
    return OrderEventRow(
        order_id=row.id,
        at=at,
        state=row.state,
        step=row.step,
        provider_status=row.provider_status,
        note=note,
    )


ChangeListener = Callable[[str, str], Awaitable[None]]
READ_CACHE_SIZE = 10_000


class Ledger:
    def __init__(self, engine: AsyncEngine, *, read_cache_ttl: float = 2.0) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        #: called with (topic, message) after a committed change: subscriptions listen here
        self.listeners: list[ChangeListener] = []
        #: order reads for GraphQL (`get_many`) are served from here for `read_cache_ttl`
        #: seconds; writes on this process refresh it, and other replicas' writes evict it
        #: through `invalidate` (LISTEN/NOTIFY), so staleness is bounded by the TTL
        self.read_cache_ttl = read_cache_ttl
        self._read_cache: OrderedDict[str, tuple[float, OrderRecord]] = OrderedDict()
        #: outbound webhooks; order events are written by `update` in its transaction
        self.outbound = OutboundStore(self._sessions)

    def _remember(self, record: OrderRecord) -> None:
        if self.read_cache_ttl <= 0:
            return
        self._read_cache[record.id] = (time.monotonic() + self.read_cache_ttl, record)
        self._read_cache.move_to_end(record.id)
        if len(self._read_cache) > READ_CACHE_SIZE:
            self._read_cache.popitem(last=False)

    def invalidate(self, order_id: str) -> None:
        self._read_cache.pop(order_id, None)

    async def _changed(self, topic: str, message: str) -> None:
        for listener in self.listeners:
            try:
                await listener(topic, message)
            except Exception:  # a broken subscriber channel must not fail a purchase
                logging.getLogger("esim_gateway.ledger").exception("change listener failed")

    async def migrate(self) -> None:
        """Bring the tables to the latest Alembic revision.

        PostgreSQL serialises concurrent migrations with an advisory lock; SQLite has no
        such lock, so when several workers start at once on one file, the losers of the
        race retry and find the schema already at head.
        """
        import asyncio

        from sqlalchemy.exc import OperationalError, ProgrammingError

        from esim_gateway.ledger.migrate import upgrade

        for attempt in range(5):
            try:
                await upgrade(self.engine)
                return
            except (OperationalError, ProgrammingError):
                if self.engine.dialect.name != "sqlite" or attempt == 4:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    # -- writing ------------------------------------------------------------------

    async def claim(self, new: NewOrder) -> tuple[OrderRecord, bool]:
        """Insert the order, or return the one already stored under (owner, key).

        Returns (record, created). The caller compares `request_hash` to detect a key
        reused with another payload.
        """
        now = _now()
        digest = request_hash(new.request)
        scheduled = new.scheduled_at is not None
        row = OrderRow(
            id=str(uuid.uuid4()),
            owner=new.owner,
            kind=new.kind,
            provider=new.provider.value,
            idempotency_key=new.idempotency_key,
            request_hash=digest,
            request=new.request,
            reference=derive_reference(new.provider, new.owner, new.idempotency_key),
            provider_order_id=None,
            state=(OrderState.SCHEDULED if scheduled else OrderState.PENDING).value,
            provider_status=None,
            step=(Step.SCHEDULED if scheduled else Step.NEW).value,
            attempts=0,
            created_at=now,
            updated_at=now,
            scheduled_at=new.scheduled_at,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(row)
                await session.flush()
                if new.quote_id is not None:
                    await _take_quote(session, new.quote_id, row.id)
                session.add(
                    OrderEventRow(
                        order_id=row.id,
                        at=now,
                        state=row.state,
                        step=row.step,
                        note="scheduled" if scheduled else "recorded",
                    )
                )
            return OrderRecord.from_row(row), True
        except IntegrityError:
            existing = await self.by_key(new.owner, new.idempotency_key)
            if existing is None:  # the conflict was on the reference: same derivation
                existing = await self.by_reference(
                    new.provider, derive_reference(new.provider, new.owner, new.idempotency_key)
                )
            if existing is None:
                raise
            return existing, False

    async def update(
        self,
        order_id: str,
        *,
        note: str | None = None,
        **changes: Any,
    ) -> OrderRecord:
        """Apply `changes` (column=value) and append a history row when state/step moved."""
        now = _now()
        for key in ("state", "step"):
            if isinstance(changes.get(key), enum.Enum):
                changes[key] = changes[key].value
        async with self._sessions.begin() as session:
            row = await session.get(OrderRow, order_id, with_for_update=True)
            if row is None:
                raise KeyError(order_id)
            moved = any(
                key in changes and getattr(row, key) != changes[key]
                for key in ("state", "step", "provider_status")
            )
            previous_state = row.state
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = now
            # the webhook announcing this change commits with it, or not at all
            await enqueue_order_event(session, row, previous_state, now)
            if moved or note:
                session.add(_history(row, now, note))
            record = OrderRecord.from_row(row)
        return await self._committed(record)

    async def _committed(self, record: OrderRecord) -> OrderRecord:
        """After an order's change is committed: cache it and tell the listeners."""
        self._remember(record)
        await self._changed(f"order:{record.id}", record.id)
        return record

    async def _move_from(
        self, order_id: str, expected: Step, *, note: str, **values: Any
    ) -> OrderRecord | None:
        """Compare-and-set: apply `values` only if the order is still at step `expected`.

        One UPDATE guarded by the step, so of two replicas (or a cancel racing the
        scheduler) exactly one moves the order; the other gets None.
        """
        now = _now()
        async with self._sessions.begin() as session:
            before = await session.scalar(select(OrderRow.state).where(OrderRow.id == order_id))
            result = await session.execute(
                update(OrderRow)
                .where(OrderRow.id == order_id, OrderRow.step == expected.value)
                .values(updated_at=now, **values)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            row = await session.get(OrderRow, order_id, populate_existing=True)
            assert row is not None
            # a scheduled order refused at its time is an order.failed like any other
            await enqueue_order_event(session, row, str(before), now)
            session.add(_history(row, now, note))
            record = OrderRecord.from_row(row)
        return await self._committed(record)

    async def due_scheduled(
        self, *, now: datetime | None = None, limit: int = 50
    ) -> list[OrderRecord]:
        """Scheduled orders whose time has come by `now`, earliest first (not claimed)."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(OrderRow)
                    .where(
                        OrderRow.step == Step.SCHEDULED.value,
                        OrderRow.scheduled_at <= (now or _now()),
                    )
                    .order_by(OrderRow.scheduled_at)
                    .limit(limit)
                )
            ).all()
            return [OrderRecord.from_row(r) for r in rows]

    async def claim_scheduled(
        self, order_id: str, holder: str, *, lease: float = 120.0
    ) -> OrderRecord | None:
        """Move a scheduled order to NEW, leased to `holder`. Of every replica trying,
        exactly one gets the record; from then on it is an ordinary purchase (lease,
        lookup before any resend, the reconciler if this replica dies)."""
        return await self._move_from(
            order_id,
            Step.SCHEDULED,
            note="scheduled time reached: placing",
            step=Step.NEW.value,
            state=OrderState.PENDING.value,
            lease_owner=holder,
            lease_expires=_now() + timedelta(seconds=lease),
        )

    async def refuse_scheduled(
        self, order_id: str, reason: str, error_code: str
    ) -> OrderRecord | None:
        """Fail a scheduled order without placing it (its quoted price no longer holds)."""
        return await self._move_from(
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
        return await self._move_from(
            order_id,
            Step.SCHEDULED,
            note=note,
            step=Step.SETTLED.value,
            state=OrderState.CANCELLED.value,
        )

    # -- quotes -------------------------------------------------------------------------

    async def save_quote(self, quote: QuoteRecord) -> None:
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

    async def get_quote(self, quote_id: str) -> QuoteRecord | None:
        async with self._sessions() as session:
            row = await session.get(QuoteRow, quote_id)
            return QuoteRecord.from_row(row) if row is not None else None

    async def record_esims(self, order: OrderRecord, iccids: Sequence[str]) -> None:
        if not iccids:
            return
        now = _now()
        async with self._sessions.begin() as session:
            known = set(
                (
                    await session.scalars(
                        select(EsimRow.iccid).where(
                            EsimRow.provider == order.provider.value,
                            EsimRow.iccid.in_(list(iccids)),
                        )
                    )
                ).all()
            )
            fresh = [iccid for iccid in dict.fromkeys(iccids) if iccid not in known]
            session.add_all(
                EsimRow(
                    provider=order.provider.value,
                    iccid=iccid,
                    order_id=order.id,
                    owner=order.owner,
                    created_at=now,
                )
                for iccid in fresh
            )
        for iccid in iccids:
            await self._changed(f"esim:{iccid}", order.id)

    async def acquire_lease(self, order_id: str, holder: str, seconds: float) -> bool:
        now = _now()
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(OrderRow)
                .where(
                    OrderRow.id == order_id,
                    or_(
                        OrderRow.lease_owner.is_(None),
                        OrderRow.lease_owner == holder,
                        OrderRow.lease_expires < now,
                    ),
                )
                .values(lease_owner=holder, lease_expires=now + timedelta(seconds=seconds))
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    async def release_lease(self, order_id: str, holder: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(OrderRow)
                .where(OrderRow.id == order_id, OrderRow.lease_owner == holder)
                .values(lease_owner=None, lease_expires=None)
            )

    # -- duplicate purchases ------------------------------------------------------------

    async def record_duplicate(self, order_id: str, provider_order_id: str, action: str) -> bool:
        """Note a second provider order under this order's reference; False when it was
        noted before (a later watch pass finding it again)."""
        now = _now()
        try:
            async with self._sessions.begin() as session:
                order = await session.get_one(OrderRow, order_id)
                session.add(
                    DuplicatePurchaseRow(
                        order_id=order_id,
                        provider_order_id=provider_order_id,
                        detected_at=now,
                        action=action[:200],
                    )
                )
                session.add(
                    OrderEventRow(
                        order_id=order_id,
                        at=now,
                        state=order.state,
                        step=order.step,
                        provider_status=order.provider_status,
                        note=f"duplicate purchase {provider_order_id} at the provider: {action}",
                    )
                )
        except IntegrityError:
            return False
        self.invalidate(order_id)
        await self._changed(f"order:{order_id}", order_id)
        return True

    async def duplicates(self, order_id: str) -> list[DuplicatePurchase]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(DuplicatePurchaseRow)
                    .where(DuplicatePurchaseRow.order_id == order_id)
                    .order_by(DuplicatePurchaseRow.id)
                )
            ).all()
            return [
                DuplicatePurchase(r.provider_order_id, _utc(r.detected_at), r.action) for r in rows
            ]

    # -- webhook deliveries -----------------------------------------------------------

    async def store_event(self, event: StoredEvent) -> bool:
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
                        received_at=_now(),
                    )
                )
            return True
        except IntegrityError:
            return False

    async def events_to_process(self, *, limit: int = 100) -> list[StoredEvent]:
        """Deliveries not applied yet: never processed, or waiting for their order."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(WebhookEventRow)
                    .where(
                        or_(
                            WebhookEventRow.processed_at.is_(None),
                            WebhookEventRow.outcome == "unmatched",
                        )
                    )
                    .order_by(WebhookEventRow.id)
                    .limit(limit)
                )
            ).all()
            return [StoredEvent.from_row(r) for r in rows]

    async def event(self, provider: ProviderName, event_key: str) -> StoredEvent | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(WebhookEventRow).where(
                    WebhookEventRow.provider == provider.value,
                    WebhookEventRow.event_key == event_key,
                )
            )
            return StoredEvent.from_row(row) if row is not None else None

    async def mark_event(self, provider: ProviderName, event_key: str, outcome: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(WebhookEventRow)
                .where(
                    WebhookEventRow.provider == provider.value,
                    WebhookEventRow.event_key == event_key,
                )
                .values(processed_at=_now(), outcome=outcome[:200])
            )

    async def latest_event(
        self, provider: ProviderName, event_types: Sequence[str]
    ) -> StoredEvent | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(WebhookEventRow)
                .where(
                    WebhookEventRow.provider == provider.value,
                    WebhookEventRow.event_type.in_(list(event_types)),
                )
                .order_by(WebhookEventRow.id.desc())
                .limit(1)
            )
            return StoredEvent.from_row(row) if row is not None else None

    # -- catalog snapshots ---------------------------------------------------------------

    async def save_catalog(
        self, provider: ProviderName, fetched_at: datetime, packages: list[dict[str, Any]]
    ) -> None:
        # An UPDATE, not a read-modify-write: reading the row back would decode the whole
        # previous snapshot (megabytes) on the event loop only to replace it.
        async with self._sessions.begin() as session:
            updated = await session.execute(
                update(CatalogSnapshotRow)
                .where(CatalogSnapshotRow.provider == provider.value)
                .values(fetched_at=fetched_at, packages=packages)
            )
            if not updated.rowcount:  # type: ignore[attr-defined]
                session.add(
                    CatalogSnapshotRow(
                        provider=provider.value, fetched_at=fetched_at, packages=packages
                    )
                )

    async def load_catalog(
        self, provider: ProviderName
    ) -> tuple[datetime, list[dict[str, Any]]] | None:
        async with self._sessions() as session:
            row = await session.get(CatalogSnapshotRow, provider.value)
            return (_utc(row.fetched_at), list(row.packages)) if row is not None else None

    async def delete_all(self) -> None:
        """Tests only: start from an empty ledger."""
        self._read_cache.clear()
        await self.outbound.delete_all()
        async with self._sessions.begin() as session:
            for table in (
                WebhookEventRow,
                EsimRow,
                DuplicatePurchaseRow,
                OrderEventRow,
                OrderRow,
                QuoteRow,
            ):
                await session.execute(delete(table))

    # -- reading ------------------------------------------------------------------

    async def get(self, order_id: str) -> OrderRecord | None:
        async with self._sessions() as session:
            row = await session.get(OrderRow, order_id)
            return OrderRecord.from_row(row) if row is not None else None

    def cached(self, order_id: str, now: float | None = None) -> OrderRecord | None:
        """The order from the read cache while it is fresh, else None (no I/O)."""
        entry = self._read_cache.get(order_id)
        if entry is None or entry[0] <= (time.monotonic() if now is None else now):
            return None
        return entry[1]

    async def get_many(self, order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        """The hot path of every GraphQL order read: the read cache, then one Core query
        (no ORM session) for the rest. Purchases never read through here."""
        now = time.monotonic()
        found: dict[str, OrderRecord] = {}
        missing: list[str] = []
        for order_id in order_ids:
            record = self.cached(order_id, now)
            if record is not None:
                found[order_id] = record
            else:
                missing.append(order_id)
        if missing:
            table = OrderRow.__table__
            async with self.engine.connect() as conn:
                result = await conn.execute(select(table).where(table.c.id.in_(missing)))
                for m in result.mappings():
                    record = OrderRecord.from_mapping(m)
                    found[record.id] = record
                    self._remember(record)
        return found

    async def by_key(self, owner: str, idempotency_key: str) -> OrderRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(OrderRow).where(
                    OrderRow.owner == owner, OrderRow.idempotency_key == idempotency_key
                )
            )
            return OrderRecord.from_row(row) if row is not None else None

    async def by_reference(self, provider: ProviderName, reference: str) -> OrderRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(OrderRow).where(
                    OrderRow.provider == provider.value, OrderRow.reference == reference
                )
            )
            return OrderRecord.from_row(row) if row is not None else None

    async def by_provider_order_id(
        self, provider: ProviderName, provider_order_id: str
    ) -> OrderRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(OrderRow).where(
                    OrderRow.provider == provider.value,
                    OrderRow.provider_order_id == provider_order_id,
                )
            )
            return OrderRecord.from_row(row) if row is not None else None

    async def order_for_iccid(self, iccid: str) -> OrderRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(OrderRow)
                .join(EsimRow, EsimRow.order_id == OrderRow.id)
                .where(EsimRow.iccid == iccid)
                .order_by(OrderRow.created_at)
                .limit(1)
            )
            return OrderRecord.from_row(row) if row is not None else None

    async def history(self, order_id: str) -> list[OrderEvent]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(OrderEventRow)
                    .where(OrderEventRow.order_id == order_id)
                    .order_by(OrderEventRow.id)
                )
            ).all()
            return [
                OrderEvent(_utc(r.at), OrderState(r.state), Step(r.step), r.provider_status, r.note)
                for r in rows
            ]

    async def page(
        self,
        *,
        owner: str | None,
        provider: ProviderName | None = None,
        state: OrderState | None = None,
        reference: str | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Page:
        """Newest first. `owner=None` lists every owner's orders (operators)."""
        query = select(OrderRow)
        if owner is not None:
            query = query.where(OrderRow.owner == owner)
        if provider is not None:
            query = query.where(OrderRow.provider == provider.value)
        if state is not None:
            query = query.where(OrderRow.state == state.value)
        if reference is not None:
            query = query.where(OrderRow.reference == reference)
        if after is not None:
            created, order_id = decode_cursor(after)
            query = query.where(
                or_(
                    OrderRow.created_at < created,
                    and_(OrderRow.created_at == created, OrderRow.id < order_id),
                )
            )
        query = query.order_by(OrderRow.created_at.desc(), OrderRow.id.desc()).limit(first + 1)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        records = tuple(OrderRecord.from_row(r) for r in rows[:first])
        return Page(records, len(rows) > first)

    async def claim_unsettled(
        self, holder: str, *, limit: int = 50, older_than: float = 0.0, lease: float = 120.0
    ) -> list[OrderRecord]:
        """Lease up to `limit` unsettled orders nobody else holds, for one reconciler.

        On PostgreSQL the rows are picked with `FOR UPDATE SKIP LOCKED`, so replicas
        reconciling at the same moment pick disjoint sets instead of queueing on locks.
        """
        now = _now()
        async with self._sessions.begin() as session:
            rows = (
                await session.scalars(
                    select(OrderRow)
                    .where(
                        OrderRow.step.in_(
                            [Step.NEW.value, Step.SUBMITTING.value, Step.SUBMITTED.value]
                        ),
                        OrderRow.updated_at <= now - timedelta(seconds=older_than),
                        or_(OrderRow.next_check_at.is_(None), OrderRow.next_check_at <= now),
                        or_(
                            OrderRow.lease_expires.is_(None),
                            OrderRow.lease_expires < now,
                            OrderRow.lease_owner == holder,
                        ),
                    )
                    .order_by(OrderRow.created_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            return await self._lease_rows(session, rows, holder, now, lease)

    async def claim_watched(
        self, holder: str, *, limit: int = 50, lease: float = 120.0
    ) -> list[OrderRecord]:
        """Lease up to `limit` finished orders whose reference is still watched for late
        or duplicate purchases and whose next look is due."""
        now = _now()
        async with self._sessions.begin() as session:
            rows = (
                await session.scalars(
                    select(OrderRow)
                    .where(
                        OrderRow.watch_until > now,
                        OrderRow.step.in_(
                            [Step.SETTLED.value, Step.REJECTED.value, Step.ABANDONED.value]
                        ),
                        or_(OrderRow.next_check_at.is_(None), OrderRow.next_check_at <= now),
                        or_(
                            OrderRow.lease_expires.is_(None),
                            OrderRow.lease_expires < now,
                            OrderRow.lease_owner == holder,
                        ),
                    )
                    .order_by(OrderRow.next_check_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            return await self._lease_rows(session, rows, holder, now, lease)

    @staticmethod
    async def _lease_rows(
        session: AsyncSession, rows: Sequence[OrderRow], holder: str, now: datetime, lease: float
    ) -> list[OrderRecord]:
        claimed = []
        for row in rows:
            # compare-and-set: on SQLite (no row locks) two reconcilers may have read
            # the same candidates; only one update of each lease can match
            result = await session.execute(
                update(OrderRow)
                .where(
                    OrderRow.id == row.id,
                    or_(
                        OrderRow.lease_expires.is_(None),
                        OrderRow.lease_expires < now,
                        OrderRow.lease_owner == holder,
                    ),
                )
                .values(lease_owner=holder, lease_expires=now + timedelta(seconds=lease))
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                claimed.append(OrderRecord.from_row(row))
        return claimed

    async def unsettled(self, *, limit: int = 100, older_than: float = 0.0) -> list[OrderRecord]:
        """Orders whose purchase is not finished on our side, oldest first."""
        cutoff = _now() - timedelta(seconds=older_than)
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(OrderRow)
                    .where(
                        OrderRow.step.in_(
                            [Step.NEW.value, Step.SUBMITTING.value, Step.SUBMITTED.value]
                        ),
                        OrderRow.updated_at <= cutoff,
                    )
                    .order_by(OrderRow.created_at)
                    .limit(limit)
                )
            ).all()
            return [OrderRecord.from_row(r) for r in rows]

    async def count_unsettled(self) -> int:
        """How many orders `unsettled` would list with no limit (the reconciler's
        backlog), counted by the database: no row is loaded."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OrderRow)
                .where(
                    OrderRow.step.in_([Step.NEW.value, Step.SUBMITTING.value, Step.SUBMITTED.value])
                )
            )
            return int(count or 0)
