"""Receiver URLs: https only in live mode, never into a private network (SSRF)."""

from __future__ import annotations

import ipaddress

import pytest

from esim_gateway.errors import UrlNotAllowed
from esim_gateway.outbound.urls import Resolver, UrlPolicy


def resolver(table: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


HOSTS = {
    "hooks.example.com": ["93.184.216.34"],
    "localhost": ["127.0.0.1", "::1"],
    "internal.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "mixed.example.com": ["93.184.216.34", "192.168.1.10"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "https only"),
        ("https://localhost/x", "private or local"),
        ("https://127.0.0.1/x", "private or local"),
        ("https://[::1]/x", "private or local"),
        ("https://10.0.0.8:8443/x", "private or local"),
        ("https://internal.example.com/x", "private or local"),
        ("https://metadata.example.com/latest", "private or local"),
        ("https://mixed.example.com/x", "private or local"),
        ("https://mapped.example.com/x", "private or local"),
        ("https://nowhere.example.com/x", "does not resolve"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("ftp://hooks.example.com/x", "https:// URL"),
        ("https:///x", "https:// URL"),
        ("https://hooks.example.com:99999/x", "not a valid URL"),
    ],
)
async def test_live_mode_refuses_urls_that_are_not_public_https(url: str, reason: str) -> None:
    table = {**HOSTS, "127.0.0.1": ["127.0.0.1"], "::1": ["::1"], "10.0.0.8": ["10.0.0.8"]}
    policy = UrlPolicy(live=True, resolve=resolver(table))
    with pytest.raises(UrlNotAllowed) as refused:
        await policy.check(url)
    assert reason in refused.value.reason
    assert refused.value.url == url


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/esim?x=1", "https://v6.example.com:8443/hooks"]
)
async def test_live_mode_accepts_public_https_urls(url: str) -> None:
    await UrlPolicy(live=True, resolve=resolver(HOSTS)).check(url)


@pytest.mark.parametrize(
    "url", ["http://localhost:8200/", "http://127.0.0.1:9000/hooks", "https://hooks.example.com/"]
)
async def test_the_sandbox_accepts_local_http_and_any_https(url: str) -> None:
    await UrlPolicy(live=False, resolve=resolver({})).check(url)


async def test_the_sandbox_refuses_plain_http_to_another_machine() -> None:
    with pytest.raises(UrlNotAllowed, match="not allowed") as refused:
        await UrlPolicy(live=False, resolve=resolver(HOSTS)).check("http://hooks.example.com/")
    assert "localhost" in refused.value.reason


def teredo(server: str, client: str, port: int = 40000) -> str:
    """A Teredo address (2001::/32): the server in clear, the client's port and IPv4
    address obfuscated (every bit flipped), as RFC 4380 writes them."""
    value = (0x20010000 << 96) | (int(ipaddress.IPv4Address(server)) << 64)
    value |= (port ^ 0xFFFF) << 32 | (int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF)
    return str(ipaddress.IPv6Address(value))


#: IPv6 addresses that reach an IPv4 host, by form
REACHES_IPV4 = {
    "mapped": "::ffff:{}",
    "translated (SIIT)": "::ffff:0:{}",
    "NAT64 well-known": "64:ff9b::{}",
    "6to4": "2002:{}::1",
}


def embed(form: str, ipv4: str) -> str:
    if form == "6to4":
        high, low = divmod(int(ipaddress.IPv4Address(ipv4)), 1 << 16)
        return f"2002:{high:x}:{low:x}::1"
    return REACHES_IPV4[form].format(ipv4)


@pytest.mark.parametrize("form", sorted(REACHES_IPV4))
@pytest.mark.parametrize(
    "ipv4",
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "169.254.169.254", "100.64.0.1", "0.0.0.0"],  # noqa: S104
)
async def test_an_ipv6_form_that_reaches_a_private_ipv4_host_is_refused(
    form: str, ipv4: str
) -> None:
    address = embed(form, ipv4)
    policy = UrlPolicy(live=True, resolve=resolver({"hooks.example.com": [address]}))
    with pytest.raises(UrlNotAllowed, match="not allowed") as refused:
        await policy.check("https://hooks.example.com/x")
    assert "private or local" in refused.value.reason
    literal = UrlPolicy(live=True, resolve=resolver({address: [address]}))
    with pytest.raises(UrlNotAllowed, match="not allowed"):
        await literal.check(f"https://[{address}]/x")


@pytest.mark.parametrize("form", sorted(REACHES_IPV4))
async def test_an_ipv6_form_that_reaches_a_public_ipv4_host_is_accepted(form: str) -> None:
    address = embed(form, "93.184.216.34")
    policy = UrlPolicy(live=True, resolve=resolver({"hooks.example.com": [address]}))
    assert await policy.check("https://hooks.example.com/x") == [address]


@pytest.mark.parametrize(
    "address",
    [
        pytest.param(teredo("65.54.227.120", "127.0.0.1"), id="teredo-to-loopback"),
        pytest.param(teredo("65.54.227.120", "93.184.216.34"), id="teredo-to-public"),
        pytest.param(teredo("10.0.0.1", "93.184.216.34"), id="teredo-via-private-server"),
        pytest.param("64:ff9b:1::7f00:1", id="nat64-local-use-to-loopback"),
        pytest.param("64:ff9b:1:5db8:d8:2200::", id="nat64-local-use-to-public"),
        pytest.param("::7f00:1", id="ipv4-compatible-to-loopback"),
        pytest.param("::5db8:d822", id="ipv4-compatible-to-public"),
    ],
)
async def test_ipv6_forms_whose_ipv4_host_cannot_be_told_are_refused_outright(
    address: str,
) -> None:
    policy = UrlPolicy(live=True, resolve=resolver({"hooks.example.com": [address]}))
    with pytest.raises(UrlNotAllowed) as refused:
        await policy.check("https://hooks.example.com/x")
    assert "private or local" in refused.value.reason


def test_the_teredo_helper_obfuscates_the_client_as_rfc_4380_says() -> None:
    # RFC 4380's example: server 65.54.227.120, client 192.0.2.45 port 40000
    address = ipaddress.IPv6Address(teredo("65.54.227.120", "192.0.2.45"))
    assert address == ipaddress.IPv6Address("2001:0:4136:e378:0:63bf:3fff:fdd2")
    assert address.teredo == (
        ipaddress.IPv4Address("65.54.227.120"),
        ipaddress.IPv4Address("192.0.2.45"),
    )
