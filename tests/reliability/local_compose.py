"""docker-compose.yml's services run on this machine as the file writes them.

Each service gets a loopback address of its own (as a container gets an address on the
compose network), and its processes resolve every service name and network alias to
those addresses through a hosts file of their own: `unshare --mount` and a bind mount
over /etc/hosts, which is how a container gets its /etc/hosts. Nothing else is changed:
a command's `0.0.0.0` (a container's own interfaces) becomes the service's address, and
its environment is the compose file's, plus the image's PATH.

Services that are images, not our commands, are played here: `postgres` by a proxy to
the test server that connects every client to the session's database (whatever database
and user the compose file names), `redis` by its compose command on a `redis-server` of
this machine. The balancer (nginx) is not run.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

__all__ = [
    "LocalNetwork",
    "PostgresStandIn",
    "Processes",
    "hosts_isolation_unavailable",
    "redis_serving",
    "service_environment",
]

#: `sh -c` script: the hosts file ($0) over /etc/hosts in this mount namespace, then the
#: service's command
_WITH_HOSTS = 'mount --bind "$0" /etc/hosts && exec "$@"'
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


def _isolation() -> list[str] | None:
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    return [unshare, "--mount", *user, "--", "sh", "-c", _WITH_HOSTS]


def hosts_isolation_unavailable(workdir: Path) -> str | None:
    """Why the services' processes cannot have a hosts file of their own here, or None."""
    prefix = _isolation()
    if prefix is None:
        return "no `unshare` on this machine"
    hosts = workdir / "probe-hosts"
    hosts.write_text("127.0.0.1 localhost\n127.9.9.9 probe.sandbox\n")
    probe = subprocess.run(  # noqa: S603 - fixed arguments
        [*prefix, str(hosts), "getent", "hosts", "probe.sandbox"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0 or "127.9.9.9" not in probe.stdout:
        return f"`unshare --mount` with a bind-mounted /etc/hosts failed: {probe.stderr.strip()}"
    return None


@dataclass(frozen=True, slots=True)
class LocalNetwork:
    """The compose network on loopback: an address per service, and the host names
    (service names and network aliases) each answers to."""

    addresses: dict[str, str]
    names: dict[str, str]

    @classmethod
    def of(cls, services: Mapping[str, Any]) -> LocalNetwork:
        # a /24 of its own per run: two test sessions at once bind different addresses
        prefix = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}."
        addresses: dict[str, str] = {}
        names: dict[str, str] = {}
        for index, (name, service) in enumerate(services.items()):
            address = addresses[name] = f"{prefix}{index + 2}"
            names[name] = address
            networks = service.get("networks") or {}
            default = networks.get("default") if isinstance(networks, dict) else None
            for alias in (default or {}).get("aliases") or ():
                names[str(alias)] = address
        return cls(addresses, names)

    def hosts_file(self, path: Path) -> Path:
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
        lines += [f"{address} {name}" for name, address in self.names.items()]
        path.write_text("\n".join(lines) + "\n")
        return path


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as the compose file writes it, and the image's PATH (our
    commands are this interpreter's scripts)."""
    env = {name: str(value) for name, value in (service.get("environment") or {}).items()}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.defpath])
    return env


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed during start-up")
        data += chunk
    return data


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class PostgresStandIn:
    """The compose file's `postgres` service at `address`: each connection goes on to
    the test server, its start-up message naming the session's database and the server's
    user instead of the ones the client sent (no TLS: the server's trust rules apply)."""

    def __init__(self, address: tuple[str, int], server_url: str) -> None:
        url = make_url(server_url)
        self.upstream = (url.host or "127.0.0.1", url.port or 5432)
        self.user = (url.username or "postgres").encode()
        self.database = (url.database or "postgres").encode()
        self.listener = socket.create_server(address)
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> PostgresStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.listener.close()
        self.thread.join(5)
        for sock in self.sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            startup = self._startup(client)
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        self.sockets.append(upstream)
        upstream.sendall(startup)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def _startup(self, client: socket.socket) -> bytes:
        """The client's start-up message for our database and user; a request for TLS or
        GSSAPI encryption is declined first ('N'), as a server without them answers."""
        while True:
            length, code = struct.unpack("!ii", _read(client, 8))
            if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
                break
            client.sendall(b"N")
        parts = _read(client, length - 8).split(b"\0")
        params: dict[bytes, bytes] = {}
        for key, value in zip(parts[0::2], parts[1::2], strict=False):
            if not key:
                break
            params[key] = value
        params[b"user"], params[b"database"] = self.user, self.database
        payload = b"".join(key + b"\0" + value + b"\0" for key, value in params.items()) + b"\0"
        return struct.pack("!ii", len(payload) + 8, code) + payload


@dataclass
class Processes:
    """The services' processes, each with its hosts file and a log of its output."""

    hosts: Path
    workdir: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> None:
        prefix = _isolation()
        assert prefix is not None
        with (self.workdir / f"{name}.log").open("wb") as log:
            self.running[name] = subprocess.Popen(  # noqa: S603 - the compose file's command
                [*prefix, str(self.hosts), *command],
                env=dict(env),
                cwd=self.workdir,  # no .env file there
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self, name: str) -> str:
        text = (self.workdir / f"{name}.log").read_text(errors="replace")
        return text[-3000:]

    def finished(self, name: str, timeout: float) -> int:
        """The exit status of `name` (a one-off command, as `migrate`)."""
        try:
            return self.running[name].wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} did not finish: {self.output(name)}") from None

    def wait_serving(self, name: str, url: str, timeout: float, *, any_status: bool) -> None:
        """Until `url` answers (200, or anything with `any_status`); fails at once with
        the process' output when it exits first."""
        process = self.running[name]
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while True:
                code = process.poll()
                assert code is None, f"{name} exited with {code}:\n{self.output(name)}"
                with contextlib.suppress(httpx.TransportError):
                    status = client.get(url).status_code
                    if any_status or status == 200:
                        return
                assert time.monotonic() < deadline, f"{name} not serving:\n{self.output(name)}"
                time.sleep(0.1)

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def redis_serving(address: str, timeout: float) -> None:
    """Until a PING to the Redis at `address` is answered."""
    deadline = time.monotonic() + timeout
    while True:
        with (
            contextlib.suppress(OSError),
            socket.create_connection((address, 6379), timeout=1) as sock,
        ):
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return
        assert time.monotonic() < deadline, f"no Redis at {address}:6379"
        time.sleep(0.05)
