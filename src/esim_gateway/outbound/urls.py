"""Which receiver URLs the gateway will call (no SSRF into the operator's network).

Live mode: https only, and every address the host resolves to must be a public one (not
private, loopback, link-local, multicast, reserved or unspecified). The check runs when
an endpoint is registered and again before every delivery, since DNS can change between
the two, and the delivery then connects to the address it checked (DNS rebinding).
Sandbox mode: https anywhere, or plain http to this machine (a local receiver).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from esim_gateway.errors import UrlNotAllowed

__all__ = ["Resolver", "UrlPolicy", "system_resolver"]

#: host, port -> the addresses it resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_URL_LENGTH = 2000


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class UrlPolicy:
    def __init__(self, *, live: bool, resolve: Resolver = system_resolver) -> None:
        self.live = live
        self._resolve = resolve

    async def check(self, url: str) -> list[str]:
        """Raise `UrlNotAllowed` unless the gateway may deliver to `url` now. Returns the
        checked addresses in live mode (connect to one of those, not to a name that may
        resolve elsewhere a moment later), none in the sandbox."""
        if len(url) > MAX_URL_LENGTH:
            raise UrlNotAllowed(url, f"longer than {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UrlNotAllowed(url, "not a valid URL") from None
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise UrlNotAllowed(url, "use an https:// URL with a host name")
        if parts.username is not None or parts.password is not None:
            raise UrlNotAllowed(url, "credentials in the URL are not accepted")
        if parts.fragment:
            raise UrlNotAllowed(url, "a fragment is never sent; drop it")
        if not self.live:
            if parts.scheme == "http" and host not in LOCAL_HOSTS:
                raise UrlNotAllowed(url, "plain http is only allowed to localhost in the sandbox")
            return []
        if parts.scheme != "https":
            raise UrlNotAllowed(url, "live mode delivers over https only")
        try:
            addresses = await self._resolve(host, port or 443)
        except OSError:
            raise UrlNotAllowed(url, f"{host} does not resolve") from None
        if not addresses:
            raise UrlNotAllowed(url, f"{host} does not resolve")
        for address in addresses:
            try:
                public = _is_public(address)
            except ValueError:
                public = False
            if not public:
                raise UrlNotAllowed(url, f"{host} resolves to a private or local address")
        return addresses
