"""A long-running coroutine owned by the app's lifespan: started once, cancelled on stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["BackgroundLoop", "periodic"]


class BackgroundLoop:
    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def periodic(
    name: str, step: Callable[[], Awaitable[object]], interval: float, log: logging.Logger
) -> BackgroundLoop:
    """A loop running `step` every `interval` seconds (+/- 20 % jitter, so replicas do
    not move in lockstep); a failed step is logged and the loop goes on."""

    async def run() -> None:
        while True:
            try:
                await step()
            except Exception:
                log.exception("%s pass failed", name)
            await asyncio.sleep(interval * (0.8 + 0.4 * random.random()))

    return BackgroundLoop(name, run)
