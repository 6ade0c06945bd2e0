"""The simulators' state on disk: a restarted sandbox still knows its orders and eSIMs.

The gateway's ledger survives a restart; without this, the simulators behind it would
not, and every order the ledger remembers would come back "Order not found". One JSON
file holds both simulators' records (orders, eSIMs, balances, top-ups, SIM cards,
return requests), one section each:

    store = SandboxStore.open(Path("esim_gateway.sandbox.json"))
    create_roamify_sandbox(store=store)        # restores its section, then saves it

A simulator given a store restores its section when it is built, marks the store changed
after each call it answers (reads too: a read may expire an eSIM or fulfil an order), and
saves it when closed. Saving is throttled (at most one write per `delay` seconds, and
none when nothing changed) and atomic (a temporary file renamed over the old one), so a
crash leaves the last complete state. The seeded catalogs are rebuilt from their seed
and not saved; neither are the call log, armed faults, one-shot knobs (`fail_next_order`)
or the record of webhook deliveries.

Where the file lives (`state_for_ledger`): `ESIM_GATEWAY_SANDBOX_STATE` when set (`memory`:
nowhere), else beside a SQLite ledger's file (`esim_gateway.db` -> `esim_gateway.sandbox.json`);
a ledger in memory or on a database server keeps the simulators in memory too. A SQLite
ledger whose file is gone was reset, and the simulators' state goes with it.
`esim-gateway sandbox-reset` deletes the file (stop the gateway first: it saves on exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "MEMORY",
    "SandboxStore",
    "StoreMiddleware",
    "ledger_file",
    "state_for_ledger",
    "state_path",
]

log = logging.getLogger("esim_gateway.sandbox")

#: the file's layout; a file of another version is set aside (not read) with a warning
VERSION = 1
#: `ESIM_GATEWAY_SANDBOX_STATE=memory`: keep the simulators in memory whatever the ledger
MEMORY = "memory"

Snapshot = Callable[[], dict[str, Any]]
Restore = Callable[[dict[str, Any]], None]


def ledger_file(database_url: str) -> Path | None:
    """The file of a SQLite ledger URL; None for an in-memory or server database."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    if url.get_backend_name() != "sqlite" or in_memory or database.startswith("file:"):
        return None
    return Path(database)


def state_path(database_url: str, configured: str | None) -> Path | None:
    """Where the gateway's simulators keep their state (see the module doc); None: memory."""
    if configured == MEMORY:
        return None
    if configured:
        return Path(configured)
    ledger = ledger_file(database_url)
    return ledger.with_name(ledger.stem + ".sandbox.json") if ledger is not None else None


def state_for_ledger(database_url: str, configured: str | None) -> SandboxStore | None:
    """The store the gateway's simulators use beside this ledger (see the module doc)."""
    path = state_path(database_url, configured)
    if path is None:
        return None
    ledger = ledger_file(database_url)
    if ledger is not None and not ledger.exists() and path.exists():
        # the ledger was reset: orders it no longer knows must not linger upstream
        log.info("sandbox state %s dropped: the ledger %s is new", path, ledger)
        path.unlink()
    return SandboxStore.open(path)


class SandboxStore:
    """One state file shared by the simulators attached to it (see the module doc)."""

    def __init__(self, path: Path, saved: dict[str, Any] | None = None, delay: float = 0.5):
        self.path = path
        self.delay = delay
        #: sections read from the file and not (yet) claimed by a simulator: kept as read,
        #: so a simulator not running this time (its provider is live) keeps its records
        self._unclaimed: dict[str, Any] = dict(saved or {})
        self._sections: dict[str, Snapshot] = {}
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None
        self._written: bytes | None = None

    @classmethod
    def open(cls, path: Path, *, delay: float = 0.5) -> SandboxStore:
        """The store at `path`, with what it holds (nothing when absent or unreadable)."""
        return cls(path, _read(path), delay)

    def attach(self, name: str, snapshot: Snapshot, restore: Restore) -> None:
        """Hand a simulator its saved section (if any); save its `snapshot()` from now on."""
        saved = self._unclaimed.pop(name, None)
        if isinstance(saved, dict):
            try:
                restore(saved)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning(
                    "sandbox state %s: the %s section does not load (%s: %s); it starts empty",
                    self.path,
                    name,
                    type(exc).__name__,
                    exc,
                )
        self._sections[name] = snapshot

    def changed(self) -> None:
        """Something may have changed: save within `delay` seconds (now without a loop)."""
        self._dirty = True
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a knob called from synchronous code
            self.flush()
            return
        self._timer = loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        """Save now if anything changed since the last save."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._dirty:
            return
        self._dirty = False
        self.save()

    def close(self) -> None:
        """Save now, changed or not: a knob called from Python marks nothing changed."""
        self._dirty = True
        self.flush()

    def save(self) -> None:
        """Write every section now (nothing when the bytes are those last written)."""
        state = {"version": VERSION, **self._unclaimed}
        state.update({name: snapshot() for name, snapshot in self._sections.items()})
        raw = orjson.dumps(state)
        if raw == self._written:
            return
        try:
            _write_atomically(self.path, raw)
        except OSError as exc:
            # the simulators go on in memory; the next change tries again
            log.warning("sandbox state %s not saved: %s", self.path, exc)
            return
        self._written = raw

    @staticmethod
    def reset(path: Path) -> bool:
        """Delete the state at `path`; True when there was one."""
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        state = orjson.loads(raw)
    except orjson.JSONDecodeError:
        state = None
    if not isinstance(state, dict) or state.get("version") != VERSION:
        # kept for a look, out of the way of the next save
        aside = path.with_name(path.name + ".unreadable")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        log.warning("sandbox state %s is not readable: moved to %s; starting empty", path, aside)
        return {}
    state.pop("version")
    return state


def _write_atomically(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class StoreMiddleware:
    """Around a simulator's routes: marks the store changed after every call, and runs
    `on_first_call` once (a restored simulator re-arms its timers on a running loop)."""

    def __init__(
        self, app: ASGIApp, store: SandboxStore, on_first_call: Callable[[], None]
    ) -> None:
        self.app = app
        self.store = store
        self._first: Callable[[], None] | None = on_first_call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._first is not None:
            first, self._first = self._first, None
            first()
        try:
            await self.app(scope, receive, send)
        finally:
            self.store.changed()
