"""Install instructions as data, language negotiation, and the page's pure helpers."""

from __future__ import annotations

from typing import Any

import pytest

from esim_gateway.config import ConfigError, Settings
from esim_gateway.domain import EsimProfile, ProviderName, install_links
from esim_gateway.errors import redact
from esim_gateway.http.install_page import PAGE_TEXTS, content_security_policy, platform_of
from esim_gateway.install.instructions import (
    TEXTS,
    MethodKind,
    Platform,
    ValueKind,
    build_guide,
    negotiate_language,
    split_lpa,
    supported_language,
)
from esim_gateway.ledger.install_links import TOKEN_SHAPE, new_token, token_digest

LPA = "LPA:1$smdp.example.com$K2-ABCDEF-123456"


def profile(**fields: Any) -> EsimProfile:
    return EsimProfile(
        provider=ProviderName.SIMPLIFYTRIP, iccid="8984000000000000001", status="SUCCESS", **fields
    )


def test_a_profile_without_credentials_gets_no_method_and_no_value() -> None:
    guide = build_guide(profile(), "en")
    assert guide.ios.methods == () and guide.android.methods == ()
    assert guide.manual is None
    assert [s.text for s in guide.network.steps] == [TEXTS["en"]["data_line"]]
    assert all(s.value is None for s in guide.network.steps)


def test_only_an_lpa_string_still_gives_qr_and_manual_codes_read_from_it() -> None:
    guide = build_guide(profile(lpa=LPA), "en")
    assert [m.kind for m in guide.ios.methods] == [MethodKind.QR_CODE, MethodKind.MANUAL]
    assert guide.manual is not None
    assert (guide.manual.smdp_address, guide.manual.activation_code) == (
        "smdp.example.com",
        "K2-ABCDEF-123456",
    )
    assert split_lpa("LPA:1$$x") == (None, None) and split_lpa("nonsense") == (None, None)


def test_one_tap_links_lead_each_platform_and_the_apn_is_shown_only_when_given() -> None:
    ios, android = install_links(LPA)
    full = profile(
        lpa=LPA,
        ios_install_url=ios,
        android_install_url=android,
        apn="plus.4g",
        apn_automatic=False,
        data_roaming=True,
        hotspot=False,
    )
    guide = build_guide(full, "en")
    assert guide.platform(Platform.IOS).methods[0].url == ios
    assert guide.platform(Platform.ANDROID).methods[0].url == android
    apn = [s for s in guide.network.steps if s.value_kind is ValueKind.APN]
    assert [(s.text, s.value) for s in apn] == [(TEXTS["en"]["apn_set"], "plus.4g")]
    texts = [s.text for s in guide.network.steps]
    assert TEXTS["en"]["roaming_on"] in texts and TEXTS["en"]["hotspot_no"] in texts
    silent = build_guide(profile(lpa=LPA), "en")
    assert [s.text for s in silent.network.steps] == [TEXTS["en"]["data_line"]]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("*", "en"),
        ("vi-VN,vi;q=0.9,en-US;q=0.8", "vi"),
        ("fr-FR, vi;q=0.5, en;q=0.4", "vi"),
        ("en;q=0.2, vi;q=0.7", "vi"),
        ("vi;q=0, en", "en"),
        ("de, fr", "en"),
        ("vi;q=abc, en;q=0.1", "en"),
    ],
)
def test_the_page_language_follows_accept_language(header: str | None, expected: str) -> None:
    assert negotiate_language(header) == expected


def test_language_tags_are_matched_on_their_primary_subtag() -> None:
    assert supported_language("VI_vn") == "vi" and supported_language("en-GB") == "en"
    assert supported_language("fr") is None and supported_language("") is None


def test_every_language_has_every_text() -> None:
    assert set(TEXTS) == set(PAGE_TEXTS) == {"en", "vi"}
    assert all(TEXTS[lang].keys() == TEXTS["en"].keys() for lang in TEXTS)
    assert all(PAGE_TEXTS[lang].keys() == PAGE_TEXTS["en"].keys() for lang in PAGE_TEXTS)


def test_the_platform_comes_from_the_user_agent() -> None:
    assert platform_of("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)") is Platform.IOS
    assert platform_of("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)") is Platform.IOS
    assert platform_of("Mozilla/5.0 (Linux; Android 14; Pixel 8)") is Platform.ANDROID
    assert platform_of("Mozilla/5.0 (X11; Linux x86_64)") is None and platform_of(None) is None


def test_tokens_are_256_bit_url_safe_and_redacted_wherever_they_appear() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(TOKEN_SHAPE.fullmatch(t) for t in tokens)
    token = tokens.pop()
    assert len(token_digest(token)) == 64 and token_digest(token) != token
    line = f"GET /install/{token} HTTP/1.1 from https://gw.example/install/{token}?x=1"
    assert token not in redact(line)
    assert redact(line).count("/install/[redacted]") == 2


def test_the_csp_allows_a_configured_https_logo_origin_and_nothing_else() -> None:
    plain = content_security_policy("n0nce", Settings())
    assert plain == (
        "default-src 'none'; script-src 'nonce-n0nce'; style-src 'nonce-n0nce'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    branded = Settings(brand_logo_url="https://cdn.example.com/logo.svg")
    assert "img-src 'self' data: https://cdn.example.com;" in content_security_policy("n", branded)


def test_branding_is_read_and_checked_from_the_environment() -> None:
    settings = Settings.from_mapping(
        {
            "ESIM_GATEWAY_BRAND_NAME": "Acme Travel",
            "ESIM_GATEWAY_BRAND_COLOR": "#c0ffee",
            "ESIM_GATEWAY_BRAND_LOGO_URL": "/static/logo.svg",
            "ESIM_GATEWAY_INSTALL_LINKS_PER_HOUR": "5",
        }
    )
    assert (settings.brand_name, settings.brand_color, settings.brand_logo_url) == (
        "Acme Travel",
        "#c0ffee",
        "/static/logo.svg",
    )
    assert settings.install_links_per_hour == 5
    for name, value in (
        ("BRAND_COLOR", "red; background: url(x)"),
        ("BRAND_LOGO_URL", "javascript:alert(1)"),
        ("BRAND_LOGO_URL", "http://cdn.example.com/logo.png"),
        ("INSTALL_PAGE_VIEWS_PER_MINUTE", "0"),
    ):
        with pytest.raises(ConfigError, match=f"ESIM_GATEWAY_{name}"):
            Settings.from_mapping({f"ESIM_GATEWAY_{name}": value})
