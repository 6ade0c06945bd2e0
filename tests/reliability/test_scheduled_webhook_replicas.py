"""Issue 15's two-replica promise in one run: an order scheduled on a replica that is
stopped before it is due is placed exactly once by the other replica, and its
`order.completed` webhook reaches the operator's receiver (signature verified) at least
once. Real processes over loopback (`esim-gateway serve`, `sandbox`, `webhook-receiver`)
on one PostgreSQL ledger, as in test_scheduled_replicas and test_webhook_replicas."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability.test_scheduled_replicas import later, make_due
from tests.reliability.test_two_processes import (
    LOOPBACK,
    clean_env,
    free_port,
    replica_env,
    roamify_package,
    serving,
    simulators,
)
from tests.reliability.test_webhook_replicas import (
    delivered,
    graphql,
    order_as_alice,
    receiver,
    register_receiver,
)

# `make test` runs the suite in parallel workers; each test here starts several real gateway
# and simulator processes, so one worker runs them one after another (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("real-processes")

ORDER = """query($id: ID!) { order(id: $id) { __typename
  ... on Order { status reference statusHistory { note } } } }"""
#: how long the test waits for the placement and the delivery (a bound, not a measure)
PATIENCE = 60.0


@pytest.mark.postgres
def test_an_order_scheduled_on_a_stopped_replica_is_placed_once_and_announced(
    clean_postgres: str, tmp_path: Path
) -> None:
    sandbox_port, first_port, second_port, receiver_port = (free_port() for _ in range(4))
    out = tmp_path / "received.jsonl"
    with simulators(sandbox_port) as sandbox:
        env = replica_env(
            clean_postgres,
            sandbox,
            API_KEYS="alice:customer:alice-key,ops:operator:ops-key",
            SCHEDULER_INTERVAL="0.1",
            WEBHOOK_RETRY_SCHEDULE=",".join(["0.5"] * 10 + ["2"] * 60),
            WEBHOOK_POLL_INTERVAL="0.2",
            WEBHOOK_TIMEOUT="2",
        )
        package_id = roamify_package(sandbox)
        with serving(second_port, env):
            with serving(first_port, env):
                endpoint = register_receiver(first_port, receiver_port)
                order = order_as_alice(
                    first_port,
                    package_id,
                    "scheduled-then-stopped",
                    scheduledAt=later().isoformat(),
                )
                assert order["status"] == "SCHEDULED"
            # the replica that took the order is gone before the order is due
            make_due(clean_postgres, [order["id"]])
            with receiver(receiver_port, endpoint["secret"], out, clean_env()):
                deadline = time.monotonic() + PATIENCE
                while not delivered(out):
                    assert time.monotonic() < deadline, "order.completed never arrived"
                    time.sleep(0.1)
                received = delivered(out)
            placed = graphql(second_port, "alice-key", ORDER, id=order["id"])["order"]
        calls = LOOPBACK.get(f"{sandbox}/roamify/_sandbox/calls").json()
    assert placed["__typename"] == "Order" and placed["status"] == "COMPLETED", placed
    purchases = [
        c
        for c in calls
        if c["method"] == "POST"
        and c["path"] == "/api/esim/order"
        and c["body"]["referenceId"] == placed["reference"]
    ]
    assert len(purchases) == 1
    notes = [change["note"] for change in placed["statusHistory"]]
    assert notes.count("scheduled time reached: placing") == 1
    # the receiver writes a line only for a delivery whose signature it verified
    assert {r["body"]["type"] for r in received} == {"order.completed"}
    assert {r["body"]["data"]["orderId"] for r in received} == {order["id"]}
    assert {r["body"]["data"]["reference"] for r in received} == {placed["reference"]}
