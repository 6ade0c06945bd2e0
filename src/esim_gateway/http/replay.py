"""An ASGI `receive` for a request body already read in full."""

from __future__ import annotations

from starlette.types import Message, Receive

__all__ = ["replay_body"]


def replay_body(body: bytes) -> Receive:
    """Hands the app `body` as one message, then a disconnect: for a body read once (with a
    size limit, or to record it) and still to be read by the app."""
    replayed = False

    async def receive() -> Message:
        nonlocal replayed
        if replayed:
            return {"type": "http.disconnect"}
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
