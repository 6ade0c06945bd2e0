"""Pieces both simulators share: the call log, injectable faults, and their HTTP controls.

Faults are armed per endpoint (method + path template, e.g. ``POST /api/esim/order``)
from Python (`SandboxControl.faults.arm(...)`) or over HTTP (``POST /_sandbox/faults``),
and each fires a given number of times:

* ``latency``: sleep before handling;
* ``status`` (+ ``body``): answer that status with that body instead of handling;
* ``retry_after``: add a ``Retry-After`` header (use with status 429);
* ``hang``: never answer (the client's timeout fires);
* ``drop_after_commit``: handle the request fully (the order exists, money is spent),
  start the response, then break the connection before the body is sent;
* ``commit_then_status`` (with ``status`` + ``body``): handle the request fully, then
  answer that status instead of the real answer (a provider that commits, then errs);
* ``commit_late``: hold the request that many seconds, then handle it fully, whether or
  not the caller is still waiting (a purchase that hangs past the client's timeout and
  only then commits);
* ``read_lag``: what this call commits stays invisible to lookups for that many
  seconds (a provider whose reads lag its writes).

The call log records every request (method, path, query, JSON body) so tests can count
upstream calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from esim_gateway.http.replay import replay_body

__all__ = [
    "BearerAuth",
    "Call",
    "CallLog",
    "ConnectionDropped",
    "Fault",
    "FaultPlan",
    "Refused",
    "SandboxControl",
    "WebhookSender",
    "control_routes",
    "hidden_until",
    "is_visible",
    "json_response",
    "refusals",
    "route_templates",
]

#: the read lag of the call being handled; records it commits are hidden for that long
_read_lag: contextvars.ContextVar[float] = contextvars.ContextVar("sandbox_read_lag", default=0.0)


def hidden_until() -> float | None:
    """For a record committed now: the monotonic time before which lookups miss it."""
    lag = _read_lag.get()
    return time.monotonic() + lag if lag > 0 else None


def is_visible(hidden: float | None) -> bool:
    return hidden is None or time.monotonic() >= hidden


class ConnectionDropped(Exception):
    """Raised by the fault middleware after the response has started: the body never
    arrives. Under uvicorn this closes the socket mid-response; in-process,
    `SandboxTransport` turns it into `httpx.RemoteProtocolError`."""


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float


@dataclass(slots=True)
class CallLog:
    calls: list[Call] = field(default_factory=list)

    def record(self, call: Call) -> None:
        self.calls.append(call)

    def clear(self) -> None:
        self.calls.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return len(self.matching(method, path))

    def matching(self, method: str | None = None, path: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if (method is None or c.method == method) and (path is None or c.path == path)
        ]


@dataclass(slots=True)
class Fault:
    latency: float = 0.0
    status: int | None = None
    body: Any = None
    retry_after: float | None = None
    hang: bool = False
    drop_after_commit: bool = False
    commit_then_status: bool = False
    commit_late: float = 0.0
    read_lag: float = 0.0
    #: how many matching calls it applies to; None = until cleared
    times: int | None = 1


@dataclass(slots=True)
class FaultPlan:
    _faults: dict[tuple[str, str], list[Fault]] = field(default_factory=dict)

    def arm(self, method: str, path: str, fault: Fault | None = None, **kwargs: Any) -> Fault:
        armed = fault if fault is not None else Fault(**kwargs)
        self._faults.setdefault((method.upper(), path), []).append(armed)
        return armed

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        queue = self._faults.get((method.upper(), path))
        if not queue:
            return None
        fault = queue[0]
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
        return fault

    def armed(self) -> list[dict[str, Any]]:
        return [
            {"method": m, "path": p, **asdict(f)}
            for (m, p), queue in self._faults.items()
            for f in queue
        ]


@dataclass(slots=True)
class SandboxControl:
    """The test- and operator-facing knobs of one simulator."""

    calls: CallLog = field(default_factory=CallLog)
    faults: FaultPlan = field(default_factory=FaultPlan)
    #: `commit_late` requests still to be handled: kept referenced until they ran
    late: set[asyncio.Task[Any]] = field(default_factory=set)

    async def settle(self) -> None:
        """Wait until every late commit has happened (tests, demos)."""
        while self.late:
            await asyncio.gather(*list(self.late), return_exceptions=True)


class Refused(Exception):
    """A request a simulator turns down: raised by a check with the provider's error
    answer, returned by the handler's `refusals` wrapper."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def refusals(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """The handler's answer, or the error of the first check that refused the request."""

    @functools.wraps(handler)
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except Refused as refused:
            return refused.response

    return answer


def _route_path(scope: Scope) -> str:
    """The path below any mount point (`/api/...` even under `/sandbox/roamify`)."""
    path = str(scope["path"])
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def json_response(
    payload: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(payload),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def route_templates(routes: list[Route]) -> Callable[[str, str], str | None]:
    """A lookup from (method, concrete path) to the matching route's path template."""

    def lookup(method: str, path: str) -> str | None:
        scope: Scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        for route in routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path
        return None

    return lookup


