"""Provider wire models: the msgspec structs against the hand-written readers they replaced.

`python -m bench.models`. The old readers are loaded, for this run only, from git
(`OLD_REVISION`, the last commit with them) into throwaway modules; the bodies are the
simulators' own answers, captured through the real clients. Each body is parsed by both,
interleaved, and also parsed and mapped by the gateway's functions (which read the
derived values: the new models compute some of them on access). Two bodies are given an
odd form the old readers took (a null, a number as text), which the models read in their
second, lenient pass (`wire.decode`). CPU per parse: median of interleaved rounds, in
microseconds.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from esim_gateway.providers.roamify import RoamifyClient
from esim_gateway.providers.roamify import gateway as roamify_gateway
from esim_gateway.providers.roamify import models as roamify
from esim_gateway.providers.simplifytrip import SimplifyTripClient
from esim_gateway.providers.simplifytrip import gateway as st_gateway
from esim_gateway.providers.simplifytrip import models as st
from esim_gateway.providers.wire import decode
from esim_gateway.sandbox.roamify import create_roamify_sandbox
from esim_gateway.sandbox.simplifytrip import create_simplifytrip_sandbox
from esim_gateway.sandbox.transport import SandboxTransport

#: the last commit with the hand-written readers
OLD_REVISION = "ad2952f"
ROOT = Path(__file__).resolve().parents[1]


def _old(path: str) -> Any:
    source = subprocess.run(
        ["git", "show", f"{OLD_REVISION}:{path}"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    module = types.ModuleType(f"old_{Path(path).parent.name}_models")
    sys.modules[module.__name__] = module  # dataclasses looks its module up
    exec(compile(source, path, "exec"), module.__dict__)
    return module


class _Recorder(httpx.AsyncBaseTransport):
    """The simulator's answers, decoded, by path (the last one of each)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.bodies: dict[str, Any] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.bodies[request.url.path] = response.json()
        return response


async def _roamify_bodies() -> dict[str, Any]:
    sandbox = create_roamify_sandbox()
    recorder = _Recorder(SandboxTransport(sandbox.app))
    async with httpx.AsyncClient(transport=recorder, base_url="http://roamify.sandbox") as http:
        client = RoamifyClient(http, token="sandbox-roamify-token")
        page = await client.packages(page=1, page_size=300)
        plain = [p for p in page.packages if not p.requires_travel_date]
        order = await client.create_instant_order([(plain[0].package_id, 3)])
        await client.usage_details(order.esims[0].iccid or "")
    await sandbox.aclose()
    return {path: body["data"] for path, body in recorder.bodies.items()}


async def _simplifytrip_bodies() -> dict[str, Any]:
    sandbox = create_simplifytrip_sandbox(fulfil_delay=0.0)
    recorder = _Recorder(SandboxTransport(sandbox.app))
    async with httpx.AsyncClient(transport=recorder, base_url="http://st.sandbox") as http:
        client = SimplifyTripClient(
            http,
            api_key="pk_test_sandbox",
            secret_key="sk_test_sandbox",
            checksum_key="ck_test_sandbox",
        )
        page = await client.products(type="eSIM", take=50)
        created = await client.create_order(
            "bench-1", [("bench-1-0", page.items[0].variations[0].sku, 3)]
        )
        await sandbox.settle()
        order = await client.get_order(created.order_id)
        await client.esim_status(order.items[0].iccids[0])
    await sandbox.aclose()
    return recorder.bodies


