"""The traveller's moment: install instructions, install links and the install page."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from esim_gateway.ledger.install_links import token_digest
from esim_gateway.ledger.tables import InstallLinkRow
from tests.api.test_access import ALICE, BOB, KEYS, OPS, call
from tests.api.test_ordering import a_package, buy
from tests.conftest import Gateway, GatewayFactory, written_lines

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0 Mobile Safari/537.36"
)

STEP = "text value valueKind"
INSTALLATION = f"""
query Installation($iccid: String!, $language: String!) {{
  esim(iccid: $iccid) {{ __typename ... on Esim {{
    iosInstallUrl androidInstallUrl lpa smdpAddress activationCode apn
    installation(language: $language) {{
      __typename
      ... on UnsupportedLanguageError {{ message language supportedLanguages }}
      ... on Installation {{
        language
        ios {{ platform title methods {{ kind title url steps {{ {STEP} }} }} }}
        android {{ platform title methods {{ kind title url steps {{ {STEP} }} }} }}
        manual {{ smdpAddress activationCode steps {{ {STEP} }} }}
        network {{ apn apnAutomatic dataRoamingRequired hotspotAllowed steps {{ {STEP} }} }}
      }}
    }}
  }} }}
}}
"""
SHARE = """
query Share($iccid: String!) {
  esim(iccid: $iccid) { ... on Esim { providerShareLink { __typename
    ... on ProviderShareLink { provider url whatsappUrl accessCode createdAt }
    ... on UnsupportedOperationError { provider operation message }
    ... on ProviderError { errorCode } } } }
}
"""
CREATE_LINK = """
mutation Link($iccid: String!, $expiresIn: Int) {
  createInstallLink(iccid: $iccid, expiresIn: $expiresIn) { __typename
    ... on InstallLink { id iccid provider url createdAt expiresAt revokedAt }
    ... on ValidationError { field message }
    ... on RateLimitedError { retryAfterSeconds message }
    ... on Error { message } }
}
"""
REVOKE_LINK = """
mutation Revoke($id: ID!) {
  revokeInstallLink(id: $id) { __typename
    ... on InstallLink { id revokedAt url } ... on Error { message } }
}
"""


async def an_esim(gw: Gateway, provider: str) -> str:
    order = await buy(gw, provider)
    assert order["__typename"] == "Order", order
    iccid: str = order["esims"][0]["iccid"]
    return iccid


async def installation(gw: Gateway, iccid: str, language: str = "en") -> dict[str, Any]:
    esim: dict[str, Any] = (await gw.execute(INSTALLATION, iccid=iccid, language=language))["esim"]
    return esim


def all_steps(found: dict[str, Any]) -> list[dict[str, Any]]:
    steps = [s for p in ("ios", "android") for m in found[p]["methods"] for s in m["steps"]]
    steps += found["network"]["steps"]
    return steps + (found["manual"]["steps"] if found["manual"] else [])


async def create_link(gw: Gateway, iccid: str, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await gw.execute(CREATE_LINK, iccid=iccid, **variables))[
        "createInstallLink"
    ]
    return result


def page_path(url: str) -> str:
    path = re.sub(r"^https?://[^/]+", "", url)
    assert re.fullmatch(r"/install/[A-Za-z0-9_-]{43}", path), url
    return path


async def rows(gw: Gateway) -> list[InstallLinkRow]:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    async with async_sessionmaker(gw.ledger.engine)() as session:
        return list(await session.scalars(select(InstallLinkRow)))


# -- instructions ----------------------------------------------------------------------


async def test_roamify_instructions_are_ordered_steps_built_from_what_roamify_sent(
    gateway: Gateway,
) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    esim = await installation(gateway, iccid)
    found = esim["installation"]
    assert found["__typename"] == "Installation" and found["language"] == "en"
    assert [m["kind"] for m in found["ios"]["methods"]] == ["ONE_TAP", "QR_CODE", "MANUAL"]
    assert [m["kind"] for m in found["android"]["methods"]] == ["ONE_TAP", "QR_CODE", "MANUAL"]
    assert found["ios"]["methods"][0]["url"] == esim["iosInstallUrl"]
    assert found["android"]["methods"][0]["url"] == esim["androidInstallUrl"]
    assert "iOS 17.4" in found["ios"]["methods"][0]["steps"][0]["text"]
    manual = found["ios"]["methods"][2]["steps"]
    assert [(s["valueKind"], s["value"]) for s in manual if s["value"]] == [
        ("SMDP_ADDRESS", esim["smdpAddress"]),
        ("ACTIVATION_CODE", esim["activationCode"]),
    ]
    assert found["manual"]["smdpAddress"] == esim["smdpAddress"]
    assert found["manual"]["activationCode"] == esim["activationCode"]
    android_manual = found["android"]["methods"][2]["steps"]
    assert [s["value"] for s in android_manual if s["value"]] == [esim["lpa"]]
    # the simulator's plans set the APN automatically and name none: no APN line
    network = found["network"]
    assert esim["apn"] is None and network["apn"] is None and network["apnAutomatic"] is True
    assert all(s["valueKind"] != "APN" for s in network["steps"])
    assert any("automatically" in s["text"] for s in network["steps"])
    assert network["dataRoamingRequired"] is True
    assert any("Data Roaming" in s["text"] for s in network["steps"])
    assert all(s["value"] is None or s["value"].strip() for s in all_steps(found))


async def test_simplifytrip_instructions_in_vietnamese_show_its_apn(gateway: Gateway) -> None:
    iccid = await an_esim(gateway, "SIMPLIFYTRIP")
    esim = await installation(gateway, iccid, "vi-VN")
    found = esim["installation"]
    assert found["__typename"] == "Installation" and found["language"] == "vi"
    assert found["ios"]["title"] == "iPhone và iPad"
    assert found["ios"]["methods"][0]["title"] == "Cài đặt bằng một chạm"
    assert esim["apn"]
    apn_steps = [s for s in found["network"]["steps"] if s["valueKind"] == "APN"]
    assert [s["value"] for s in apn_steps] == [esim["apn"]]
    assert apn_steps[0]["text"].startswith("Đặt APN")
    # SimplifyTrip's order details say nothing about roaming: no roaming line
    assert found["network"]["dataRoamingRequired"] is None
    assert not any("Chuyển vùng" in s["text"] for s in found["network"]["steps"])


async def test_an_unsupported_language_is_a_typed_error(gateway: Gateway) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    found = (await installation(gateway, iccid, "fr-FR"))["installation"]
    assert found == {
        "__typename": "UnsupportedLanguageError",
        "message": "Install instructions are available in: en, vi.",
        "language": "fr-FR",
        "supportedLanguages": ["en", "vi"],
    }


# -- the provider's share link -----------------------------------------------------------


async def test_roamify_share_link_comes_from_one_call_to_its_link_endpoint(
    gateway: Gateway,
) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    gateway.roamify.control.calls.clear()
    link = (await gateway.execute(SHARE, iccid=iccid))["esim"]["providerShareLink"]
    assert link["__typename"] == "ProviderShareLink" and link["provider"] == "ROAMIFY"
    assert link["url"].startswith("https://dev.esims.link/") and link["whatsappUrl"]
    assert re.fullmatch(r"[0-9]{4}", link["accessCode"])
    calls = gateway.roamify.control.calls.matching("POST", "/api/esim/link")
    assert len(calls) == 1 and calls[0].body == {"iccid": iccid}


async def test_simplifytrip_has_no_share_link_and_is_not_called_for_one(
    gateway: Gateway,
) -> None:
    iccid = await an_esim(gateway, "SIMPLIFYTRIP")
    gateway.roamify.control.calls.clear()
    gateway.simplifytrip.control.calls.clear()
    link = (await gateway.execute(SHARE, iccid=iccid))["esim"]["providerShareLink"]
    assert link["__typename"] == "UnsupportedOperationError"
    assert (link["provider"], link["operation"]) == ("SIMPLIFYTRIP", "shareLink")
    assert gateway.roamify.control.calls.calls == []
    # only the eSIM itself was read
    assert {c.method for c in gateway.simplifytrip.control.calls.calls} <= {"GET"}


async def test_a_failing_share_link_call_is_a_provider_error(gateway: Gateway) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    gateway.roamify.control.faults.arm(
        "POST", "/api/esim/link", status=403, body={"message": "Not enabled", "code": "NO_LINK"}
    )
    link = (await gateway.execute(SHARE, iccid=iccid))["esim"]["providerShareLink"]
    assert link == {"__typename": "ProviderError", "errorCode": "NO_LINK"}


# -- install links and the page -------------------------------------------------------------


async def test_a_link_opens_the_install_page_with_strict_headers_and_no_credential_in_its_url(
    gateway: Gateway,
) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    esim = await installation(gateway, iccid)
    link = await create_link(gateway, iccid)
    assert link["__typename"] == "InstallLink" and link["iccid"] == iccid
    assert link["revokedAt"] is None
    expires = datetime.fromisoformat(link["expiresAt"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
    path = page_path(link["url"])
    token = path.rsplit("/", 1)[1]
    assert esim["activationCode"] not in link["url"] and esim["lpa"] not in link["url"]
    # only the token's digest is stored
    stored = await rows(gateway)
    assert [r.token_sha256 for r in stored] == [token_digest(token)]
    assert all(token not in json.dumps([str(v) for v in vars(r).values()]) for r in stored)

    before = await gateway.upstream_calls()
    page = await gateway.http.get(path, headers={"user-agent": IPHONE})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", csp)
    assert nonce is not None
    assert csp.startswith("default-src 'none'; ") and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "noindex" in page.headers["x-robots-tag"]
    text = page.text
    assert '<meta name="robots" content="noindex, nofollow">' in text
    # every script and style carries the nonce; no inline handler, no external resource
    assert text.count("<script") == text.count(f'<script nonce="{nonce[1]}">') == 1
    assert text.count("<style") == text.count(f'<style nonce="{nonce[1]}">') == 1
    assert not re.search(r"\son[a-z]+=", text)
    assert not re.search(
        r'(?:src|href)="(?!https://esimsetup\.(?:apple|android)\.com/|data:)[a-z]+:', text
    )
    assert '<svg viewBox="0 0' in text and 'class="qrcode"' in text
    first_button = re.search(r'<a class="install" id="install-([a-z]+)" href="([^"]+)"', text)
    assert first_button is not None and first_button.group(1) == "ios"
    assert html.unescape(first_button.group(2)) == esim["iosInstallUrl"]
    assert f">{esim['smdpAddress']}</code>" in text
    assert f">{esim['activationCode']}</code>" in text
    assert 'lang="en"' in text and "Install your eSIM" in text
    assert "Install the eSIM by" in text or "Data left" in text
    # the page reads the eSIM (and its usage) upstream, as its owner would
    assert await gateway.upstream_calls() > before


async def test_the_install_button_follows_the_visitors_platform_and_language(
    gateway: Gateway,
) -> None:
    iccid = await an_esim(gateway, "SIMPLIFYTRIP")
    path = page_path((await create_link(gateway, iccid))["url"])
    android = (
        await gateway.http.get(
            path, headers={"user-agent": ANDROID, "accept-language": "vi-VN,vi;q=0.9,en;q=0.5"}
        )
    ).text
    first = re.search(r'<a class="install" id="install-([a-z]+)"', android)
    assert first is not None and first.group(1) == "android"
    # the other platform is one tap away, in a <details>
    assert re.search(r'<details id="other-platform">.*id="install-ios"', android, re.S)
    assert 'lang="vi"' in android and "Cài đặt eSIM của bạn" in android
    assert "Đặt APN" in android
    iphone = (await gateway.http.get(path, headers={"user-agent": IPHONE})).text
    first = re.search(r'<a class="install" id="install-([a-z]+)"', iphone)
    assert first is not None and first.group(1) == "ios"
    assert 'lang="en"' in iphone


async def test_the_page_shows_validity_and_data_left_when_the_provider_reports_usage(
    gateway: Gateway,
) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    gateway.roamify.state.install(iccid)
    usage = (
        await gateway.execute(
            """query($iccid: String!) { esim(iccid: $iccid) { ... on Esim {
              usage { __typename ... on EsimUsage { unlimited planStart planEnd } } } } }""",
            iccid=iccid,
        )
    )["esim"]["usage"]
    assert usage["__typename"] == "EsimUsage" and usage["planStart"] and usage["planEnd"]
    text = (await gateway.http.get(page_path((await create_link(gateway, iccid))["url"]))).text
    assert '<section id="plan">' in text
    assert ("Unlimited" in text) if usage["unlimited"] else ("Data left" in text)
    # in use: the plan's window, and no installation deadline any more
    start, end = (
        datetime.fromisoformat(usage[k]).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        for k in ("planStart", "planEnd")
    )
    assert f"<dt>Plan period</dt><dd>{start} to {end}</dd>" in text
    assert "Install the eSIM by" not in text


SEVEN_DAYS_ESIM = """query($iccid: String!) { esim(iccid: $iccid) { ... on Esim { expiresAt
  usage { ... on EsimUsage { planEnd } } } } }"""


@pytest.mark.parametrize(
    ("language", "validity", "install_by"),
    [
        ("en", "<dt>Plan validity</dt><dd>7 days</dd>", "<dt>Install the eSIM by</dt>"),
        ("vi", "<dt>Thời hạn gói</dt><dd>7 ngày</dd>", "<dt>Cài đặt eSIM trước</dt>"),
    ],
)
async def test_a_seven_day_plan_says_seven_days_and_its_install_deadline_by_that_name(
    gateway: Gateway, language: str, validity: str, install_by: str
) -> None:
    package = await a_package(gateway, "ROAMIFY", minDays=7, maxDays=7)
    assert package["days"] == 7
    order = await buy(gateway, "ROAMIFY", package_id=package["packageId"])
    iccid = order["esims"][0]["iccid"]
    esim = (await gateway.execute(SEVEN_DAYS_ESIM, iccid=iccid))["esim"]
    # not installed: no plan window yet, and the profile's deadline is months away
    assert esim["usage"]["planEnd"] is None
    deadline = datetime.fromisoformat(esim["expiresAt"])
    assert deadline - datetime.now(UTC) > timedelta(days=30)
    path = page_path((await create_link(gateway, iccid))["url"])
    text = (await gateway.http.get(path, headers={"accept-language": language})).text
    assert validity in text
    shown = deadline.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert f"{install_by}<dd>{shown}</dd>" in text
    assert "Valid until" not in text and "Có hiệu lực đến" not in text


async def test_revoked_and_expired_links_answer_410_and_unknown_ones_404(
    gateway: Gateway,
) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    revoked = await create_link(gateway, iccid)
    expired = await create_link(gateway, iccid, expiresIn=300)
    result = (await gateway.execute(REVOKE_LINK, id=revoked["id"]))["revokeInstallLink"]
    assert result["__typename"] == "InstallLink" and result["revokedAt"] is not None
    assert result["url"] is None
    again = (await gateway.execute(REVOKE_LINK, id=revoked["id"]))["revokeInstallLink"]
    assert again["revokedAt"] == result["revokedAt"]
    from sqlalchemy.ext.asyncio import async_sessionmaker

    async with async_sessionmaker(gateway.ledger.engine).begin() as session:
        await session.execute(
            update(InstallLinkRow)
            .where(InstallLinkRow.id == expired["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    before = await gateway.upstream_calls()
    for link in (revoked, expired):
        gone = await gateway.http.get(page_path(link["url"]))
        assert gone.status_code == 410 and "expired or was withdrawn" in gone.text
        assert gone.headers["cache-control"] == "no-store"
        assert gone.headers["referrer-policy"] == "no-referrer"
    for path in ("/install/" + "A" * 43, "/install/short", "/install/" + "x" * 200):
        missing = await gateway.http.get(path)
        assert missing.status_code == 404 and "does not exist" in missing.text
        assert missing.headers["cache-control"] == "no-store"
    assert await gateway.upstream_calls() == before  # neither reads the eSIM
    unknown = (await gateway.execute(REVOKE_LINK, id="nope"))["revokeInstallLink"]
    assert unknown["__typename"] == "NotFoundError"


async def test_bad_expiry_and_unknown_esims_are_typed_errors_that_create_nothing(
    gateway: Gateway,
) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    for seconds in (0, 10, 91 * 86400):
        bad = await create_link(gateway, iccid, expiresIn=seconds)
        assert bad["__typename"] == "ValidationError" and bad["field"] == "expiresIn"
    missing = await create_link(gateway, "8999999999999999999")
    assert missing["__typename"] == "NotFoundError"
    assert (await create_link(gateway, "abc"))["__typename"] == "ValidationError"
    assert await rows(gateway) == []


async def test_only_the_owner_or_an_operator_creates_or_revokes_links(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(api_keys=KEYS, headers=ALICE) as gw:
        iccid = await an_esim(gw, "ROAMIFY")
        variables = {"iccid": iccid}
        by_bob = (await call(gw, CREATE_LINK, BOB, **variables)).json()["data"]
        assert by_bob["createInstallLink"]["__typename"] == "NotFoundError"
        by_ops = (await call(gw, CREATE_LINK, OPS, **variables)).json()["data"]
        assert by_ops["createInstallLink"]["__typename"] == "InstallLink"
        mine = await create_link(gw, iccid)
        revoke_by_bob = (await call(gw, REVOKE_LINK, BOB, id=mine["id"])).json()["data"]
        assert revoke_by_bob["revokeInstallLink"]["__typename"] == "NotFoundError"
        assert (await gw.http.get(page_path(mine["url"]))).status_code == 200
        revoke_by_ops = (await call(gw, REVOKE_LINK, OPS, id=mine["id"])).json()["data"]
        assert revoke_by_ops["revokeInstallLink"]["__typename"] == "InstallLink"
        # the page needs no login, and no key works around a revoked link
        anonymous = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gw.app), base_url="http://gateway.test"
        )
        async with anonymous:
            assert (
                await anonymous.get(page_path(by_ops["createInstallLink"]["url"]))
            ).status_code == 200
            assert (await anonymous.get(page_path(mine["url"]))).status_code == 410


async def test_link_creation_and_page_views_are_rate_limited(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(install_links_per_hour=2, install_page_views_per_minute=3) as gw:
        iccid = await an_esim(gw, "ROAMIFY")
        first, second = await create_link(gw, iccid), await create_link(gw, iccid)
        third = await create_link(gw, iccid)
        assert [first["__typename"], second["__typename"]] == ["InstallLink"] * 2
        assert third["__typename"] == "RateLimitedError" and third["retryAfterSeconds"] >= 1
        assert len(await rows(gw)) == 2
        path = page_path(first["url"])
        answers = [(await gw.http.get(path)).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        limited = await gw.http.get(path)
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["cache-control"] == "no-store"


async def test_the_token_never_reaches_a_log_line_or_a_metric(gateway: Gateway) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    with written_lines() as stream:
        link = await create_link(gateway, iccid)
        path = page_path(link["url"])
        token = path.rsplit("/", 1)[1]
        assert (await gateway.http.get(path)).status_code == 200
        await gateway.execute(REVOKE_LINK, id=link["id"])
        assert (await gateway.http.get(path)).status_code == 410
    written = stream.getvalue()
    assert "/install/[redacted]" in written
    assert token not in written
    metrics = (await gateway.http.get("/metrics")).text
    assert token not in metrics and "/install/:token" in metrics


async def test_unknown_expired_and_revoked_tokens_take_the_same_path_to_the_database(
    gateway: Gateway,
) -> None:
    """No clock here: the same statements run for a guess and for a dead link (a hashed
    lookup by a unique index), and neither reaches a provider."""
    from sqlalchemy import event

    iccid = await an_esim(gateway, "ROAMIFY")
    revoked = await create_link(gateway, iccid)
    await gateway.execute(REVOKE_LINK, id=revoked["id"])
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = gateway.ledger.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        seen: dict[str, list[str]] = {}
        for name, path in (
            ("revoked", page_path(revoked["url"])),
            ("guess", "/install/" + "B" * 43),
            ("malformed", "/install/not-a-token"),
        ):
            statements.clear()
            before = await gateway.upstream_calls()
            answer = await gateway.http.get(path)
            assert answer.status_code == (410 if name == "revoked" else 404)
            assert await gateway.upstream_calls() == before
            seen[name] = list(statements)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen["revoked"] == seen["guess"] == seen["malformed"]
    assert len(seen["guess"]) == 1 and "token_sha256" in seen["guess"][0]


async def test_a_provider_outage_gives_a_friendly_503_and_a_usage_outage_only_hides_usage(
    gateway: Gateway,
) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    path = page_path((await create_link(gateway, iccid))["url"])
    faults = gateway.roamify.control.faults
    faults.arm("GET", "/api/esim/usage", status=500, body={"message": "boom"}, times=None)
    without_usage = await gateway.http.get(path)
    assert without_usage.status_code == 200 and 'class="qrcode"' in without_usage.text
    assert "Data left" not in without_usage.text
    faults.arm("GET", "/api/esim", status=503, body={"message": "down"}, times=None)
    down = await gateway.http.get(path)
    faults.clear()
    assert down.status_code == 503 and "Try again in a few minutes" in down.text
    assert "down" not in down.text.replace("Try again", "") and iccid not in down.text
    assert down.headers["cache-control"] == "no-store"


async def test_with_redis_the_link_budget_is_shared_by_every_replica(
    gateway_factory: GatewayFactory, redis_url: str
) -> None:
    import uuid

    from esim_gateway.config import Settings

    # a principal of its own: the bucket outlives this test by an hour
    principal = f"traveller-{uuid.uuid4().hex}"
    keys = Settings.from_mapping(
        {"ESIM_GATEWAY_API_KEYS": f"{principal}:customer:{principal}-key"}
    ).api_keys
    options: dict[str, Any] = {
        "api_keys": keys,
        "headers": {"authorization": f"Bearer {principal}-key"},
        "rate_limit_redis_url": redis_url,
        "install_links_per_hour": 1,
    }
    async with gateway_factory(**options) as first:
        iccid = await an_esim(first, "ROAMIFY")
        assert (await create_link(first, iccid))["__typename"] == "InstallLink"
        sandboxes = first.sandboxes
    async with gateway_factory(sandboxes=sandboxes, **options) as second:
        again = await create_link(second, iccid)
        assert again["__typename"] == "RateLimitedError"
        assert again["retryAfterSeconds"] > 60
        assert len(await rows(second)) == 1


async def test_the_page_wears_the_configured_brand_and_public_url(
    gateway_factory: GatewayFactory,
) -> None:
    brand = {
        "public_url": "https://esim.acme.example",
        "brand_name": "Acme <Travel>",
        "brand_color": "#7b2cbf",
        "brand_logo_url": "https://cdn.acme.example/logo.svg",
    }
    async with gateway_factory(**brand) as gw:
        iccid = await an_esim(gw, "ROAMIFY")
        url = (await create_link(gw, iccid))["url"]
        assert url.startswith("https://esim.acme.example/install/")
        page = await gw.http.get(page_path(url))
    assert "<span>Acme &lt;Travel&gt;</span>" in page.text
    assert '<img src="https://cdn.acme.example/logo.svg" alt="">' in page.text
    assert "--brand: #7b2cbf;" in page.text
    csp = page.headers["content-security-policy"]
    assert "img-src 'self' data: https://cdn.acme.example;" in csp


async def test_an_esim_lists_its_links_newest_first_without_their_urls(gateway: Gateway) -> None:
    iccid = await an_esim(gateway, "SIMPLIFYTRIP")
    older = await create_link(gateway, iccid)
    newer = await create_link(gateway, iccid, expiresIn=3600)
    await gateway.execute(REVOKE_LINK, id=older["id"])
    listed = (
        await gateway.execute(
            """query($iccid: String!) { esim(iccid: $iccid) { ... on Esim {
              installLinks { id url expiresAt revokedAt } } } }""",
            iccid=iccid,
        )
    )["esim"]["installLinks"]
    assert [link["id"] for link in listed] == [newer["id"], older["id"]]
    assert all(link["url"] is None for link in listed)
    assert listed[0]["revokedAt"] is None and listed[1]["revokedAt"] is not None
    assert listed[0]["expiresAt"] == newer["expiresAt"]


async def test_a_link_to_an_esim_the_provider_no_longer_has_answers_410(gateway: Gateway) -> None:
    iccid = await an_esim(gateway, "ROAMIFY")
    path = page_path((await create_link(gateway, iccid))["url"])
    gateway.roamify.control.faults.arm(
        "GET", "/api/esim", status=404, body={"message": "eSIM not found"}
    )
    gone = await gateway.http.get(path)
    assert gone.status_code == 410 and "expired or was withdrawn" in gone.text