class FaultMiddleware:
    """Records each call and applies armed faults. Wraps a simulator's router.

    Faults are matched on the raw path first and then on the route template, so
    ``GET /api/v1/orders/{id}`` arms every order lookup and ``GET /api/v1/orders/123``
    just one.
    """

    def __init__(
        self, app: ASGIApp, control: SandboxControl, templates: Callable[[str, str], str | None]
    ) -> None:
        self.app = app
        self.control = control
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _route_path(scope).startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        method = str(scope["method"])
        path = _route_path(scope)
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
        try:
            decoded: Any = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            decoded = body.decode("utf-8", errors="replace")
        query = dict(Request(scope).query_params)
        self.control.calls.record(Call(method, path, query, decoded, time.time()))

        template = self.templates(method, path)
        fault = self.control.faults.take(method, path)
        if fault is None and template is not None and template != path:
            fault = self.control.faults.take(method, template)

        replay = replay_body(body)
        if fault is None:
            await self.app(scope, replay, send)
            return
        token = _read_lag.set(fault.read_lag)
        try:
            await self._faulty(fault, scope, replay, send)
        finally:
            _read_lag.reset(token)

    async def _faulty(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.hang:
            await asyncio.Event().wait()
        if fault.commit_late:
            # The work runs in a task of its own, shielded: a caller that gives up (its
            # timeout cancels this call) does not stop the commit, as on a real server.
            late = asyncio.ensure_future(self._handle_later(fault.commit_late, scope, receive))
            self.control.late.add(late)
            late.add_done_callback(self.control.late.discard)
            for message in await asyncio.shield(late):
                await send(message)
            return
        if fault.status is not None:
            if fault.commit_then_status:
                await self.app(scope, receive, _discarding)
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = str(int(fault.retry_after))
            if isinstance(fault.body, str):
                response: Response = Response(
                    fault.body, fault.status, headers=headers, media_type="text/html"
                )
            else:
                response = json_response(fault.body, fault.status, headers)
            await response(scope, receive, send)
            return
        if fault.drop_after_commit:
            await self.app(scope, receive, _dropping(send))
            return
        await self.app(scope, receive, send)

    async def _handle_later(self, delay: float, scope: Scope, receive: Receive) -> list[Message]:
        await asyncio.sleep(delay)
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        return messages


async def _discarding(message: Message) -> None:
    return None


def _dropping(send: Send) -> Callable[[Message], Awaitable[None]]:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            await send(message)
            return
        raise ConnectionDropped("sandbox dropped the connection after committing")

    return wrapped


def control_routes(control: SandboxControl) -> list[Route]:
    """``/_sandbox/calls`` (GET, DELETE) and ``/_sandbox/faults`` (GET, POST, DELETE)."""

    async def calls(request: Request) -> Response:
        if request.method == "DELETE":
            control.calls.clear()
            return Response(status_code=204)
        return json_response([asdict(c) for c in control.calls.calls])

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            control.faults.clear()
            return Response(status_code=204)
        if request.method == "POST":
            try:
                spec = orjson.loads(await request.body())
                method = str(spec.pop("method"))
                path = str(spec.pop("path"))
                fault = Fault(**spec)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                return JSONResponse({"error": f"bad fault spec: {exc}"}, status_code=400)
            control.faults.arm(method, path, fault)
            return json_response({"armed": control.faults.armed()}, 201)
        return json_response(control.faults.armed())

    return [
        Route("/_sandbox/calls", calls, methods=["GET", "DELETE"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
    ]


class WebhookSender:
    """Delivers a simulator's webhooks in background tasks, with the provider's retries.

    `sign(body) -> headers` adds the provider's signature header. Deliveries are
    recorded in `deliveries` (url, body, status, attempt). `retry_4xx=False` follows
    SimplifyTrip: a 4xx answer is final.
    """

    def __init__(
        self,
        url: str | None,
        client: Any,
        sign: Callable[[bytes], dict[str, str]],
        *,
        attempts: int = 3,
        backoff: float = 0.05,
        retry_4xx: bool = True,
    ) -> None:
        self.url = url
        self._client = client
        self._own_client = client is None
        self.sign = sign
        self.attempts = attempts
        self.backoff = backoff
        self.retry_4xx = retry_4xx
        self.deliveries: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, payload: dict[str, Any]) -> None:
        if not self.url:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._deliver(self.url, payload))
        except RuntimeError:  # no running loop (a knob called from sync code): drop
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, payload: dict[str, Any]) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=3.0)
        body = orjson.dumps(payload)
        headers = {"content-type": "application/json", **self.sign(body)}
        for attempt in range(1, self.attempts + 1):
            status: int | None = None
            try:
                response = await self._client.post(url, content=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError:
                status = None
            self.deliveries.append(
                {"url": url, "body": payload, "status": status, "attempt": attempt}
            )
            if status is not None and 200 <= status < 300:
                return
            if status is not None and 400 <= status < 500 and not self.retry_4xx:
                return
            await asyncio.sleep(self.backoff * attempt)

    async def settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None


class BearerAuth:
    """Rejects calls without the expected credentials (except the /_sandbox controls)."""

    def __init__(self, app: ASGIApp, check: Callable[[Request], Response | None]) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _route_path(scope).startswith("/_sandbox"):
            refusal = self.check(Request(scope))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
