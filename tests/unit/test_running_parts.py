"""The lifespan's start/stop list: started in order, the started ones stopped in reverse."""

from __future__ import annotations

import pytest

from esim_gateway.app import Running, started


def _parts(log: list[str], *, failing: str | None = None) -> list[Running]:
    def start(name: str) -> None:
        if name == failing:
            raise RuntimeError(name)
        log.append(f"start {name}")

    async def stop(name: str) -> None:
        log.append(f"stop {name}")

    return [
        Running("database", stop=lambda: stop("database")),
        Running("broker", start=lambda: start("broker"), stop=lambda: stop("broker")),
        Running("reconciler", start=lambda: start("reconciler"), stop=lambda: stop("reconciler")),
    ]


async def test_parts_start_in_order_and_stop_in_reverse() -> None:
    log: list[str] = []
    async with started(_parts(log)):
        log.append("serving")
    assert log == [
        "start broker",
        "start reconciler",
        "serving",
        "stop reconciler",
        "stop broker",
        "stop database",
    ]


async def test_a_part_that_fails_to_start_stops_only_those_started_before_it() -> None:
    log: list[str] = []
    with pytest.raises(RuntimeError, match="reconciler"):
        async with started(_parts(log, failing="reconciler")):
            log.append("serving")
    assert log == ["start broker", "stop broker", "stop database"]
