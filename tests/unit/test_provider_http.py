"""The provider clients' cheap paths: whole URLs handed to httpx (one parse per call
instead of three) must be the URLs httpx builds from a path and params; no cookie jar."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from esim_gateway.app import _client
from esim_gateway.providers._http import _absolute_url

VALUES = st.one_of(st.text(max_size=12), st.integers(), st.booleans())


@given(
    base=st.sampled_from(["https://api.example.com", "https://api.example.com/v1/", "http://r/x"]),
    path=st.sampled_from(["/api/esim/order", "/api/v1/orders/658441501843542", "/"]),
    params=st.none() | st.dictionaries(st.text(min_size=1, max_size=8), VALUES, max_size=4),
)
def test_the_url_sent_is_the_one_httpx_builds_from_params(
    base: str, path: str, params: dict[str, str | int | bool] | None
) -> None:
    client = httpx.AsyncClient(base_url=base)
    expected = client.build_request(
        "GET",
        path,
        params={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
        if params
        else None,
    ).url
    assert httpx.URL(_absolute_url(client, path, params)) == expected


async def test_a_cookie_set_by_a_provider_is_never_sent_back() -> None:
    sent: list[str | None] = []

    def provider(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, json={}, headers={"set-cookie": "session=abc; Path=/"})

    async with _client("http://provider.test", httpx.MockTransport(provider)) as client:
        await client.get("/api/balance")
        await client.get("/api/balance")
    assert sent == [None, None]
