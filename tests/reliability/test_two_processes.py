"""Two gateway processes on one PostgreSQL ledger, the same idempotency keys sent to both
at once: each key buys exactly once. Real processes (`esim-gateway serve`) and a real
simulator process (`esim-gateway sandbox`), talking over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

# `make test` runs the suite in parallel workers; each test here starts several real gateway
# and simulator processes, so one worker runs them one after another (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("real-processes")

CREATE = """mutation($input: CreateOrderInput!) { createOrder(input: $input) { __typename
  ... on Order { id status reference } ... on Error { message } } }"""
#: the one client of these tests' calls to their processes: a client per call (httpx.get)
#: loads the CA bundle anew (~30 ms of CPU), and the tests poll hundreds of times; no
#: connection kept alive, as the processes come and go
LOOPBACK = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if LOOPBACK.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise TimeoutError(url)


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str], ready: str) -> Iterator[None]:
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "esim_gateway", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(ready, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ESIM_GATEWAY_")}


def replica_env(database_url: str, sandbox: str, **extra: str) -> dict[str, str]:
    """The environment of a gateway process on `database_url`, its providers at the
    simulator process `sandbox`; `extra` are more ESIM_GATEWAY_ variables."""
    return {
        **clean_env(),
        "ESIM_GATEWAY_DATABASE_URL": database_url,
        "ESIM_GATEWAY_ROAMIFY_BASE_URL": f"{sandbox}/roamify",
        "ESIM_GATEWAY_SIMPLIFYTRIP_BASE_URL": f"{sandbox}/simplifytrip",
        "ESIM_GATEWAY_RATE_LIMIT_PER_SECOND": "10000",
        "ESIM_GATEWAY_RATE_LIMIT_BURST": "10000",
        "ESIM_GATEWAY_LOG_LEVEL": "WARNING",
        **{f"ESIM_GATEWAY_{name}": value for name, value in extra.items()},
    }


@contextlib.contextmanager
def simulators(port: int) -> Iterator[str]:
    """The simulator process (`esim-gateway sandbox`) on `port`; yields its base URL."""
    sandbox = f"http://127.0.0.1:{port}"
    with running(
        ["sandbox", "--port", str(port), "--fulfil-delay", "0"],
        clean_env(),
        f"{sandbox}/roamify/_sandbox/calls",
    ):
        yield sandbox


def serving(port: int, env: dict[str, str]) -> contextlib.AbstractContextManager[None]:
    return running(["serve", "--port", str(port)], env, f"http://127.0.0.1:{port}/healthz")


def roamify_package(sandbox: str) -> str:
    """A Roamify package id that needs no travel date."""
    packages = LOOPBACK.get(
        f"{sandbox}/roamify/api/esim/packages",
        params={"page": 1, "pageSize": 50},
        headers={"authorization": "Bearer sandbox-roamify-token"},
    ).json()
    package_id: str = next(
        p["packageId"] for p in packages["data"]["packages"] if "requirements" not in p
    )
    return package_id


@pytest.mark.postgres
def test_the_same_keys_sent_to_two_gateway_processes_buy_once_each(
    clean_postgres: str,
) -> None:
    sandbox_port, first_port, second_port = free_port(), free_port(), free_port()
    with simulators(sandbox_port) as sandbox:
        gateway_env = replica_env(clean_postgres, sandbox)
        package_id = roamify_package(sandbox)
        # first process migrates; the second starts on the migrated database
        with serving(first_port, gateway_env), serving(second_port, gateway_env):
            keys = [f"shared-key-{i}" for i in range(8)]
            results = asyncio.run(_send_to_both(first_port, second_port, package_id, keys))
        calls = LOOPBACK.get(f"{sandbox}/roamify/_sandbox/calls").json()
    purchases = [c for c in calls if c["method"] == "POST" and c["path"] == "/api/esim/order"]
    references = [c["body"]["referenceId"] for c in purchases]
    assert len(references) == len(set(references)) == len(keys)
    by_key: dict[str, set[str]] = {}
    for key, body in results:
        order = body["data"]["createOrder"]
        assert order["__typename"] == "Order", body
        by_key.setdefault(key, set()).add(order["id"])
    assert all(len(ids) == 1 for ids in by_key.values())


async def _send_to_both(
    first: int, second: int, package_id: str, keys: list[str]
) -> list[tuple[str, Any]]:
    async with httpx.AsyncClient(timeout=60) as client:

        async def send(port: int, key: str) -> tuple[str, Any]:
            response = await client.post(
                f"http://127.0.0.1:{port}/graphql",
                json={
                    "query": CREATE,
                    "variables": {
                        "input": {
                            "provider": "ROAMIFY",
                            "idempotencyKey": key,
                            "items": [{"packageId": package_id, "quantity": 1}],
                        }
                    },
                },
            )
            return key, response.json()

        return list(
            await asyncio.gather(
                *(send(port, key) for key in keys for port in (first, second, first, second))
            )
        )


def test_serve_with_two_workers_answers_and_shuts_down(tmp_path: Any) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESIM_GATEWAY_")}
    env["ESIM_GATEWAY_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    env["ESIM_GATEWAY_LOG_LEVEL"] = "WARNING"
    with running(
        ["serve", "--port", str(port), "--workers", "2"], env, f"http://127.0.0.1:{port}/healthz"
    ):
        answers = {
            LOOPBACK.post(
                f"http://127.0.0.1:{port}/graphql",
                timeout=30,
                json={"query": "{ packages(first: 1) { totalCount } }"},
            ).json()["data"]["packages"]["totalCount"]
            for _ in range(6)
        }
        assert len(answers) == 1 and answers.pop() > 1000
