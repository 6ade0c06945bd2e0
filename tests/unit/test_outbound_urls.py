"""Receiver URLs: https only in live mode, never into a private network (SSRF)."""

from __future__ import annotations

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
