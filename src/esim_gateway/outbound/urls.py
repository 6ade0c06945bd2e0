"""Which receiver URLs the gateway will call (no SSRF into the operator's network).

Live mode: https only, and every address the host resolves to must be a public one (not
private, loopback, link-local, multicast, reserved or unspecified). The check runs when
an endpoint is registered and again before every delivery, since DNS can change between
the two, and the delivery then connects to the address it checked (DNS rebinding).

IPv6 forms that reach an IPv4 host are judged by that host: IPv4-mapped (``::ffff:0:0/96``)
and IPv4-translated (``::ffff:0:0:0/96``) addresses, the well-known NAT64 prefix
(``64:ff9b::/96``, DNS64 hands these out for IPv4-only hosts on IPv6-only networks) and
6to4 (``2002::/16``). Forms whose IPv4 host cannot be told, or that only a translator in
the operator's own network would carry, are refused outright: the local-use NAT64 prefix
(``64:ff9b:1::/48``, whose IPv4 position depends on a prefix length only that network
knows), Teredo (``2001::/32``: its relays are gone and its routing is up to whichever
relay the network uses) and the deprecated IPv4-compatible addresses (``::/96``).
Sandbox mode: https anywhere, or plain http to this machine (a local receiver).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import SplitResult, urlsplit

from esim_gateway.errors import UrlNotAllowed

__all__ = ["Resolver", "UrlPolicy", "system_resolver"]

#: host, port -> the addresses it resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_URL_LENGTH = 2000

#: prefixes whose last 32 bits are the IPv4 host they reach (see the module's docstring)
_EMBEDS_IPV4_LOW = tuple(
    ipaddress.IPv6Network(prefix) for prefix in ("::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
#: never called, whatever they embed (see the module's docstring)
_REFUSED = tuple(
    ipaddress.IPv6Network(prefix) for prefix in ("64:ff9b:1::/48", "2001::/32", "::/96")
)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if any(ip in network for network in _EMBEDS_IPV4_LOW):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour  # 2002:AABB:CCDD::/48 reaches AA.BB.CC.DD


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _REFUSED):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


class UrlPolicy:
    def __init__(self, *, live: bool, resolve: Resolver = system_resolver) -> None:
        self.live = live
        self._resolve = resolve

    async def check(self, url: str) -> list[str]:
        """Raise `UrlNotAllowed` unless the gateway may deliver to `url` now. Returns the
        checked addresses in live mode (connect to one of those, not to a name that may
        resolve elsewhere a moment later), none in the sandbox."""
        parts, port = _parse(url)
        host = (parts.hostname or "").lower()
        if not self.live:
            if parts.scheme == "http" and host not in LOCAL_HOSTS:
                raise UrlNotAllowed(url, "plain http is only allowed to localhost in the sandbox")
            return []
        if parts.scheme != "https":
            raise UrlNotAllowed(url, "live mode delivers over https only")
        return await self._public_addresses(url, host, port or 443)

    async def _public_addresses(self, url: str, host: str, port: int) -> list[str]:
        try:
            addresses = await self._resolve(host, port)
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


def _parse(url: str) -> tuple[SplitResult, int | None]:
    """The URL's parts and port, or `UrlNotAllowed` for what is never a receiver's URL in
    any mode."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowed(url, f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowed(url, "not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlNotAllowed(url, "use an https:// URL with a host name")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed(url, "credentials in the URL are not accepted")
    if parts.fragment:
        raise UrlNotAllowed(url, "a fragment is never sent; drop it")
    return parts, port
