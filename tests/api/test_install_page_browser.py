"""The install page in a real headless Chromium, as a traveller's phone and a desktop.

The real gateway (sandbox mode) runs on a loopback socket; an eSIM of each provider is
bought and given an install link through GraphQL, then Chromium opens the page at
390x844 with an iPhone's and an Android phone's user agent, and at 1280x800 as a
desktop. Chromium resolves no host but 127.0.0.1 and every request is recorded, so
passing proves the page needs nothing outside the gateway; its console shows no CSP
violation. Screenshots land in the test's temporary directory.

Needs `apt-get install -y chromium`; skipped otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_install import ANDROID, IPHONE
from tests.browser import DevTools, Page, fresh_page
from tests.conftest import serve_in_thread

pytestmark = pytest.mark.browser

BUY = """
mutation Buy($input: CreateOrderInput!) { createOrder(input: $input) { __typename
  ... on Order { esims { iccid lpa smdpAddress activationCode iosInstallUrl androidInstallUrl } }
  ... on Error { message } } }
"""
PLANS = """
query Plans($provider: Provider!) { packages(filter: { provider: $provider }, first: 20) {
  edges { node { packageId requiresTravelDate } } } }
"""
LINK = """
mutation Link($iccid: String!) { createInstallLink(iccid: $iccid) { __typename
  ... on InstallLink { url } ... on Error { message } } }
