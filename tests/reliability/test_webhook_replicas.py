"""Two gateway processes on one PostgreSQL ledger: the outbox outlives the replica that
wrote it. An order completes on the first replica while the receiver is down; the first
replica is stopped; the receiver comes up and the second replica delivers the
`order.completed` webhook. Real processes over loopback, as in test_two_processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.reliability.test_two_processes import (
    LOOPBACK,
    free_port,
    replica_env,
    roamify_package,
    running,
    wait_ready,
)

# `make test` runs the suite in parallel workers; each test here starts several real gateway
# and simulator processes, so one worker runs them one after another (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("real-processes")

CREATE_ENDPOINT = """mutation($url: String!) {
  createWebhookEndpoint(url: $url, events: ["order.completed"]) { __typename
    ... on WebhookEndpointSecret { secret } ... on Error { message } } }"""
CREATE_ORDER = """mutation($input: CreateOrderInput!) { createOrder(input: $input) { __typename
  ... on Order { id status } ... on Error { message } } }"""
DELIVERIES = """{ webhookDeliveries { ... on WebhookDeliveryList {
  deliveries { eventType status attempts orderId } } } }"""


def graphql(port: int, key: str, query: str, **variables: Any) -> dict[str, Any]:
    response = LOOPBACK.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {key}"},
        timeout=60,
    )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def register_receiver(port: int, receiver_port: int) -> dict[str, Any]:
    """An endpoint for `order.completed` at the receiver on `receiver_port`, registered
    through the replica on `port` by the operator; its secret is in the answer."""
    created: dict[str, Any] = graphql(
        port, "ops-key", CREATE_ENDPOINT, url=f"http://127.0.0.1:{receiver_port}/hooks"
    )["createWebhookEndpoint"]
    assert created["__typename"] == "WebhookEndpointSecret", created
    return created


def order_as_alice(port: int, package_id: str, key: str, **extra: str) -> dict[str, Any]:
    """One Roamify package bought (or, with `scheduledAt`, scheduled) by the customer
    through the replica on `port`."""
    order: dict[str, Any] = graphql(
        port,
        "alice-key",
        CREATE_ORDER,
        input={
            "provider": "ROAMIFY",
            "idempotencyKey": key,
            "items": [{"packageId": package_id, "quantity": 1}],
            **extra,
        },
    )["createOrder"]
    assert order["__typename"] == "Order", order
    return order


@contextlib.contextmanager
def receiver(port: int, secret: str, out: Path, env: dict[str, str]) -> Iterator[None]:
    with out.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [
                sys.executable,
                "-m",
                "esim_gateway",
                "webhook-receiver",
                "--port",
                str(port),
                "--secret",
                secret,
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.DEVNULL,
        )
        try:
            # any answer (405 to a GET) means it listens
            wait_ready(f"http://127.0.0.1:{port}/", process)
            yield
        finally:
            process.terminate()
            process.wait(timeout=15)


def delivered(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines() if line.strip()]


@pytest.mark.postgres
def test_an_order_completed_on_a_stopped_replica_is_delivered_by_the_other(
    clean_postgres: str, tmp_path: Path
) -> None:
    sandbox_port, first_port, second_port, receiver_port = (free_port() for _ in range(4))
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESIM_GATEWAY_")}
    gateway_env = replica_env(
        clean_postgres,
        sandbox,
        API_KEYS="alice:customer:alice-key,ops:operator:ops-key",
        WEBHOOK_RETRY_SCHEDULE=",".join(["0.5"] * 10 + ["2"] * 60),
        WEBHOOK_POLL_INTERVAL="0.2",
        WEBHOOK_TIMEOUT="2",
    )
    out = tmp_path / "received.jsonl"
    with running(
        ["sandbox", "--port", str(sandbox_port), "--fulfil-delay", "0"],
        env,
        f"{sandbox}/roamify/_sandbox/calls",
    ):
        package_id = roamify_package(sandbox)
        with running(
            ["serve", "--port", str(second_port)],
            gateway_env,
            f"http://127.0.0.1:{second_port}/healthz",
        ):
            with running(
                ["serve", "--port", str(first_port)],
                gateway_env,
                f"http://127.0.0.1:{first_port}/healthz",
            ):
                created = register_receiver(first_port, receiver_port)
                order = order_as_alice(first_port, package_id, "replica-webhook-1")
                assert order["status"] == "COMPLETED"
            # the first replica is stopped; the receiver was down all along
            with receiver(receiver_port, created["secret"], out, env):
                deadline = time.monotonic() + 90
                while not delivered(out) and time.monotonic() < deadline:
                    time.sleep(0.1)
                received = delivered(out)
                listed = graphql(second_port, "ops-key", DELIVERIES)["webhookDeliveries"]
    assert received, "the order.completed webhook never arrived"
    assert {r["body"]["type"] for r in received} == {"order.completed"}
    assert {r["body"]["data"]["orderId"] for r in received} == {order["id"]}
    assert len({r["webhook-id"] for r in received}) == 1
    [delivery] = listed["deliveries"]
    assert delivery["status"] == "DELIVERED" and delivery["attempts"] >= 2
