"""The suite's aiosqlite connection thread (tests/conftest.py) hands nothing to a closed
event loop: a connection whose work finishes after its test's loop closed used to raise
in its thread, and pytest reported that as an error of the next test."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import aiosqlite


def test_work_that_ends_after_its_loop_closed_raises_nothing_in_the_thread() -> None:
    raised: list[BaseException] = []
    before = threading.excepthook

    def hook(args: Any) -> None:
        raised.append(args.exc_value)

    threading.excepthook = hook
    try:
        loop = asyncio.new_event_loop()
        connection = loop.run_until_complete(aiosqlite.connect(":memory:"))
        late = loop.create_future()
        connection._tx.put_nowait((late, lambda: time.sleep(0.2)))  # still running...
        loop.close()  # ...when its loop goes
        connection.stop()  # then the connection closes and its thread ends
        connection._thread.join(5)
        assert not connection._thread.is_alive()
    finally:
        threading.excepthook = before
    assert raised == [] and not late.done()
