"""The ledger on SQLite and PostgreSQL: idempotency rows, leases, history, paging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from esim_gateway.domain import OrderState, ProviderName
from esim_gateway.ledger.orders import (
    NewOrder,
    Step,
    decode_cursor,
    derive_reference,
    encode_cursor,
    request_hash,
)
from esim_gateway.ledger.repository import Ledger


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    engine = create_async_engine(database_url)
    ledger = Ledger(engine)
    await ledger.migrate()
    yield ledger
    await engine.dispose()


def new(key: str = "k1", owner: str = "alice", items: int = 1) -> NewOrder:
    return NewOrder(
        owner=owner,
        kind="order",
        provider=ProviderName.ROAMIFY,
        idempotency_key=key,
        request={"items": [{"packageId": "p", "quantity": items}]},
    )


async def test_claiming_the_same_key_twice_returns_the_first_row(ledger: Ledger) -> None:
    first, created = await ledger.orders.claim(new())
    again, created_again = await ledger.orders.claim(new())
    assert created and not created_again
    assert again.id == first.id and again.reference == first.reference


async def test_concurrent_claims_of_one_key_create_exactly_one_row(ledger: Ledger) -> None:
    results = await asyncio.gather(*(ledger.orders.claim(new()) for _ in range(10)))
    assert len({record.id for record, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_keys_are_scoped_per_owner(ledger: Ledger) -> None:
    a, _ = await ledger.orders.claim(new(owner="alice"))
    b, _ = await ledger.orders.claim(new(owner="bob"))
    assert a.id != b.id and a.reference != b.reference


async def test_the_reference_is_derived_from_the_key_and_stored_before_any_call(
    ledger: Ledger,
) -> None:
    record, _ = await ledger.orders.claim(new())
    assert record.step is Step.NEW
    assert record.reference == derive_reference(ProviderName.ROAMIFY, "alice", "k1")
    assert record.request_hash == request_hash(record.request)


async def test_updates_append_status_history(ledger: Ledger) -> None:
    record, _ = await ledger.orders.claim(new())
    await ledger.orders.update(record.id, step=Step.SUBMITTING, note="attempt 1")
    await ledger.orders.update(
        record.id, step=Step.SUBMITTED, state=OrderState.PROCESSING, provider_order_id="o-1"
    )
    done = await ledger.orders.update(record.id, step=Step.SETTLED, state=OrderState.COMPLETED)
    history = await ledger.orders.history(record.id)
    assert [e.step for e in history] == [Step.NEW, Step.SUBMITTING, Step.SUBMITTED, Step.SETTLED]
    assert done.state is OrderState.COMPLETED and done.updated_at >= done.created_at


async def test_a_lease_is_held_by_one_holder_until_released_or_expired(ledger: Ledger) -> None:
    record, _ = await ledger.orders.claim(new())
    assert await ledger.orders.acquire_lease(record.id, "a", 60)
    assert not await ledger.orders.acquire_lease(record.id, "b", 60)
    assert await ledger.orders.acquire_lease(record.id, "a", 60)  # re-entrant for its holder
    await ledger.orders.release_lease(record.id, "a")
    assert await ledger.orders.acquire_lease(record.id, "b", 0.0)
    await asyncio.sleep(0.01)
    assert await ledger.orders.acquire_lease(record.id, "c", 60)  # b's lease expired


async def test_listing_is_newest_first_filtered_and_paged(ledger: Ledger) -> None:
    ids = []
    for i in range(5):
        record, _ = await ledger.orders.claim(new(key=f"k{i}"))
        ids.append(record.id)
    await ledger.orders.claim(new(key="other", owner="bob"))
    first = await ledger.orders.page(owner="alice", first=2)
    assert [r.id for r in first.records] == ids[::-1][:2] and first.has_next
    rest = await ledger.orders.page(owner="alice", first=10, after=encode_cursor(first.records[-1]))
    assert [r.id for r in rest.records] == ids[::-1][2:] and not rest.has_next
    everyone = await ledger.orders.page(owner=None, first=100)
    assert len(everyone.records) == 6
    none = await ledger.orders.page(owner="alice", state=OrderState.COMPLETED, first=10)
    assert none.records == ()


async def test_unsettled_lists_only_orders_still_in_flight(ledger: Ledger) -> None:
    a, _ = await ledger.orders.claim(new(key="a"))
    b, _ = await ledger.orders.claim(new(key="b"))
    await ledger.orders.update(b.id, step=Step.SETTLED, state=OrderState.COMPLETED)
    assert [r.id for r in await ledger.orders.unsettled()] == [a.id]


async def test_the_backlog_is_counted_by_the_database(ledger: Ledger) -> None:
    assert await ledger.orders.count_unsettled() == 0
    records = [(await ledger.orders.claim(new(key=f"k{i}")))[0] for i in range(4)]
    await ledger.orders.update(records[0].id, step=Step.SETTLED, state=OrderState.COMPLETED)
    await ledger.orders.update(records[1].id, step=Step.SUBMITTED)
    assert await ledger.orders.count_unsettled() == 3 == len(await ledger.orders.unsettled())


async def test_esims_map_to_their_order_and_owner(ledger: Ledger) -> None:
    record, _ = await ledger.orders.claim(new())
    await ledger.orders.record_esims(record, ["8940000000000000001", "8940000000000000001"])
    await ledger.orders.record_esims(record, ["8940000000000000001"])
    found = await ledger.orders.order_for_iccid("8940000000000000001")
    assert found is not None and found.id == record.id
    assert await ledger.orders.order_for_iccid("8940000000000000999") is None


def test_a_cursor_that_is_not_ours_is_rejected() -> None:
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor("bm90LWEtY3Vyc29y")


async def test_the_migrations_create_exactly_the_tables_the_code_declares(
    unmigrated_database_url: str,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from esim_gateway.ledger.tables import Base

    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection)  # type: ignore[arg-type]  # sync conn
        return list(compare_metadata(context, Base.metadata))

    engine = create_async_engine(unmigrated_database_url)
    ledger = Ledger(engine)
    # from no tables at all (other tests start from a copy of an already migrated ledger)
    await ledger.migrate()
    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    await engine.dispose()


async def test_reconcilers_claim_disjoint_sets_of_unsettled_orders(ledger: Ledger) -> None:
    for i in range(6):
        await ledger.orders.claim(new(key=f"k{i}"))
    first, second = await asyncio.gather(
        ledger.orders.claim_unsettled("replica-a", limit=4),
        ledger.orders.claim_unsettled("replica-b", limit=4),
    )
    a, b = {r.id for r in first}, {r.id for r in second}
    # Disjoint, whoever wins: on SQLite (no row locks) both read the same candidates and
    # one replica's compare-and-set may take all of them, leaving the other none.
    assert a | b and not a & b
    rest = {r.id for r in await ledger.orders.claim_unsettled("replica-c")}
    assert not rest & (a | b) and len(a | b | rest) == 6
    assert await ledger.orders.claim_unsettled("replica-d") == []


async def test_the_read_cache_is_refreshed_by_writes_and_evicted_by_other_replicas(
    database_url: str,
) -> None:
    engine = create_async_engine(database_url)
    here, there = Ledger(engine, read_cache_ttl=60), Ledger(engine, read_cache_ttl=60)
    await here.migrate()
    record, _ = await here.orders.claim(new())
    assert (await here.orders.get_many([record.id]))[record.id].state is OrderState.PENDING
    await there.orders.update(record.id, state=OrderState.COMPLETED, step=Step.SETTLED)
    # another replica's write: served from the cache until its notification arrives
    assert (await here.orders.get_many([record.id]))[record.id].state is OrderState.PENDING
    here.invalidate(record.id)
    assert (await here.orders.get_many([record.id]))[record.id].state is OrderState.COMPLETED
    # this replica's own writes refresh the cache at once
    await here.orders.update(record.id, state=OrderState.REFUNDED)
    assert (await here.orders.get_many([record.id]))[record.id].state is OrderState.REFUNDED
    await engine.dispose()


async def test_a_cached_order_expires_after_its_ttl(database_url: str) -> None:
    engine = create_async_engine(database_url)
    here, there = Ledger(engine, read_cache_ttl=0.05), Ledger(engine)
    await here.migrate()
    record, _ = await here.orders.claim(new())
    await here.orders.get_many([record.id])
    await there.orders.update(record.id, state=OrderState.FAILED, step=Step.REJECTED)
    await asyncio.sleep(0.06)
    assert (await here.orders.get_many([record.id]))[record.id].state is OrderState.FAILED
    await engine.dispose()


async def test_a_stored_catalog_is_replaced_by_the_next_one(ledger: Ledger) -> None:
    first = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    second = first + timedelta(minutes=5)
    await ledger.catalog.save(ProviderName.ROAMIFY, first, [{"packageId": "a"}])
    await ledger.catalog.save(ProviderName.SIMPLIFYTRIP, first, [{"sku": "s"}])
    await ledger.catalog.save(ProviderName.ROAMIFY, second, [{"packageId": "b"}, {"x": 1}])
    assert await ledger.catalog.load(ProviderName.ROAMIFY) == (
        second,
        [{"packageId": "b"}, {"x": 1}],
    )
    assert await ledger.catalog.load(ProviderName.SIMPLIFYTRIP) == (first, [{"sku": "s"}])
