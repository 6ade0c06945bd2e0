"""`python -m bench`: run the benchmarks and write docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import catalog, overhead


def _overhead_section(load: dict[str, Any]) -> str:
    rows = []
    for concurrency, row in load["p1_p4"].items():
        rows.append(
            f"| {concurrency} | {row['direct']['p50_ms']:.2f} ms"
            f" | {row['gateway']['p50_ms']:.2f} ms"
            f" | {row['p50_ratio']:.2f}x | {row['p99_ratio']:.2f}x"
            f" | {row['direct']['rps']:.0f} | {row['gateway']['rps']:.0f}"
            f" | {row['throughput_ratio']:.0%} |"
        )
    p2 = ", ".join(f"N={n}: {calls}" for n, calls in load["p2_upstream_calls"].items())
    return (
        "## P1/P4: `order(id)` through the gateway vs a bare endpoint (same provider call)\n\n"
        "Three processes on loopback: the Roamify simulator, `esim-gateway serve` and a bare"
        " Starlette endpoint making the same `GET /api/esim/order` with the same client stack"
        " (httpx over httpx-aiohttp). A bounded asyncio client, 3 s per cell after warm-up."
        " Targets: p50 ratio <= 1.3, throughput >= 75 %.\n\n"
        "| concurrency | direct p50 | gateway p50 | p50 ratio | p99 ratio | direct req/s |"
        " gateway req/s | throughput |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + "\n\nThe targets do not hold yet. Profiling `order(id)` first put most of its time in"
        " the ledger read; a short-lived read cache evicted by the LISTEN/NOTIFY change events"
        " took the p50 ratio from 3.3x to the figure above. What remains is Strawberry's"
        " execution, authentication, per-request loaders and logging around a 0.3 ms provider"
        " call.\n\n"
        f"## P2: upstream calls for N orders with their eSIMs\n\n{p2}.\n\n"
        "Two calls per Roamify order (the order, and its eSIM list): one per distinct upstream"
        " resource, never more with duplicates or aliases, but growing with N because Roamify"
        " has no batch read by order id.\n"
    )


def main() -> int:
    result = asyncio.run(catalog.run())
    load = overhead.run(seconds=3.0)
    out = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        "# Benchmarks\n\n"
        f"Produced by `make bench` (`python -m bench`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC,"
        f" Python {platform.python_version()}, {platform.machine()}. Every figure is a ratio"
        " against a baseline measured in the same run.\n\n"
        "## Catalog: filtered `packages` query from the snapshot\n\n"
        "Query: plans covering JP, at least 7 days and 3,000 MB, cheapest 20, with prices."
        " Baseline: the same filter, order and page as a plain Python function over the"
        " same snapshot. Median of 200 rounds after 20 warm-up rounds, in process (ASGI).\n\n"
        "| plans in snapshot | memory allocated while loading | plain function | GraphQL request"
        " | ratio |\n"
        "| --- | --- | --- | --- | --- |\n"
        f"| {result['plans']} | {result['snapshot_mb']} MB | {result['plain_ms']} ms |"
        f" {result['graphql_ms']} ms | {result['ratio']}x |\n\n"
        "The goal was at most 2x. It does not hold: the plain function only filters a"
        " country index and slices, while the request also parses and validates the"
        " document (cached), runs the limits, and resolves and serialises ~200 fields"
        " through graphql-core, about 2.5 ms of the total. Done so far: a per-country"
        " index, memoised USD conversion, attribute fields on `Package` (no resolver per"
        " field), cache-friendly validation rules and cached cost/directive checks, which"
        " took the ratio from 12x to the figure above.\n\n" + _overhead_section(load)
    )
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