def _medians(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    for run in runs.values():
        for _ in range(rounds // 5):
            run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.process_time()
            for _ in range(10):
                run()
            samples[name].append((time.process_time() - started) / 10)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def _then(parse: Callable[[], Any], mapping: Callable[[Any], object]) -> Callable[[], object]:
    return lambda: mapping(parse())


def run(rounds: int = 200) -> list[tuple[str, float, float, float, float]]:
    """(body, old parse, new parse, old parse + mapping, new parse + mapping), in us."""
    old_r = _old("src/esim_gateway/providers/roamify/models.py")
    old_st = _old("src/esim_gateway/providers/simplifytrip/models.py")
    r = asyncio.run(_roamify_bodies())
    s = asyncio.run(_simplifytrip_bodies())
    catalog, order, usage = (
        r["/api/esim/packages"],
        r["/api/esim/order/instant"],
        r["/api/esim/usage/details"],
    )
    products = s["/api/v1/products"]
    details = next(body for path, body in s.items() if path.startswith("/api/v1/orders/"))
    status = next(body for path, body in s.items() if path.startswith("/api/v1/products/esim/"))
    # odd forms the hand-written readers took: the models read these in a second pass
    odd_order = {**order, "esims": [{**order["esims"][0], "esim": None}, *order["esims"][1:]]}
    odd_items = [{**details["items"][0], "quantity": "1.0"}, *details["items"][1:]]
    odd_details = {**details, "hasPendingReturn": None, "items": odd_items}
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any], Callable[[Any], object]]] = [
        (
            f"Roamify catalog page ({len(catalog['packages'])} packages)",
            lambda: old_r.RoamifyPackagePage.from_json(catalog),
            lambda: roamify.RoamifyPackagePage.from_json(catalog),
            lambda page: [roamify_gateway.catalog_package(p) for p in page.packages],
        ),
        (
            f"Roamify instant order ({len(order['esims'])} eSIMs)",
            lambda: old_r.RoamifyOrder.from_json(order),
            lambda: roamify.RoamifyOrder.from_json(order),
            roamify_gateway.provider_order,
        ),
        (
            f"Roamify usage details ({len(usage.get('dataUsages') or [])} days)",
            lambda: old_r.RoamifyUsage.from_json(usage),
            lambda: roamify.RoamifyUsage.from_json(usage),
            roamify_gateway._usage,
        ),
        (
            f"SimplifyTrip product page ({len(products['items'])} products)",
            lambda: old_st.STPage.from_json(products, old_st.STProduct.from_json),
            lambda: decode(products, st.STPage[st.STProduct]),
            lambda page: [st_gateway._package(p, v) for p in page.items for v in p.variations],
        ),
        (
            f"SimplifyTrip order details ({sum(len(i['eSims']) for i in details['items'])} eSIMs)",
            lambda: old_st.STOrder.from_json(details),
            lambda: st.STOrder.from_json(details),
            st_gateway._from_details,
        ),
        (
            "Roamify instant order, one `esim: null`",
            lambda: old_r.RoamifyOrder.from_json(odd_order),
            lambda: roamify.RoamifyOrder.from_json(odd_order),
            roamify_gateway.provider_order,
        ),
        (
            'SimplifyTrip order details, a null and a `"1.0"`',
            lambda: old_st.STOrder.from_json(odd_details),
            lambda: st.STOrder.from_json(odd_details),
            st_gateway._from_details,
        ),
        (
            "SimplifyTrip eSIM status",
            lambda: old_st.STEsimStatus.from_json(status),
            lambda: st.STEsimStatus.from_json(status),
            st_gateway._usage,
        ),
    ]
    rows = []
    for name, old, new, mapping in cases:
        figures = _medians(
            {
                "old": old,
                "new": new,
                "old+map": _then(old, mapping),
                "new+map": _then(new, mapping),
            },
            rounds,
        )
        rows.append((name, figures["old"], figures["new"], figures["old+map"], figures["new+map"]))
    return rows


def table(rows: list[tuple[str, float, float, float, float]]) -> str:
    lines = [
        "| body | hand-written | msgspec | ratio | hand-written + mapping | msgspec + mapping"
        " | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, old, new, old_map, new_map in rows:
        lines.append(
            f"| {name} | {old:.1f} us | {new:.1f} us | {new / old:.2f}x"
            f" | {old_map:.1f} us | {new_map:.1f} us | {new_map / old_map:.2f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(run()))
