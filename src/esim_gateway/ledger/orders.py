"""Orders we placed: their idempotency keys, references, steps, leases, eSIMs and history.

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
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from esim_gateway.domain import OrderState, ProviderName
from esim_gateway.errors import QuoteUsed
from esim_gateway.ledger.outbox import enqueue_order_event
from esim_gateway.ledger.store import (
    ChangeListener,
    Sessions,
    fetch_all,
    fetch_by_id,
    fetch_first,
    utc,
    utc_now,
    utc_or_none,
)
from esim_gateway.ledger.tables import (
    DuplicatePurchaseRow,
    EsimRow,
    OrderEventRow,
    OrderRow,
    QuoteRow,
)

__all__ = [
    "READ_CACHE_SIZE",
    "DuplicatePurchase",
    "NewOrder",
    "OrderEvent",
    "OrderRecord",
    "OrderStore",
    "Page",
    "Step",
    "decode_cursor",
    "derive_reference",
    "encode_cursor",
    "request_hash",
]

READ_CACHE_SIZE = 10_000


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
        """From a Core row (`get_many`'s read, with no ORM session)."""
        return cls._from(m.__getitem__)

    @classmethod
    def from_row(cls, row: OrderRow) -> OrderRecord:
        return cls._from(partial(getattr, row))

    @classmethod
    def _from(cls, field: Callable[[str], Any]) -> OrderRecord:
        return cls(
            id=field("id"),
            owner=field("owner"),
            kind=field("kind"),
            provider=ProviderName(field("provider")),
            idempotency_key=field("idempotency_key"),
            request_hash=field("request_hash"),
            request=dict(field("request")),
            reference=field("reference"),
            provider_order_id=field("provider_order_id"),
            state=OrderState(field("state")),
            provider_status=field("provider_status"),
            step=Step(field("step")),
            total_amount=field("total_amount"),
            currency=field("currency"),
            failure_reason=field("failure_reason"),
            error_code=field("error_code"),
            error_status=field("error_status"),
            attempts=field("attempts"),
            created_at=utc(field("created_at")),
            updated_at=utc(field("updated_at")),
            last_sent_at=utc_or_none(field("last_sent_at")),
            lookups=field("lookups") or 0,
            reference_taken_at=utc_or_none(field("reference_taken_at")),
            watch_until=utc_or_none(field("watch_until")),
            next_check_at=utc_or_none(field("next_check_at")),
            scheduled_at=utc_or_none(field("scheduled_at")),
        )


@dataclass(frozen=True, slots=True)
class OrderEvent:
    at: datetime
    state: OrderState
    step: Step
    provider_status: str | None
    note: str | None

    @classmethod
    def from_row(cls, row: OrderEventRow) -> OrderEvent:
        return cls(
            utc(row.at), OrderState(row.state), Step(row.step), row.provider_status, row.note
        )


@dataclass(frozen=True, slots=True)
class DuplicatePurchase:
    provider_order_id: str
    detected_at: datetime
    action: str

    @classmethod
    def from_row(cls, row: DuplicatePurchaseRow) -> DuplicatePurchase:
        return cls(row.provider_order_id, utc(row.detected_at), row.action)


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
        return utc(datetime.fromisoformat(created)), str(uuid.UUID(order_id))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("malformed cursor") from exc


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


def _lease_free_or_held_by(holder: str, at: datetime) -> ColumnElement[bool]:
    return or_(
        OrderRow.lease_expires.is_(None),
        OrderRow.lease_expires < at,
        OrderRow.lease_owner == holder,
    )


async def _lease_rows(
    session: AsyncSession, rows: Sequence[OrderRow], holder: str, at: datetime, lease: float
) -> list[OrderRecord]:
    claimed = []
    for row in rows:
        # compare-and-set: on SQLite (no row locks) two reconcilers may have read
        # the same candidates; only one update of each lease can match
        result = await session.execute(
            update(OrderRow)
            .where(OrderRow.id == row.id, _lease_free_or_held_by(holder, at))
            .values(lease_owner=holder, lease_expires=at + timedelta(seconds=lease))
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            claimed.append(OrderRecord.from_row(row))
    return claimed


#: the steps of a purchase not finished on our side
_UNSETTLED = [Step.NEW.value, Step.SUBMITTING.value, Step.SUBMITTED.value]
#: the steps of a finished order, whose reference may still be watched
_FINISHED = [Step.SETTLED.value, Step.REJECTED.value, Step.ABANDONED.value]


class OrderStore:
    """Orders, their leases, eSIMs, duplicates and history, and a read cache of orders."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: Sessions,
        changed: ChangeListener,
        *,
        read_cache_ttl: float = 2.0,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        #: told (topic, message) after each committed change of an order or its eSIMs
        self._changed = changed
        #: order reads for GraphQL (`get_many`) are served from here for `read_cache_ttl`
        #: seconds; writes on this process refresh it, and other replicas' writes evict it
        #: through `invalidate` (LISTEN/NOTIFY), so staleness is bounded by the TTL
        self.read_cache_ttl = read_cache_ttl
        self._read_cache: OrderedDict[str, tuple[float, OrderRecord]] = OrderedDict()

    def _remember(self, record: OrderRecord) -> None:
        if self.read_cache_ttl <= 0:
            return
        now = time.monotonic()
        cache = self._read_cache
        # every entry lives the same TTL, so the oldest expire first: they go as new ones
        # come, rather than stay (up to READ_CACHE_SIZE orders) until the cache is full
        while cache and next(iter(cache.values()))[0] <= now:
            cache.popitem(last=False)
        cache[record.id] = (now + self.read_cache_ttl, record)
        cache.move_to_end(record.id)
        if len(cache) > READ_CACHE_SIZE:
            cache.popitem(last=False)

    def invalidate(self, order_id: str) -> None:
        self._read_cache.pop(order_id, None)

    # -- writing ------------------------------------------------------------------

    async def claim(self, new: NewOrder) -> tuple[OrderRecord, bool]:
        """Insert the order, or return the one already stored under (owner, key).

        Returns (record, created). The caller compares `request_hash` to detect a key
        reused with another payload.
        """
        at = utc_now()
        scheduled = new.scheduled_at is not None
        reference = derive_reference(new.provider, new.owner, new.idempotency_key)
        row = OrderRow(
            id=str(uuid.uuid4()),
            owner=new.owner,
            kind=new.kind,
            provider=new.provider.value,
            idempotency_key=new.idempotency_key,
            request_hash=request_hash(new.request),
            request=new.request,
            reference=reference,
            provider_order_id=None,
            state=(OrderState.SCHEDULED if scheduled else OrderState.PENDING).value,
            provider_status=None,
            step=(Step.SCHEDULED if scheduled else Step.NEW).value,
            attempts=0,
            created_at=at,
            updated_at=at,
            scheduled_at=new.scheduled_at,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(row)
                await session.flush()
                if new.quote_id is not None:
                    await _take_quote(session, new.quote_id, row.id)
                session.add(_history(row, at, "scheduled" if scheduled else "recorded"))
            return OrderRecord.from_row(row), True
        except IntegrityError:
            existing = await self.by_key(new.owner, new.idempotency_key)
            if existing is None:  # the conflict was on the reference: same derivation
                existing = await self.by_reference(new.provider, reference)
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
        at = utc_now()
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
            row.updated_at = at
            # the webhook announcing this change commits with it, or not at all
            await enqueue_order_event(session, row, previous_state, at)
            if moved or note:
                session.add(_history(row, at, note))
            record = OrderRecord.from_row(row)
        return await self._committed(record)

    async def _committed(self, record: OrderRecord) -> OrderRecord:
        """After an order's change is committed: cache it and tell the listeners."""
        self._remember(record)
        await self._changed(f"order:{record.id}", record.id)
        return record

    async def move_from(
        self, order_id: str, expected: Step, *, note: str, **values: Any
    ) -> OrderRecord | None:
        """Compare-and-set: apply `values` only if the order is still at step `expected`.

        One UPDATE guarded by the step, so of two replicas (or a cancel racing the
        scheduler) exactly one moves the order; the other gets None.
        """
        at = utc_now()
        async with self._sessions.begin() as session:
            before = await session.scalar(select(OrderRow.state).where(OrderRow.id == order_id))
            result = await session.execute(
                update(OrderRow)
                .where(OrderRow.id == order_id, OrderRow.step == expected.value)
                .values(updated_at=at, **values)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            row = await session.get(OrderRow, order_id, populate_existing=True)
            assert row is not None
            # a scheduled order refused at its time is an order.failed like any other
            await enqueue_order_event(session, row, str(before), at)
            session.add(_history(row, at, note))
            record = OrderRecord.from_row(row)
        return await self._committed(record)

    async def record_esims(self, order: OrderRecord, iccids: Sequence[str]) -> None:
        if not iccids:
            return
        at = utc_now()
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
                    created_at=at,
                )
                for iccid in fresh
            )
        for iccid in iccids:
            await self._changed(f"esim:{iccid}", order.id)

    async def acquire_lease(self, order_id: str, holder: str, seconds: float) -> bool:
        at = utc_now()
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(OrderRow)
                .where(
                    OrderRow.id == order_id,
                    or_(
                        OrderRow.lease_owner.is_(None),
                        OrderRow.lease_owner == holder,
                        OrderRow.lease_expires < at,
                    ),
                )
                .values(lease_owner=holder, lease_expires=at + timedelta(seconds=seconds))
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
        at = utc_now()
        try:
            async with self._sessions.begin() as session:
                order = await session.get_one(OrderRow, order_id)
                session.add(
                    DuplicatePurchaseRow(
                        order_id=order_id,
                        provider_order_id=provider_order_id,
                        detected_at=at,
                        action=action[:200],
                    )
                )
                session.add(
                    _history(
                        order,
                        at,
                        f"duplicate purchase {provider_order_id} at the provider: {action}",
                    )
                )
        except IntegrityError:
            return False
        self.invalidate(order_id)
        await self._changed(f"order:{order_id}", order_id)
        return True

    async def duplicates(self, order_id: str) -> list[DuplicatePurchase]:
        return await fetch_all(
            self._sessions,
            select(DuplicatePurchaseRow)
            .where(DuplicatePurchaseRow.order_id == order_id)
            .order_by(DuplicatePurchaseRow.id),
            DuplicatePurchase.from_row,
        )

    # -- reading ------------------------------------------------------------------

    async def get(self, order_id: str) -> OrderRecord | None:
        return await fetch_by_id(self._sessions, OrderRow, order_id, OrderRecord.from_row)

    def cached(self, order_id: str, now: float | None = None) -> OrderRecord | None:
        """The order from the read cache while it is fresh, else None (no I/O)."""
        entry = self._read_cache.get(order_id)
        if entry is None or entry[0] <= (time.monotonic() if now is None else now):
            return None
        return entry[1]

    async def get_many(self, order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        """The hot path of every GraphQL order read: the read cache, then one Core query
        (no ORM session) for the rest. Purchases never read through here."""
        clock = time.monotonic()
        found: dict[str, OrderRecord] = {}
        missing: list[str] = []
        for order_id in order_ids:
            record = self.cached(order_id, clock)
            if record is not None:
                found[order_id] = record
            else:
                missing.append(order_id)
        if missing:
            table = OrderRow.__table__
            async with self._engine.connect() as conn:
                result = await conn.execute(select(table).where(table.c.id.in_(missing)))
                for m in result.mappings():
                    record = OrderRecord.from_mapping(m)
                    found[record.id] = record
                    self._remember(record)
        return found

    async def _one(self, query: Select[OrderRow]) -> OrderRecord | None:
        return await fetch_first(self._sessions, query, OrderRecord.from_row)

    async def by_key(self, owner: str, idempotency_key: str) -> OrderRecord | None:
        return await self._one(
            select(OrderRow).where(
                OrderRow.owner == owner, OrderRow.idempotency_key == idempotency_key
            )
        )

    async def by_reference(self, provider: ProviderName, reference: str) -> OrderRecord | None:
        return await self._one(
            select(OrderRow).where(
                OrderRow.provider == provider.value, OrderRow.reference == reference
            )
        )

    async def by_provider_order_id(
        self, provider: ProviderName, provider_order_id: str
    ) -> OrderRecord | None:
        return await self._one(
            select(OrderRow).where(
                OrderRow.provider == provider.value,
                OrderRow.provider_order_id == provider_order_id,
            )
        )

    async def order_for_iccid(self, iccid: str) -> OrderRecord | None:
        return await self._one(
            select(OrderRow)
            .join(EsimRow, EsimRow.order_id == OrderRow.id)
            .where(EsimRow.iccid == iccid)
            .order_by(OrderRow.created_at)
            .limit(1)
        )

    async def history(self, order_id: str) -> list[OrderEvent]:
        return await fetch_all(
            self._sessions,
            select(OrderEventRow)
            .where(OrderEventRow.order_id == order_id)
            .order_by(OrderEventRow.id),
            OrderEvent.from_row,
        )

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

    # -- claiming for the reconciler ------------------------------------------------------

    async def _lease(
        self, query: Select[OrderRow], holder: str, at: datetime, lease: float
    ) -> list[OrderRecord]:
        """Lease the rows `query` selects that nobody else holds. On PostgreSQL they are
        picked with `FOR UPDATE SKIP LOCKED`, so replicas claiming at the same moment pick
        disjoint sets instead of queueing on locks."""
        async with self._sessions.begin() as session:
            rows = (await session.scalars(query.with_for_update(skip_locked=True))).all()
            return await _lease_rows(session, rows, holder, at, lease)

    async def claim_unsettled(
        self, holder: str, *, limit: int = 50, older_than: float = 0.0, lease: float = 120.0
    ) -> list[OrderRecord]:
        """Lease up to `limit` unsettled orders nobody else holds, for one reconciler."""
        at = utc_now()
        query = (
            select(OrderRow)
            .where(
                OrderRow.step.in_(_UNSETTLED),
                OrderRow.updated_at <= at - timedelta(seconds=older_than),
                or_(OrderRow.next_check_at.is_(None), OrderRow.next_check_at <= at),
                _lease_free_or_held_by(holder, at),
            )
            .order_by(OrderRow.created_at)
            .limit(limit)
        )
        return await self._lease(query, holder, at, lease)

    async def claim_watched(
        self, holder: str, *, limit: int = 50, lease: float = 120.0
    ) -> list[OrderRecord]:
        """Lease up to `limit` finished orders whose reference is still watched for late
        or duplicate purchases and whose next look is due."""
        at = utc_now()
        query = (
            select(OrderRow)
            .where(
                OrderRow.watch_until > at,
                OrderRow.step.in_(_FINISHED),
                or_(OrderRow.next_check_at.is_(None), OrderRow.next_check_at <= at),
                _lease_free_or_held_by(holder, at),
            )
            .order_by(OrderRow.next_check_at)
            .limit(limit)
        )
        return await self._lease(query, holder, at, lease)

    async def unsettled(self, *, limit: int = 100, older_than: float = 0.0) -> list[OrderRecord]:
        """Orders whose purchase is not finished on our side, oldest first."""
        cutoff = utc_now() - timedelta(seconds=older_than)
        return await fetch_all(
            self._sessions,
            select(OrderRow)
            .where(OrderRow.step.in_(_UNSETTLED), OrderRow.updated_at <= cutoff)
            .order_by(OrderRow.created_at)
            .limit(limit),
            OrderRecord.from_row,
        )

    async def count_unsettled(self) -> int:
        """How many orders `unsettled` would list with no limit (the reconciler's
        backlog), counted by the database: no row is loaded."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(OrderRow).where(OrderRow.step.in_(_UNSETTLED))
            )
            return int(count or 0)
