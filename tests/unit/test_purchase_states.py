"""The purchase state table is whole, and a move outside it does not go unnoticed.

That the gateway's own moves are all declared is checked where they happen: the ordering,
exactly-once and unknown-outcome scenarios run under `declared_moves_only`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from esim_gateway.domain import OrderState, ProviderName
from esim_gateway.ledger.orders import NewOrder, Step
from esim_gateway.ledger.repository import Ledger
from esim_gateway.purchasing.states import ALLOWED, SHOWS, TRANSITIONS, check_move
from tests.purchase_moves import MoveLog


def test_every_step_is_reached_from_an_order_being_recorded() -> None:
    reached: set[Step | None] = {None}
    frontier: set[Step | None] = {None}
    while frontier:
        onward: set[Step | None] = {target for source, target in ALLOWED if source in frontier}
        frontier = onward - reached
        reached |= frontier
    assert reached - {None} == set(Step)


def test_every_step_that_is_not_final_has_a_way_on() -> None:
    for step in Step:
        onward = {target for source, target in ALLOWED if source is step and target is not step}
        assert step.is_terminal or onward, f"{step} is a dead end"


def test_a_final_step_is_left_only_when_a_purchase_given_up_is_found() -> None:
    leaving = {(t.source, t.target) for t in TRANSITIONS if t.source and t.source.is_terminal}
    assert {(s, t) for s, t in leaving if s is not t} == {
        (Step.REJECTED, Step.SUBMITTED),
        (Step.ABANDONED, Step.SUBMITTED),
    }


def test_every_step_says_what_its_orders_show_and_every_move_says_why() -> None:
    assert set(SHOWS) == set(Step) and all(SHOWS.values())
    assert all(t.why for t in TRANSITIONS)
    assert len({(t.source, t.target, t.why) for t in TRANSITIONS}) == len(TRANSITIONS)


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    engine = create_async_engine(database_url)
    ledger = Ledger(engine)
    await ledger.migrate()
    yield ledger
    await engine.dispose()


def new_order(key: str) -> NewOrder:
    return NewOrder(
        owner="alice",
        kind="order",
        provider=ProviderName.ROAMIFY,
        idempotency_key=key,
        request={"items": [{"packageId": "p", "quantity": 1}]},
    )


async def test_the_move_log_sees_declared_moves_and_flags_the_others(ledger: Ledger) -> None:
    with MoveLog().listening() as moves:
        record, _ = await ledger.orders.claim(new_order("fine"))
        await ledger.orders.update(record.id, step=Step.SUBMITTING, note="submit attempt 1")
        assert moves.problems == []
        assert moves.seen == {(None, Step.NEW), (Step.NEW, Step.SUBMITTING)}
        skipped, _ = await ledger.orders.claim(new_order("skipped"))
        await ledger.orders.update(skipped.id, step=Step.SETTLED, state=OrderState.COMPLETED)
        wrong, _ = await ledger.orders.claim(new_order("wrong status"))
        await ledger.orders.update(wrong.id, step=Step.SUBMITTING, note="submit attempt 1")
        await ledger.orders.update(wrong.id, state=OrderState.COMPLETED, note="not placed yet")
    assert len(moves.problems) == 2
    assert "no declared move from NEW to SETTLED" in moves.problems[0]
    assert "an order at SUBMITTING does not show COMPLETED" in moves.problems[1]


async def test_a_move_the_table_does_not_declare_is_logged_at_error_when_written(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    record, _ = await ledger.orders.claim(new_order("k"))
    sent = await ledger.orders.update(record.id, step=Step.SUBMITTING)
    with caplog.at_level(logging.ERROR, logger="esim_gateway.purchasing"):
        assert check_move(record, sent) is sent
        assert caplog.records == []
        settled = await ledger.orders.update(
            record.id, step=Step.SETTLED, state=OrderState.COMPLETED
        )
        assert check_move(record, settled) is settled
    assert [r.getMessage() for r in caplog.records] == [
        f"order {record.id}: no declared move from NEW to SETTLED (purchase state table)"
    ]
