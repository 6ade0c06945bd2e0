"""Every change of step the ledger writes while a test runs, held to the state table.

The ledger writes a status-history row with every change of an order's step or status,
in the same transaction (`ledger.orders.update`, the scheduler's compare-and-set moves, `claim`,
duplicate reports), and rows of one order are written in the order of their changes:
each is written under the order's row lock. So the history rows, seen as the ORM inserts
them, are every move any part of the gateway made, whoever made it: the driver, the
scheduler, `cancelOrder`, a webhook. Listening to the mapper, not to the ledger's
methods, keeps this independent of how the ledger is divided into stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from esim_gateway.domain import OrderState
from esim_gateway.ledger.orders import Step
from esim_gateway.ledger.tables import OrderEventRow
from esim_gateway.purchasing.states import undeclared


class MoveLog:
    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}
        #: the (from, to) moves seen, None being "not recorded yet"
        self.seen: set[tuple[Step | None, Step]] = set()
        #: what was not declared, one line each
        self.problems: list[str] = []

    def _inserted(self, _mapper: Any, _connection: Any, row: OrderEventRow) -> None:
        step, state = Step(row.step), OrderState(row.state)
        source = self.steps.get(row.order_id)
        self.seen.add((source, step))
        problem = undeclared(source, step, state)
        if problem is not None:
            self.problems.append(f"order {row.order_id}: {problem} (note: {row.note!r})")
        self.steps[row.order_id] = step

    @contextmanager
    def listening(self) -> Iterator[MoveLog]:
        event.listen(OrderEventRow, "after_insert", self._inserted)
        try:
            yield self
        finally:
            event.remove(OrderEventRow, "after_insert", self._inserted)
