"""A receiver for the sandbox: verifies each delivery's signature and prints it.

`esim-gateway webhook-receiver --secret whsec_... [--port 8200]` answers 204 to a delivery
whose Standard Webhooks signature checks out (and prints its JSON body as one line on
stdout), 401 to anything else. Receivers in production do the same check.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from esim_gateway.outbound.signing import SignatureInvalid, verify

__all__ = ["create_receiver"]


def create_receiver(
    secret: str, *, out: TextIO | None = None, clock: Callable[[], float] = time.time
) -> Starlette:
    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            msg_id = verify(secret, dict(request.headers), body, now=clock())
        except SignatureInvalid as exc:
            return Response(f"signature rejected: {exc}\n", status_code=401)
        line = orjson.dumps({"webhook-id": msg_id, "body": orjson.loads(body)}).decode()
        stream = out or sys.stdout
        stream.write(line + "\n")
        stream.flush()
        return Response(status_code=204)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
