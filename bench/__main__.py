"""`python -m bench`: run the benchmarks and write docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import catalog, load, micro, models, profile
from bench.load import Run


def _verdict(ok: bool) -> str:
    return "holds" if ok else "**does not hold**"


def _catalog_section(result: dict[str, Any]) -> str:
    layer, request = result["layer_ratio"], result["request_ratio"]
    return (
        "## Catalog: a filtered `packages` query served from the snapshot\n\n"
        "Query: plans covering JP, at least 7 days and 3,000 MB, cheapest 20, with prices"
        " (~280 fields). Baseline: the same filter, order and page computed by a plain Python"
        " function scanning the same snapshot, returning the same values. Median of"
        f" {result['rounds']} rounds after warm-up, in one process. 'GraphQL layer' is"
        " `schema.execute` with the request's context; 'HTTP request' adds the ASGI view"
        " (authentication, limits, JSON) and an in-process ASGI client.\n\n"
        "| plans in snapshot | snapshot memory | plain function | GraphQL layer | ratio |"
        " HTTP request | ratio |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {result['plans']} | {result['snapshot_mb']} MB | {result['plain_ms']} ms"
        f" | {result['layer_ms']} ms | {layer}x | {result['request_ms']} ms | {request}x |\n\n"
        "Rounds are interleaved (plain, layer, request, plain, ...), as requests are served"
        " among other work. Each run alone in a tight loop instead, its own data hot in"
        f" the CPU caches, the plain scan takes {result['plain_alone_ms']} ms and the layer"
        f" {result['layer_alone_ms']} ms: {result['layer_ratio_alone']}x. The scan gains"
        " most from hot caches (it touches every plan of the snapshot), so that figure is"
        " the pessimistic reading of the goal.\n\n"
        "Goal: the GraphQL layer adds no more than 2x: interleaved"
        f" {_verdict(layer <= 2)}, alone {_verdict(result['layer_ratio_alone'] <= 2)}."
        f" The resolver alone (country index, lists pre-sorted per destination, one pass per"
        f" filter, page) takes {result['resolver_ms']} ms, less than the plain scan; the"
        f" other {result['layer_ms'] - result['resolver_ms']:.2f} ms are Strawberry's"
        " operation machinery (P8 below), argument conversion and completing ~280 fields."
        " Most of those fields only read an attribute; the gateway's execution context"
        " (`esim_gateway.schema.execution`) serves them without graphql-core's per-field"
        " machinery and hands anything unusual to graphql-core, which answers identically"
        " (tests/api/test_execution.py). Through Strawberry's own execution the same layer"
        f" takes {result['layer_strawberry_ms']} ms"
        f" ({result['layer_strawberry_ms'] / result['plain_ms']:.2f}x).\n"
    )


def _run_cells(cells: dict[str, Run], baseline: str, subject: str) -> str:
    base, mine = cells[baseline], cells[subject]
    return (
        f"| {base.p50_ms:.2f} ms | {mine.p50_ms:.2f} ms | {mine.p50_ms / base.p50_ms:.2f}x"
        f" | {mine.p99_ms / base.p99_ms:.2f}x | {base.rps:.0f} | {mine.rps:.0f}"
        f" | {mine.rps / base.rps:.0%} |"
    )


def _micro_section(result: dict[str, Any]) -> str:
    p7, p8, p9 = result["p7"], result["p8"], result["p9"]
    ours, aiohttp, default = p9["adapters"], p9["httpx over aiohttp"], p9["httpx default"]
    growth = ours["concurrent_50_us"] / ours["sequential_us"]
    return (
        "## In-process: where a request's CPU goes (P7, P8, P9)\n\n"
        "CPU time of this process (waiting not counted), median of 5 batches.\n\n"
        "| measure | figure | target |\n| --- | --- | --- |\n"
        f"| P7: 1,000 objects x 3 fields, the gateway's execution | {p7['ms']:.1f} ms"
        f" | <= 10 ms: {_verdict(p7['ms'] <= 10)} |\n"
        f"| P7: the same through Strawberry's own execution | {p7['strawberry_ms']:.1f} ms"
        " | (what QUALITY.md measured) |\n"
        f"| P8: cached `{{ __typename }}` through our schema (its straight execution path)"
        f" | {p8['tuned_us']:.0f} us | <= 100 us: {_verdict(p8['tuned_us'] <= 100)} |\n"
        f"| P8: the same, naive build (no parser/validation caches) | {p8['naive_us']:.0f} us"
        " | (baseline) |\n"
        f"| P9: client CPU per GET, the adapters' stack (httpx `ProviderClient` over"
        f" reqwest), one at a time | {ours['sequential_us']:.0f} us"
        f" | <= 300 us: {_verdict(ours['sequential_us'] <= 300)} |\n"
        f"| P9: the same, 50 at once | {ours['concurrent_50_us']:.0f} us"
        f" | <= 1.5x of one at a time ({growth:.2f}x): {_verdict(growth <= 1.5)} |\n"
        f"| P9: httpx.AsyncClient over aiohttp (the stack before issue 12's third round),"
        f" one at a time / 50 at once | {aiohttp['sequential_us']:.0f} /"
        f" {aiohttp['concurrent_50_us']:.0f} us | (`ESIM_GATEWAY_HTTP_TRANSPORT=aiohttp`) |\n"
        f"| P9: httpx's default transport, one at a time / 50 at once"
        f" | {default['sequential_us']:.0f} / {default['concurrent_50_us']:.0f} us"
        " | (`ESIM_GATEWAY_HTTP_TRANSPORT=httpx`) |\n\n"
        "QUALITY.md measured P7 at 8.6 ms and httpx over aiohttp at 228 us per GET on its"
        " reference machine: the same library code runs"
        f" {statistics.mean([p7['strawberry_ms'] / 8.6, aiohttp['sequential_us'] / 228]):.1f}x"
        " slower"
        " here, which matters for the absolute budgets below (0.5 ms added p50, 1,000"
        " requests per core-second); the ratios compare like with like.\n"
    )


def _load_section(
    result: dict[str, Any], seconds: float, runs: int, micro_result: dict[str, Any]
) -> str:
    header = (
        "| concurrency | direct p50 | gateway p50 | p50 ratio | p99 ratio | direct req/s"
        " | gateway req/s | throughput |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    p1 = result["p1_p4"]
    c1, c10 = p1[1], p1[10]
    p1_ok = c1["gateway"].p50_ms / c1["direct"].p50_ms <= 1.3
    p4_ok = all(p1[c]["gateway"].rps / p1[c]["direct"].rps >= 0.75 for c in (1, 10))
    trivial = result["p3"]
    p3_ratio = trivial["gateway"].rps / trivial["plain"].rps
    naive = result["naive"]
    naive_ratio = naive["tuned"].rps / naive["naive"].rps
    p5 = result["p5"]
    per_core = p5["requests"] / p5["cpu_seconds"]
    gateway_us = p5["cpu_seconds"] / p5["requests"] * 1e6
    bare_us = p5["bare_cpu_seconds"] / p5["bare_requests"] * 1e6
    trivial_us = micro_result["p8"]["tuned_us"]
    rate = result["p6"]["rate"]
    tail: Run = result["p6"]["run"]
    tail_ratio = tail.p99_ms / tail.p50_ms
    bare_tail: Run = result["p6"]["bare"]
    bare_tail_ratio = bare_tail.p99_ms / bare_tail.p50_ms
    p6 = result["p6"]
    low: Run = p6["low"]
    low_ratio = low.p99_ms / low.p50_ms
    memory = result["memory"]
    growth = memory["rss_10k_mb"] / memory["rss_1k_mb"] - 1
    batch = result["batch"]
    batch_ratio = batch["graphql_ms"] / batch["rest_ms"]
    p2 = ", ".join(f"N={n}: {calls}" for n, calls in result["p2_upstream_calls"].items())
    return (
        "## Load over loopback\n\n"
        "Processes: the provider simulator, `esim-gateway serve` (live mode, an API key,"
        " SQLite ledger, its default provider client: httpx `ProviderClient` over reqwest),"
        " a bare Starlette app making the same provider call with `httpx.AsyncClient` over"
        " httpx-aiohttp (the baseline as issue 12 defined it), and the naive build. Gateway and"
        " baselines pinned to core 0 (`taskset`), simulator and load generator on core 1."
        " Load: a keep-alive HTTP/1.1 client on raw asyncio streams; each cell is a 1 s"
        f" warm-up then {runs} interleaved runs of {seconds:g} s, median run shown.\n\n"
        "### P1/P4: `order(id)` vs a bare endpoint doing the same provider call\n\n"
        "Targets: p50 ratio <= 1.3 at concurrency 1, throughput >= 75 %.\n\n"
        f"{header}\n"
        f"| 1 {_run_cells(c1, 'direct', 'gateway')}\n"
        f"| 10 {_run_cells(c10, 'direct', 'gateway')}\n\n"
        f"P1 {_verdict(p1_ok)}; P4 {_verdict(p4_ok)}. Why, in figures: at saturation the"
        f" gateway process spends {gateway_us:.0f} us of CPU per `order(id)` and the bare"
        f" endpoint {bare_us:.0f} us (P5 below), so the gateway's own work is"
        + (
            f" {gateway_us - bare_us:.0f} us per request"
            if gateway_us > bare_us
            else " within this measure's noise (the two were measured a few seconds apart)"
        )
        + ": the view (API key, CSRF and"
        " body checks, rate limit, request id, metrics, access log), Strawberry's operation"
        f" machinery ({trivial_us:.0f} us for a cached `{{ __typename }}`, P8), the ledger"
        " read (from its 2 s cache), per-request loaders and the adapter layers (retry"
        " context, circuit breaker, parsing the provider's JSON into our models). At"
        " concurrency 1 that CPU time is added to the latency; at concurrency 10 throughput"
        f" is bounded by CPU per request ({bare_us / gateway_us:.0%} = bare / gateway)."
        " A 1.3x p50 would leave the gateway about 0.3 ms for all of that, less than"
        " Strawberry alone takes on this machine. Done so far: parser and validation"
        " caches, cached limit checks, the ledger read cache, orjson, a frozen long-lived"
        " heap (gc.freeze), and in issue 12's third round a straight HTTP handler, a"
        " straight execution path and the reqwest transport (the budget section"
        " below).\n\n"
        "### P3: `{ __typename }` vs a plain Starlette JSON endpoint (concurrency 10)\n\n"
        f"| plain req/s | gateway req/s | ratio |\n| --- | --- | --- |\n"
        f"| {trivial['plain'].rps:.0f} | {trivial['gateway'].rps:.0f} | {p3_ratio:.0%} |\n\n"
        f"Target >= 20 %: {_verdict(p3_ratio >= 0.2)}. With the process on one busy core,"
        f" that is {1e6 / trivial['gateway'].rps:.0f} us per trivial request against"
        f" {1e6 / trivial['plain'].rps:.0f} us for the plain endpoint: the gateway's request"
        " also checks the API key, CSRF rule and body limits, takes a rate-limit token,"
        " assigns a request id, records metrics and runs Strawberry's operation (about"
        f" {trivial_us:.0f} us in process, P8), where the plain endpoint only encodes a"
        " dict.\n\n"
        "### Tuned vs naive build, `order(id)` at concurrency 10\n\n"
        "Naive: the same gateway without the parser, validation and ledger read caches,"
        " on httpx's default transport.\n\n"
        "| naive req/s | tuned req/s | ratio |\n| --- | --- | --- |\n"
        f"| {naive['naive'].rps:.0f} | {naive['tuned'].rps:.0f} | {naive_ratio:.2f}x |\n\n"
        f"Target >= 4x: {_verdict(naive_ratio >= 4)}.\n\n"
        "### P5: requests per core-second, `order(id)` at saturation\n\n"
        f"{p5['requests']} requests in {p5['cpu_seconds']:.2f} CPU seconds of the gateway"
        f" process: **{per_core:.0f} requests per core-second** (reported; the QUALITY.md"
        f" aim is 1,000: {_verdict(per_core >= 1000)}). The bare endpoint, same provider"
        f" call: {p5['bare_requests'] / p5['bare_cpu_seconds']:.0f} per core-second.\n\n"
        + _gc_sentence(p5)
        + "### P6: tail latency at a fixed arrival rate\n\n"
        f"{rate:.0f} requests/s (half the capacity measured just before)"
        f" for {p6['seconds']:g} s, open loop (latency counted from when each"
        f" request was due): p50 {tail.p50_ms:.2f} ms, p99 {tail.p99_ms:.2f} ms,"
        f" p99/p50 = {tail_ratio:.2f}, {tail.errors} errors of {tail.requests}; the"
        f" gateway's core was {p6['busy']:.0%} busy. The bare endpoint at the same rate:"
        f" p50 {bare_tail.p50_ms:.2f} ms, p99 {bare_tail.p99_ms:.2f} ms, p99/p50 ="
        f" {bare_tail_ratio:.2f}, its core {p6['bare_busy']:.0%} busy.\n\n"
        + (
            "The bare endpoint missed the same target in this run with its core only"
            f" {p6['bare_busy']:.0%} busy: this machine stalled during the runs, so these"
            " tails say little about either server (a rerun decides).\n\n"
            if bare_tail_ratio > 3
            else ""
        )
        + f"Target p99 <= 3x p50 with zero errors: {_verdict(tail_ratio <= 3 and not tail.errors)}"
        f". Half the saturated capacity is not half a core: requests arriving one by one"
        f" cost the gateway {p6['busy'] / rate * 1e6:.0f} us of CPU each here, against"
        f" {gateway_us:.0f} us back to back at saturation (the event loop wakes up, polls"
        " and switches for each one instead of for a batch)."
        + (
            " Stalls this long were traced to full garbage collections and to catalog"
            " refreshes (both below, both fixed); an `order(id)` whose provider read"
            " overlaps a refresh still waits longer on the provider (the access log shows"
            " it as provider time), which this run may have met, and this machine's runs"
            " vary widely (p99/p50 from 3.1 to 40 on the same code)."
            if tail.p99_ms >= 50
            else f" No long stall in this run (p99 {tail.p99_ms:.1f} ms, against the"
            " 100-230 ms stalls described below); what is left of the tail is not traced"
            " to a cause yet."
        )
        + " At half this rate"
        f" ({rate / 2:.0f} requests/s) its core is {p6['low_busy']:.0%} busy: p50"
        f" {low.p50_ms:.2f} ms, p99 {low.p99_ms:.2f} ms, p99/p50 = {low_ratio:.2f},"
        f" {low.errors} errors. Full garbage collections were long stalls once (up to"
        " ~100 ms with the catalog in the heap); the server now freezes its long-lived"
        " objects and defers full collections while a snapshot is built"
        " (`esim_gateway.ops.heap`): none over ~12 ms in a 60 s run at this rate. A catalog"
        " refresh (every 5 minutes) normalised thousands of plans in one pass and held"
        " every request for 130-230 ms; it now works in slices (`esim_gateway.ops.slices`),"
        " and a trivial query's p99 stays under 5 ms through refreshes at 200"
        " requests/s.\n\n"
        "### Memory\n\n"
        f"Gateway RSS after 1,000 requests: {memory['rss_1k_mb']:.1f} MB; after 10,000:"
        f" {memory['rss_10k_mb']:.1f} MB ({growth:+.1%}). Target: no growth beyond 10 %:"
        f" {_verdict(growth <= 0.10)}.\n\n"
        "### A batch of 50 orders vs 50 REST calls\n\n"
        f"`orders(first: 50)` with each order's eSIMs (fresh provider reads) vs a client"
        f" calling `GET /api/esim/order` 50 times one by one, {batch['latency_ms']:.0f} ms of"
        f" provider latency on every call: {batch['graphql_ms']:.0f} ms vs"
        f" {batch['rest_ms']:.0f} ms, ratio {batch_ratio:.2f}. Target <= 0.2:"
        f" {_verdict(batch_ratio <= 0.2)}.\n\n"
        "### P2: upstream calls for N orders with their eSIMs\n\n"
        f"{p2}. Two calls per Roamify order (the order, and its eSIM list): one per distinct"
        " upstream resource, never more with duplicates or aliases (tests assert it), but"
        " growing with N because Roamify has no batch read by order id.\n"
    )


def _peer_section(result: dict[str, Any]) -> str:
    """Issue 12: the gateway, GraphQL Mesh and the bare endpoint side by side."""
    p1 = result["p1_p4"]
    c1, c10 = p1[1], p1[10]
    shared = result["single_flight"]
    waves = ", ".join(str(n) for n in shared["upstream_calls"])
    coalescing = (
        "### Goal 3: identical reads in flight at once, across requests\n\n"
        f"{shared['size']} concurrent `order(id)` for one order, {len(shared['upstream_calls'])}"
        f" waves, {shared['latency_ms']:.0f} ms of provider latency: upstream reads per wave"
        f" {waves}. Target one per wave:"
        f" {_verdict(all(n == 1 for n in shared['upstream_calls']))}. (Mesh and the bare"
        " endpoint send one upstream call per request: 100 per wave.)\n"
    )
    coalescing += _ledger_section(result["ledger_only"])
    if "mesh" not in c1:
        return (
            "## Against the best generic gateway (P11, issue 12)\n\n"
            "GraphQL Mesh was not run: `node` or `bench/mesh/node_modules` is missing"
            " (`make bench` runs `npm ci` there when npm is present).\n\n" + coalescing
        )
    rows = "\n".join(
        f"| {label} | {c1[name].p50_ms:.2f} ms | {c1[name].rps:.0f} | {c10[name].p50_ms:.2f} ms"
        f" | {c10[name].rps:.0f} |"
        for name, label in (
            ("direct", "bare Starlette + httpx(aiohttp), same upstream call"),
            ("mesh", "GraphQL Mesh (Hive Gateway, OpenAPI source, defaults)"),
            ("gateway", "esim-gateway `order(id) { status items { packageId quantity } }`"),
        )
    )
    throughput_ok = c10["gateway"].rps >= c10["mesh"].rps
    latency_ok = c1["gateway"].p50_ms <= c1["mesh"].p50_ms
    stretch_rps = c10["gateway"].rps / c10["direct"].rps
    stretch_p50 = c1["gateway"].p50_ms / c1["direct"].p50_ms
    return (
        "## Against the best generic gateway (P11, issue 12)\n\n"
        "The same order lookup through three servers, each one process pinned to core 0,"
        " loaded in turn in the interleaved runs above, against the same simulator. At"
        " concurrency 10 each connection reads an order of its own, on every server, so"
        " every request reaches the upstream once (the gateway would otherwise share"
        " identical reads in flight, goal 3). Mesh: `@graphql-mesh/compose-cli` +"
        " `@omnigraph/openapi` over `bench/mesh/roamify-order.openapi.json`, served by"
        " `@graphql-hive/gateway` (versions pinned in `bench/mesh/package-lock.json`).\n\n"
        "| server | c=1 p50 | c=1 req/s | c=10 p50 | c=10 req/s |\n"
        "| --- | --- | --- | --- | --- |\n"
        f"{rows}\n\n"
        f"Goal 1: throughput at c=10 >= Mesh's ({c10['gateway'].rps / c10['mesh'].rps:.2f}x):"
        f" {_verdict(throughput_ok)}; p50 at c=1 <= Mesh's"
        f" ({c1['gateway'].p50_ms / c1['mesh'].p50_ms:.2f}x): {_verdict(latency_ok)}."
        f" Stretch: >= 75 % of bare at c=10 ({stretch_rps:.0%}): {_verdict(stretch_rps >= 0.75)};"
        f" p50 <= 1.3x bare at c=1 ({stretch_p50:.2f}x): {_verdict(stretch_p50 <= 1.3)}.\n\n"
        + coalescing
    )


def _ledger_section(cells: dict[str, dict[str, Run]]) -> str:
    drivers = {"sqlite": ("SQLite", "aiosqlite"), "postgresql": ("PostgreSQL", "asyncpg")}
    rows = []
    verdicts = []
    for database, cell in cells.items():
        name, driver = drivers[database]
        ratio = cell["gateway"].p50_ms / cell["row"].p50_ms
        rows.append(
            f"| {name} (SQLAlchemy Core over {driver}) | {cell['row'].p50_ms:.2f} ms"
            f" | {cell['gateway'].p50_ms:.2f} ms | {ratio:.2f}x |"
        )
        verdicts.append(f"{name} {_verdict(ratio <= 1.3)}")
    missing = (
        ""
        if "postgresql" in cells
        else " PostgreSQL not measured: no server answered at 127.0.0.1:5432 (or"
        " `ESIM_GATEWAY_TEST_POSTGRES_URL` is `off`)."
    )
    return (
        "\n### Goal 2: an `order` answered from the ledger alone\n\n"
        "`order(id) { id status reference idempotencyKey createdAt }` (no provider field)"
        " vs a plain Starlette endpoint reading the same row of the same database with the"
        " same driver, concurrency 1; on PostgreSQL a second gateway process and the plain"
        " endpoint share one database of the run's own.\n\n"
        "| ledger | plain endpoint p50 | gateway p50 | ratio |\n| --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + f"\n\nTarget within 1.3x: {'; '.join(verdicts)}.{missing} The gateway answers from"
        " its 2 s ledger read cache most of the time; the plain endpoint reads the row"
        " each time.\n"
    )


def _budget_table(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {layer} | {figures['share']:.1%} | {figures['us']:.0f} us |"
        for layer, figures in result["layers"].items()
    )
    return "| layer | share of CPU | per request |\n| --- | --- | --- |\n" + rows + "\n"


def _gc_sentence(p5: dict[str, Any]) -> str:
    runs = p5.get("gc_collections")
    if not runs:
        return ""
    per_k = [n / p5["requests"] * 1000 for n in runs]
    return (
        "The cyclic garbage collector during those requests (the gateway's"
        " `python_gc_collections_total`): "
        + ", ".join(f"{n:.1f}" for n in per_k)
        + " runs of generations 0, 1, 2 per 1,000 requests. Issue 12's fourth round removed"
        " the reference cycle that kept every execution's state for the collector (~85"
        " objects a request), then raised the server's young-generation threshold to 5,000"
        " (`esim_gateway.ops.heap`): with the cycle gone but the default threshold (700), a run"
        " of this bench still measured 160, 14.5 and 1.3 per 1,000: collections that walk"
        " the requests in flight and find nothing.\n\n"
    )


def _budget_section(results: dict[str, dict[str, Any] | None]) -> str:
    head = "## Budget per layer: where an `order(id)`'s CPU goes (issue 12)\n\n"
    provider, ledger = results["provider"], results["ledger"]
    if provider is None or ledger is None:
        return head + "Not measured: py-spy is not installed (`pip install py-spy`).\n"
    return (
        head + "`python -m bench.profile provider|ledger`: the gateway at its default log"
        " level, py-spy sampling the process from outside; each sample goes to the layer of"
        " its innermost frame that belongs to one (the socket writes of the response are in"
        " 'HTTP and view', those of the provider call in 'httpx'; at concurrency 1 the write"
        " that wakes the client is most of 'HTTP and view').\n\n"
        "`order(id)` with one provider read, concurrency 10, one order per connection:"
        f" {provider['requests']} requests at {provider['cpu_us']:.0f} us of CPU each"
        " (sampling adds a little).\n\n"
        + _budget_table(provider)
        + "\nGoal 2's `order(id)` answered from the ledger alone, concurrency 1:"
        f" {ledger['requests']} requests at {ledger['cpu_us']:.0f} us of CPU each.\n\n"
        + _budget_table(ledger)
        + "\nMoved by issue 12's first round, each measured in isolation on this machine:"
        " 'provider registry' lost ~100 us per read (stamina's retry context is built only"
        " after a first attempt failed: 108 -> 5.6 us for a no-op read); 'httpx' lost ~60 us"
        " per provider call (the adapters hand httpx one absolute URL instead of a path and"
        " params it parsed three times) and ~19 us more (no cookie jar: the providers"
        " authenticate by header); 'logging and metrics' lost uvicorn's access line and"
        " httpx's line per provider call (off unless DEBUG or"
        " `ESIM_GATEWAY_LIBRARY_ACCESS_LOGS`), and `InstrumentedTransport` went from ~13 to"
        " ~5 us per provider call (no span work with tracing off, labelled metric children"
        " kept). Single flight adds ~16 us per shared read (a task), and saves a whole"
        " upstream call for every request that joins one.\n\n"
        "Moved by the second round: 'logging and metrics': the access line redacts its"
        " fields before our own clock, level and logger name are added (they carry no"
        " request text; scanning them cost ~5 us a line), plain numbers skip the redaction"
        " walk, and a fresh request id is 16 random bytes in hex instead of a UUID object:"
        " ~32 -> ~25 us per access line in isolation; 'execution': Strawberry's MaskErrors"
        " checked every result with an `isinstance` against a runtime-checkable Protocol"
        " (~7 us per request; the gateway's subclass asks for `errors` directly), fields"
        " that are plain methods of their type (`def status(self) -> OrderStatus`) take the"
        " short execution path like attribute fields (a ledger-only order: 1863 -> 1675"
        " Python calls per request), and an order item's price is canonicalised only when"
        " `unitPrice` is asked for (~4 us a line).\n\n"
        "Third round. First a correction: the budgets of the first two rounds put 64 % of"
        " the samples under 'event loop and other'. uvloop resumes a coroutine with only"
        " its own task's frames on the stack, and the profiler counted every such sample"
        " as 'other'; classified by their frames (as now), the same profile gave 'httpx'"
        " 24 %, 'execution' 22 %, 'HTTP and view' 20 %, 'logging and metrics' 8 %: the gap"
        " to the peers was in layers of ours after all. Moved: 'httpx': provider calls go"
        " through `ProviderClient`, whose `send()` hands the request straight to its"
        " transport (httpx's pipeline of auth and redirect generators, cookie extraction"
        " and timers cost ~170 us a call), over `ReqwestTransport` (pyreqwest: Rust reqwest"
        " and hyper) instead of httpx-aiohttp: client CPU per call ~600-700 -> ~200-400 us"
        " (P9 above); 'HTTP and view': GET and POST /graphql are answered by one straight"
        " handler (`esim_gateway.http.endpoint`) ahead of Starlette's middleware stack"
        " and router, without Starlette or Strawberry request and response objects (the"
        " ledger-only `order` 7-25 % less CPU in process); 'execution': the schema runs"
        " queries and mutations on a straight path with the same document gate, span,"
        " metrics and masking, without Strawberry's extension runner (a cached"
        " `{ __typename }` ~150 -> ~55 us in process; P8); 'loaders': an order found fresh"
        " in the ledger's read cache skips its loader, and a provider batch of one key is"
        " awaited without a gathered task; 'logging and metrics': no caller, thread or"
        " process lookups per log record (~35 us a line) and a literal pre-check before"
        " the secret scan (which cost 2-35 us a value).\n\n"
        "Fourth round. Spread over every layer, and so on no line of the budget: the cyclic"
        " garbage collector. graphql-core's executor kept its async helpers as its own bound"
        " methods, a reference cycle holding each execution's state (context, loaders,"
        " results: ~85 objects a request) until a collection; those leftovers filled the"
        " young generation, so it was collected every ~8 requests, and fully every ~1,200,"
        " ~80-90 us of GC CPU per `order(id)` (measured in process with gc callbacks). The"
        " tuned executor holds itself weakly there: ~5 us (P5 reports the collector's runs"
        " per 1,000 requests). 'httpx': between `ProviderClient` and `ReqwestTransport` a"
        " call travels as plain parts (`providers/parts.py`: method, URL, header list,"
        " body; status, headers, body back), not as httpx Request, URL, Headers and Response"
        " objects: the adapters' client stack ~120 -> ~30 us of CPU a call above pyreqwest"
        " alone; httpx stays the adapters' API and every other transport gets httpx"
        " objects as before. 'logging and metrics': the access line goes through the same"
        " processors onto the same stream without the stdlib round trip (LogRecord,"
        " handler chain, ProcessorFormatter's copy) while the configuration is"
        " `configure_logging`'s own: ~35 -> ~20 us for a request's accounting in"
        " isolation.\n"
    )


def _load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the machine was besides us."""
    return " / ".join(f"{figure:.1f}" for figure in os.getloadavg())