"""


@dataclass(frozen=True)
class Shared:
    path: str
    esim: dict[str, Any]


@pytest.fixture(scope="module")
def gateway_url(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from esim_gateway.app import create_app
    from esim_gateway.config import Settings

    ledger = tmp_path_factory.mktemp("gateway") / "ledger.db"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{ledger}",
        sandbox_fulfil_delay=0.0,
        brand_name="Acme Travel",
        brand_color="#7b2cbf",
    )
    with serve_in_thread(create_app(settings, catalog_refresh=False), "on") as url:
        yield url


def _graphql(client: httpx.Client, document: str, **variables: Any) -> dict[str, Any]:
    answer = client.post("/graphql", json={"query": document, "variables": variables})
    body: dict[str, Any] = answer.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def _shared_esim(base_url: str, provider: str) -> Shared:
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        plans = _graphql(client, PLANS, provider=provider)["packages"]["edges"]
        package = next(e["node"]["packageId"] for e in plans if not e["node"]["requiresTravelDate"])
        order = _graphql(
            client,
            BUY,
            input={"provider": provider, "items": [{"packageId": package, "quantity": 1}]},
        )["createOrder"]
        assert order["__typename"] == "Order", order
        esim = order["esims"][0]
        link = _graphql(client, LINK, iccid=esim["iccid"])["createInstallLink"]
        assert link["__typename"] == "InstallLink", link
        return Shared(link["url"].removeprefix(base_url), esim)


@pytest.fixture(scope="module")
def roamify(gateway_url: str) -> Shared:
    return _shared_esim(gateway_url, "ROAMIFY")


@pytest.fixture(scope="module")
def simplifytrip(gateway_url: str) -> Shared:
    return _shared_esim(gateway_url, "SIMPLIFYTRIP")


@dataclass
class Visit:
    page: Page
    base_url: str


PHONE: dict[str, Any] = {"width": 390, "height": 844, "mobile": True}


def _open(
    devtools: DevTools,
    opened: contextlib.ExitStack,
    url: str,
    *,
    user_agent: str,
    width: int,
    height: int,
    mobile: bool,
    language: str = "en-US",
    scripts: bool = True,
) -> Visit:
    page = opened.enter_context(fresh_page(devtools, width=width, height=height, mobile=mobile))
    page.send("Emulation.setUserAgentOverride", userAgent=user_agent, acceptLanguage=language)
    page.send("Emulation.setFocusEmulationEnabled", enabled=True)
    page.send("Emulation.setScriptExecutionDisabled", value=not scripts)
    base_url = url.split("/install/", 1)[0]
    devtools.send(
        "Browser.grantPermissions",
        origin=base_url,
        browserContextId=page.context,
        permissions=["clipboardReadWrite", "clipboardSanitizedWrite"],
    )
    page.send("Page.navigate", url=url)
    page.wait_for(
        "document.readyState === 'complete' && !!document.querySelector('svg.qrcode')",
        "the install page with its QR code",
    )
    return Visit(page, base_url)


def _on_an_iphone(
    devtools: DevTools, opened: contextlib.ExitStack, url: str, *, scripts: bool = True
) -> Visit:
    return _open(devtools, opened, url, user_agent=IPHONE, scripts=scripts, **PHONE)


@pytest.fixture
def opened() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


def _screenshot(visit: Visit, path: Path, *, whole_page: bool = True) -> None:
    shot = visit.page.send("Page.captureScreenshot", format="png", captureBeyondViewport=whole_page)
    path.write_bytes(base64.b64decode(shot["data"]))


def _outside(visit: Visit) -> list[str]:
    return [
        u for u in visit.page.requested_urls() if not u.startswith((visit.base_url + "/", "data:"))
    ]


FIRST_BUTTON = "document.querySelector('#install a.install')"
QR_BOX = (
    "(() => { const r = document.querySelector('svg.qrcode').getBoundingClientRect();"
    " return [r.width, r.height]; })()"
)


@pytest.mark.parametrize(
    ("name", "user_agent", "leading", "other"),
    [("iphone", IPHONE, "ios", "android"), ("android", ANDROID, "android", "ios")],
)
def test_on_a_phone_the_visitors_platform_leads_and_the_other_is_one_tap_away(
    devtools: DevTools,
    gateway_url: str,
    roamify: Shared,
    opened: contextlib.ExitStack,
    tmp_path: Path,
    name: str,
    user_agent: str,
    leading: str,
    other: str,
) -> None:
    visit = _open(
        devtools,
        opened,
        gateway_url + roamify.path,
        user_agent=user_agent,
        **PHONE,
    )
    page = visit.page
    width, height = page.eval(QR_BOX)
    assert 150 <= width <= 390 and width == height
    assert page.eval(f"{FIRST_BUTTON}.id") == f"install-{leading}"
    expected = roamify.esim[f"{leading}InstallUrl"]
    assert page.eval(f"{FIRST_BUTTON}.href") == expected
    # the other platform's button sits in a closed <details>: one tap opens it
    assert page.eval("document.querySelector('#other-platform').open") is False
    visible = f"document.querySelector('#install-{other}').checkVisibility()"
    assert page.eval(visible) is False
    page.click("#other-platform summary")
    page.wait_for(visible, "the other platform's install button")
    assert (
        page.eval(f"document.querySelector('#install-{other}').href")
        == roamify.esim[f"{other}InstallUrl"]
    )
    # the button fits a phone's width, above the fold
    box = page.eval(
        f"(() => {{ const r = {FIRST_BUTTON}.getBoundingClientRect();"
        " return [r.width, r.bottom]; })()"
    )
    assert box[0] <= 390 and box[1] <= 844
    _screenshot(visit, tmp_path / f"install-{name}-390x844.png")
    page.eval("window.scrollTo(0, 0)")
    _screenshot(visit, tmp_path / f"install-{name}-first-screen.png", whole_page=False)
    assert _outside(visit) == []
    assert page.problems() == []


def test_the_copy_buttons_copy_the_manual_codes(
    devtools: DevTools, gateway_url: str, roamify: Shared, opened: contextlib.ExitStack
) -> None:
    visit = _on_an_iphone(devtools, opened, gateway_url + roamify.path)
    page = visit.page
    codes = page.eval(
        "[...document.querySelectorAll('#manual code')].map(c => [c.className, c.textContent])"
    )
    assert codes == [
        ["smdp_address", roamify.esim["smdpAddress"]],
        ["activation_code", roamify.esim["activationCode"]],
    ]
    for index, (_, value) in enumerate(codes):
        button = f"#manual li:nth-child({index + 2}) button.copy"
        page.eval(f"document.querySelector({json.dumps(button)}).scrollIntoView()")
        page.click(button)
        page.wait_for(
            f"document.querySelector({json.dumps(button)}).textContent === 'Copied'",
            "the copy button to confirm",
        )
        copied = page.send(
            "Runtime.evaluate",
            expression="navigator.clipboard.readText()",
            awaitPromise=True,
            returnByValue=True,
        )
        assert copied["result"]["value"] == value
    assert _outside(visit) == []
    assert page.problems() == []


def test_on_a_desktop_the_qr_code_and_both_buttons_show_in_the_visitors_language(
    devtools: DevTools,
    gateway_url: str,
    simplifytrip: Shared,
    opened: contextlib.ExitStack,
    tmp_path: Path,
) -> None:
    desktop = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
    visit = _open(
        devtools,
        opened,
        gateway_url + simplifytrip.path,
        user_agent=desktop,
        width=1280,
        height=800,
        mobile=False,
        language="vi-VN,vi;q=0.9",
    )
    page = visit.page
    assert page.eval("document.documentElement.lang") == "vi"
    assert page.eval("document.querySelector('h1').textContent") == "Cài đặt eSIM của bạn"
    buttons = page.eval("[...document.querySelectorAll('#install a.install')].map(a => a.id)")
    assert buttons == ["install-ios", "install-android"]
    assert page.eval("document.querySelector('#other-platform')") is None
    width, _ = page.eval(QR_BOX)
    assert width >= 150
    assert page.eval("document.querySelector('header span').textContent") == "Acme Travel"
    _screenshot(visit, tmp_path / "install-desktop-1280x800.png")
    assert _outside(visit) == []
    assert page.problems() == []


def test_without_javascript_the_essentials_are_still_there(
    devtools: DevTools, gateway_url: str, roamify: Shared, opened: contextlib.ExitStack
) -> None:
    visit = _on_an_iphone(devtools, opened, gateway_url + roamify.path, scripts=False)
    page = visit.page
    # the page's own script never ran: no copy button was added, the rest is there
    assert page.eval("document.querySelectorAll('button.copy').length") == 0
    assert page.eval("!!document.querySelector('svg.qrcode')") is True
    assert page.eval(f"{FIRST_BUTTON}.href") == roamify.esim["iosInstallUrl"]
    assert (
        page.eval("document.querySelector('#manual code.activation_code').textContent")
        == (roamify.esim["activationCode"])
    )
