"""Same-run A/B of two revisions of the gateway (issue 21: a move that changes no
behaviour must not make `make bench`'s ratios worse).

`python -m bench.ab BASELINE` (`make ab BASELINE=<rev>`) builds the baseline revision in a
worktree and venv of its own, then serves `order(id)` (one provider read) from both
revisions, the bare Starlette endpoint and GraphQL Mesh (when `bench/mesh` is installed),
each pinned to core 0 with the simulator and this load generator on core 1, and measures
them in interleaved runs at concurrency 1 and 10 as `make bench` does (P1/P4/P11). It
prints each subject's median run and the two revisions' ratios to the bare endpoint and
to Mesh, and the CPU each revision spends per request at concurrency 10 (P5).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

from bench.load import (
    API_KEY,
    BARE_APP,
    MESH_QUERY,
    ORDER_QUERY,
    Run,
    Target,
    _cells,
    _orders,
    _pinned,
    _port,
    _process,
    closed_loop,
    compose_mesh,
    cpu_seconds,
    mesh_command,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Upstream:
    upstream: str


@contextlib.contextmanager
def baseline_python(revision: str, folder: Path) -> Iterator[str]:
    """A venv with `revision` of the project installed (editable, from a worktree)."""
    tree = folder / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        venv = folder / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        constraints = tree / "constraints.txt"
        extra = ["-c", str(constraints)] if constraints.exists() else []
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "-e", str(tree), *extra], check=True
        )
        yield python
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
        )


def _gateway_env(base: dict[str, str], folder: Path, name: str, upstream: str) -> dict[str, str]:
    return {
        **base,
        "ESIM_GATEWAY_MODE": "live",
        "ESIM_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/{name}.db",
        "ESIM_GATEWAY_ROAMIFY_BASE_URL": upstream,
        "ESIM_GATEWAY_ROAMIFY_TOKEN": "sandbox-roamify-token",
        "ESIM_GATEWAY_API_KEYS": f"bench:customer:{API_KEY}",
        "ESIM_GATEWAY_LOG_LEVEL": "INFO",
        "ESIM_GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
        "ESIM_GATEWAY_RATE_LIMIT_BURST": "1000000",
    }


def run(revision: str, seconds: float, runs: int) -> dict[str, Any]:
    py = sys.executable
    base = {k: v for k, v in os.environ.items() if not k.startswith("ESIM_GATEWAY_")}
    with TemporaryDirectory() as tmp, baseline_python(revision, Path(tmp)) as old_py:
        folder = Path(tmp)
        (folder / "bare_app.py").write_text(BARE_APP)
        up, new, old, bare = _port(), _port(), _port(), _port()
        upstream = f"http://127.0.0.1:{up}/roamify"
        uvicorn = [py, "-m", "uvicorn", "--log-level", "warning", "--app-dir", tmp]
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                _process(
                    _pinned(1, [py, "-m", "esim_gateway", "sandbox", "--port", str(up)]),
                    base,
                    f"{upstream}/_sandbox/calls",
                )
            )
            pids = {}
            for name, python, port in (("new", py, new), ("old", old_py, old)):
                pids[name] = stack.enter_context(
                    _process(
                        _pinned(0, [python, "-m", "esim_gateway", "serve", "--port", str(port)]),
                        _gateway_env(base, folder, name, upstream),
                        f"http://127.0.0.1:{port}/healthz",
                    )
                )
            bare_env = {
                **base,
                "UPSTREAM": upstream,
                "LEDGER_URL": f"sqlite+aiosqlite:///{tmp}/new.db",
            }
            stack.enter_context(
                _process(
                    _pinned(0, [*uvicorn, "bare_app:app", "--port", str(bare)]),
                    bare_env,
                    f"http://127.0.0.1:{bare}/hello",
                )
            )
            mesh = _mesh(stack, folder, upstream, base)
            return asyncio.run(_measure(upstream, new, old, bare, mesh, pids, seconds, runs))


def _mesh(
    stack: contextlib.ExitStack, folder: Path, upstream: str, base: dict[str, str]
) -> int | None:
    command = mesh_command()
    if command is None:
        return None
    port = _port()
    supergraph = folder / "supergraph.graphql"
    compose_mesh(upstream, supergraph)
    serve = [*command, "supergraph", str(supergraph), "--host", "127.0.0.1"]
    stack.enter_context(
        _process(
            _pinned(0, [*serve, "--port", str(port), "--fork", "1"]),
            {**base, "NODE_ENV": "production"},
            f"http://127.0.0.1:{port}/healthcheck",
        )
    )
    return port


async def _measure(
    upstream: str,
    new: int,
    old: int,
    bare: int,
    mesh: int | None,
    pids: dict[str, int],
    seconds: float,
    runs: int,
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        new_orders = await _orders(client, Upstream(upstream), new, 10)  # type: ignore[arg-type]
        old_orders = await _orders(client, Upstream(upstream), old, 10)  # type: ignore[arg-type]

    def orders(port: int, found: list[Any]) -> tuple[Target, ...]:
        return tuple(
            Target.post(port, "/graphql", {"query": ORDER_QUERY, "variables": {"id": o["id"]}})
            for o in found
        )

    subjects: dict[str, Any] = {
        "bare": tuple(Target.get(bare, f"/order?id={o['providerOrderId']}") for o in new_orders),
        "new": orders(new, new_orders),
        "old": orders(old, old_orders),
    }
    if mesh is not None:
        subjects["mesh"] = tuple(
            Target.post(
                mesh,
                "/graphql",
                {"query": MESH_QUERY, "variables": {"id": o["providerOrderId"]}},
                authorization=False,
            )
            for o in new_orders
        )
    cells = {c: await _cells(subjects, c, seconds, runs) for c in (1, 10)}
    cpu: dict[str, float] = {}
    for name in ("new", "old", "new", "old"):  # interleaved, the second of each kept
        before = cpu_seconds(pids[name])
        saturated = await closed_loop(subjects[name], 10, seconds)
        cpu[name] = (cpu_seconds(pids[name]) - before) / saturated.requests * 1e6
    return {"cells": cells, "cpu_us": cpu}


def report(result: dict[str, Any], revision: str) -> str:
    cells: dict[int, dict[str, Run]] = result["cells"]
    lines = [
        f"A/B: this tree (new) against {revision} (old), order(id), median of interleaved runs",
        "",
        "| | c=1 p50 ms | c=1 req/s | c=10 p50 ms | c=10 req/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in cells[1]:
        one, ten = cells[1][name], cells[10][name]
        lines.append(
            f"| {name} | {one.p50_ms:.2f} | {one.rps:.0f} | {ten.p50_ms:.2f} | {ten.rps:.0f} |"
        )
    lines.append("")
    for name in ("new", "old"):
        ratios = [
            f"c=10 throughput {cells[10][name].rps / cells[10]['bare'].rps:.2f}x bare",
            f"c=1 p50 {cells[1][name].p50_ms / cells[1]['bare'].p50_ms:.2f}x bare",
        ]
        if "mesh" in cells[10]:
            ratios.append(
                f"c=10 throughput {cells[10][name].rps / cells[10]['mesh'].rps:.2f}x Mesh"
            )
            ratios.append(f"c=1 p50 {cells[1][name].p50_ms / cells[1]['mesh'].p50_ms:.2f}x Mesh")
        lines.append(
            f"- {name}: "
            + ", ".join(ratios)
            + f"; {result['cpu_us'][name]:.0f} us CPU a request at c=10"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("baseline", help="the revision to compare this tree with (e.g. a commit)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print(report(run(args.baseline, args.seconds, args.runs), args.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
