"""The purchase state machine, written down once.

An order's progress is its ledger step (`Step`); what its owner sees is its status
(`OrderState`). `TRANSITIONS` lists every move between steps that the gateway makes, each
with its cause; `SHOWS` lists the statuses an order can show at each step. The purchase
driver, the scheduler, the reconciler and `cancelOrder` move orders only along these
lines, and the tests hold them to it: every status-history row written while the
ordering and exactly-once scenarios run must be a declared move (`check_move`).

Phases inside a step that the exactly-once rules depend on are causes of a step's move to
itself, not steps of their own, because the ledger keeps them in other columns:

* SUBMITTING covers "sent, answer pending", "outcome unknown", "looked up, nothing found
  yet" and "the provider already holds the reference" (`reference_taken_at`: placed for
  sure, so it is looked up until it shows and never sent again);
* "watched" (`watch_until`) is a deadline on the reference, set after a second send or a
  give-up; a purchase found under it revives a REJECTED or ABANDONED order.

None as `source` is the order not existing yet (the ledger's `claim`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from esim_gateway.domain import OrderState
from esim_gateway.ledger.orders import OrderRecord, Step

__all__ = [
    "ALLOWED",
    "SHOWS",
    "TRANSITIONS",
    "Transition",
    "check_move",
    "undeclared",
]

log = logging.getLogger("esim_gateway.purchasing")


@dataclass(frozen=True, slots=True)
class Transition:
    source: Step | None
    target: Step
    why: str


# short names, so that each move fits on one line of the table
_T = Transition
_S = Step

#: every move the gateway makes, from -> to, and why
TRANSITIONS: tuple[Transition, ...] = (
    _T(None, _S.NEW, "recorded under its idempotency key; nothing sent yet"),
    _T(None, _S.SCHEDULED, "recorded with scheduledAt; nothing is sent before then"),
    _T(_S.SCHEDULED, _S.NEW, "due: moved to NEW by a compare-and-set, for exactly one replica"),
    _T(_S.SCHEDULED, _S.REJECTED, "due, but the quoted price moved: nothing bought"),
    _T(_S.SCHEDULED, _S.SETTLED, "cancelled before it was placed (free: nothing was sent)"),
    _T(_S.NEW, _S.SUBMITTING, "marked SUBMITTING, and committed, before the first send"),
    _T(_S.SUBMITTING, _S.NEW, "the first send never reached the provider: it does not count"),
    _T(_S.SUBMITTING, _S.SUBMITTING, "outcome unknown (timeout, reset, 5xx): looked up first"),
    _T(_S.SUBMITTING, _S.SUBMITTING, "a lookup found nothing: wait out the quiet period"),
    _T(_S.SUBMITTING, _S.SUBMITTING, "the provider holds the reference: placed, look again"),
    _T(_S.SUBMITTING, _S.SUBMITTING, "sent again: quiet period over, or references are unique"),
    _T(_S.SUBMITTING, _S.SUBMITTING, "a resend never reached the provider: as it stood"),
    _T(_S.SUBMITTING, _S.SUBMITTING, "a second order under the reference: reported"),
    _T(_S.SUBMITTING, _S.SUBMITTED, "the provider confirmed it, or a lookup found it: adopted"),
    _T(_S.SUBMITTING, _S.REJECTED, "refused by the provider (a 4xx that is not 'not now')"),
    _T(_S.SUBMITTING, _S.ABANDONED, "every outcome unknown, nothing found in the quiet period"),
    _T(_S.SUBMITTED, _S.SUBMITTED, "the provider's status moved; or a duplicate reported"),
    _T(_S.SUBMITTED, _S.SUBMITTED, "placed by a second send: its reference watched from now"),
    _T(_S.SUBMITTED, _S.SETTLED, "final at the provider (eSIMs out, failed, cancelled)"),
    _T(_S.SUBMITTED, _S.SETTLED, "cancelled by its owner while the provider worked on it"),
    _T(_S.SETTLED, _S.SETTLED, "changed at the provider after it settled (refund, cancel)"),
    _T(_S.SETTLED, _S.SETTLED, "cancelled by its owner; or a duplicate reported by the watch"),
    _T(_S.REJECTED, _S.REJECTED, "watched: an earlier send's outcome was unknown"),
    _T(_S.REJECTED, _S.SUBMITTED, "the watch found an earlier send placed after all: revived"),
    _T(_S.ABANDONED, _S.ABANDONED, "watched: the reference is looked at, less and less often"),
    _T(_S.ABANDONED, _S.SUBMITTED, "the watch found the purchase given up: revived, completed"),
)

#: the (from, to) pairs of `TRANSITIONS`
ALLOWED: frozenset[tuple[Step | None, Step]] = frozenset((t.source, t.target) for t in TRANSITIONS)

_PROVIDER_STATES = frozenset(OrderState) - {OrderState.SCHEDULED}

#: the statuses an order shows at each step
SHOWS: Mapping[Step, frozenset[OrderState]] = {
    Step.SCHEDULED: frozenset({OrderState.SCHEDULED}),
    Step.NEW: frozenset({OrderState.PENDING}),
    Step.SUBMITTING: frozenset({OrderState.PENDING}),
    # the provider's status, whatever it is: a lookup may find an order already final
    Step.SUBMITTED: _PROVIDER_STATES,
    # final when it settles; a refund later may read as in progress again
    Step.SETTLED: _PROVIDER_STATES,
    Step.REJECTED: frozenset({OrderState.FAILED}),
    Step.ABANDONED: frozenset({OrderState.FAILED}),
}


def undeclared(source: Step | None, target: Step, state: OrderState) -> str | None:
    """What is wrong with moving from step `source` to `target` showing `state`, if
    anything: the move or the status is not in the table."""
    if (source, target) not in ALLOWED:
        return f"no declared move from {source} to {target}"
    if state not in SHOWS[target]:
        return f"an order at {target} does not show {state}"
    return None


def check_move(before: OrderRecord, after: OrderRecord) -> OrderRecord:
    """`after`, once the driver has written it; an undeclared move is logged at ERROR.

    Only logged: the change is committed by then, and the ledger is the record of what
    the provider did. Refusing to keep it (or stopping the driver) would lose a purchase's
    trace, which exactly-once cannot afford; a move missing from the table is a bug to
    fix in the table or the code, and the tests fail on it.
    """
    problem = undeclared(before.step, after.step, after.state)
    if problem is not None:
        log.error("order %s: %s (purchase state table)", after.id, problem)
    return after