def main() -> int:
    seconds = float(os.environ.get("BENCH_SECONDS", "3"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    tail_seconds = float(os.environ.get("BENCH_TAIL_SECONDS", "20"))
    load_before = _load_average()
    catalog_result = asyncio.run(catalog.run())
    micro_result = micro.run()
    models_rows = models.run()
    load_result = load.run(seconds=seconds, runs=runs, tail_seconds=tail_seconds)
    profile_result = {shape: profile.run(shape=shape) for shape in profile.SHAPES}
    load_after = _load_average()
    out = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        "# Benchmarks\n\n"
        f"Produced by `make bench` (`python -m bench`) on {datetime.now(UTC):%Y-%m-%d %H:%M}"
        f" UTC, Python {platform.python_version()}, {platform.machine()},"
        f" {os.cpu_count()} cores; load average (1 / 5 / 15 min, other work on the machine"
        f" included) {load_before} when it started and {load_after} when it ended. Every"
        " figure is a ratio against a baseline measured in the same run; absolute numbers"
        " are this machine's only.\n\n"
        + _catalog_section(catalog_result)
        + "\n"
        + _micro_section(micro_result)
        + "\n## Provider wire models: msgspec structs vs the hand-written readers\n\n"
        + (models.__doc__ or "").split("\n\n", 1)[1]
        + "\n"
        + models.table(models_rows)
        + "\n"
        + _load_section(load_result, seconds, runs, micro_result)
        + "\n"
        + _peer_section(load_result)
        + "\n"
        + _budget_section(profile_result)
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
