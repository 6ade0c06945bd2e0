"""`GET /install/<token>`: the traveller's install page, no login, no JavaScript needed.

Server-rendered HTML: the QR code (SVG drawn here by segno), the one-tap install button
for the visitor's platform (from the User-Agent; the other platform's sits in a
`<details>` one tap away), the manual codes, the instructions of
`esim_gateway.install.instructions` in the visitor's language (Accept-Language), and the
plan: its validity in days (from the catalog), its window once the eSIM is in use and
data left when the provider reports usage, and, until then, the date by which the
profile must be installed (`Esim.expiresAt`: a deadline for installing, not the plan's
end). A few lines of script,
allowed by a per-response CSP nonce, add copy buttons next to the codes; without them
the codes are plain selectable text.

Security: strict CSP (`default-src 'none'`, script and style by nonce only, images from
the page itself or the configured logo's origin), `Referrer-Policy: no-referrer` (the
token never leaves in a Referer), `Cache-Control: no-store`, `noindex`, no framing. The
page's URL holds only the token, never a credential. An unknown token answers 404, an
expired or revoked one 410, both after the same hashed lookup; page views are rate
limited per client IP.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import segno
import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from esim_gateway.config import Role, Settings
from esim_gateway.context import Context, Services
from esim_gateway.dataloaders.loaders import build_loaders
from esim_gateway.domain import EsimProfile, EsimUsage
from esim_gateway.errors import GatewayError, NotFound, ResourceNotFound
from esim_gateway.http.auth import Principal
from esim_gateway.install.instructions import (
    Guide,
    Method,
    MethodKind,
    Platform,
    Step,
    build_guide,
    negotiate_language,
)
from esim_gateway.ledger.install_links import LinkState
from esim_gateway.ledger.orders import OrderRecord
from esim_gateway.ops.forwarded import client_address
from esim_gateway.ops.ratelimit import retry_after_header
from esim_gateway.resolvers import esims as esim_resolvers

__all__ = ["content_security_policy", "install_routes", "platform_of"]

#: structlog, so the link id and outcome are fields of the JSON line
log = structlog.get_logger("esim_gateway.install")

PAGE_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Install your eSIM",
        "lead": "Follow these steps on the phone that will use the eSIM. Stay on Wi-Fi"
        " while it installs.",
        "install_ios": "Install on iPhone",
        "install_android": "Install on Android",
        "other_ios": "Using an iPhone or iPad?",
        "other_android": "Using an Android phone?",
        "one_tap_note": "One-tap install needs iOS 17.4 or later on iPhone; on Android it"
        " depends on the phone.",
        "qr_title": "QR code",
        "qr_note": "Open this page on another screen and scan the code with the phone.",
        "plan": "Your plan",
        "validity": "Plan validity",
        "day": "{n} day",
        "days": "{n} days",
        "period": "Plan period",
        "from_to": "{start} to {end}",
        "until": "until {end}",
        "install_by": "Install the eSIM by",
        "data_left": "Data left",
        "unlimited": "Unlimited",
        "of": "of",
        "status": "Status",
        "copy": "Copy",
        "copied": "Copied",
        "not_ready": "Your eSIM is not ready yet. Open this link again in a few minutes.",
        "not_found_title": "Link not found",
        "not_found": "This install link does not exist. Check that you opened the whole link.",
        "gone_title": "Link no longer valid",
        "gone": "This install link has expired or was withdrawn. Ask whoever sent it for a"
        " new one.",
        "busy_title": "Please wait a moment",
        "busy": "Too many requests from your network. Try again in a minute.",
        "unavailable_title": "Temporarily unavailable",
        "unavailable": "We cannot reach the eSIM provider right now. Try again in a few minutes.",
    },
    "vi": {
        "title": "Cài đặt eSIM của bạn",
        "lead": "Làm theo các bước sau trên điện thoại sẽ dùng eSIM. Giữ kết nối Wi-Fi"
        " trong khi cài đặt.",
        "install_ios": "Cài đặt trên iPhone",
        "install_android": "Cài đặt trên Android",
        "other_ios": "Bạn dùng iPhone hoặc iPad?",
        "other_android": "Bạn dùng điện thoại Android?",
        "one_tap_note": "Cài đặt một chạm cần iOS 17.4 trở lên trên iPhone; trên Android"
        " tùy từng máy.",
        "qr_title": "Mã QR",
        "qr_note": "Mở trang này trên một màn hình khác và dùng điện thoại quét mã.",
        "plan": "Gói cước của bạn",
        "validity": "Thời hạn gói",
        "day": "{n} ngày",
        "days": "{n} ngày",
        "period": "Thời gian sử dụng gói",
        "from_to": "từ {start} đến {end}",
        "until": "đến {end}",
        "install_by": "Cài đặt eSIM trước",
        "data_left": "Dữ liệu còn lại",
        "unlimited": "Không giới hạn",
        "of": "trên",
        "status": "Trạng thái",
        "copy": "Sao chép",
        "copied": "Đã sao chép",
        "not_ready": "eSIM của bạn chưa sẵn sàng. Hãy mở lại liên kết này sau vài phút.",
        "not_found_title": "Không tìm thấy liên kết",
        "not_found": "Liên kết cài đặt này không tồn tại. Hãy kiểm tra bạn đã mở đủ liên kết.",
        "gone_title": "Liên kết không còn hiệu lực",
        "gone": "Liên kết cài đặt này đã hết hạn hoặc đã bị thu hồi. Hãy xin người gửi một"
        " liên kết mới.",
        "busy_title": "Vui lòng đợi một chút",
        "busy": "Có quá nhiều yêu cầu từ mạng của bạn. Hãy thử lại sau một phút.",
        "unavailable_title": "Tạm thời không khả dụng",
        "unavailable": "Hiện không kết nối được nhà cung cấp eSIM. Hãy thử lại sau vài phút.",
    },
}

_COPY_SCRIPT = """
(function () {
  var labels = document.documentElement.dataset;
  document.querySelectorAll('code[data-copy]').forEach(function (code) {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy';
    button.textContent = labels.copy;
    button.addEventListener('click', function () {
      var text = code.textContent;
      var done = function () {
        button.textContent = labels.copied;
        setTimeout(function () { button.textContent = labels.copy; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {});
      } else {
        var range = document.createRange();
        range.selectNodeContents(code);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (document.execCommand('copy')) { done(); }
      }
    });
    code.after(button);
  });
})();
"""

_STYLE = """
:root { --brand: %(color)s; color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1b1f24; background: #f4f6f8; }
header { background: var(--brand); color: #fff; padding: 14px 20px; display: flex;
  align-items: center; gap: 12px; }
header img { height: 32px; width: auto; }
header span { font-weight: 600; font-size: 18px; }
main { max-width: 760px; margin: 0 auto; padding: 16px; }
h1 { font-size: 24px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 0 0 8px; }
h3 { font-size: 16px; margin: 16px 0 6px; }
section { background: #fff; border-radius: 12px; padding: 16px; margin: 14px 0;
  box-shadow: 0 1px 2px rgba(0, 0, 0, .08); }
.lead { color: #45505c; margin: 0 0 8px; }
a.install { display: block; text-align: center; background: var(--brand); color: #fff;
  text-decoration: none; font-weight: 600; font-size: 18px; padding: 14px; border-radius: 10px;
  margin: 8px 0; }
a.install.secondary { background: #fff; color: var(--brand); border: 2px solid var(--brand); }
.note { color: #5b6672; font-size: 14px; }
.qr svg { width: 100%%; max-width: 260px; height: auto; display: block; margin: 8px auto; }
ol { padding-left: 22px; margin: 6px 0; }
li { margin: 4px 0; }
code { font: 15px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #eef1f4; padding: 2px 6px; border-radius: 6px; word-break: break-all;
  display: inline-block; margin-top: 2px; }
button.copy { margin-left: 8px; font-size: 14px; padding: 4px 10px; border-radius: 6px;
  border: 1px solid #c5ccd3; background: #fff; color: #1b1f24; cursor: pointer; }
details { margin-top: 10px; }
summary { cursor: pointer; color: var(--brand); font-weight: 600; padding: 6px 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
dt { color: #5b6672; }
dd { margin: 0; font-weight: 600; }
@media (min-width: 900px) {
  main { max-width: 980px; display: grid; grid-template-columns: 1fr 1fr; gap: 0 18px; }
  main > .wide { grid-column: 1 / -1; }
}
"""


def platform_of(user_agent: str | None) -> Platform | None:
    """iPhone, iPad or iPod -> IOS; Android -> ANDROID; anything else (a desktop) None."""
    agent = (user_agent or "").lower()
    if any(word in agent for word in ("iphone", "ipad", "ipod")):
        return Platform.IOS
    if "android" in agent:
        return Platform.ANDROID
    return None


def _logo_origin(settings: Settings) -> str | None:
    logo = settings.brand_logo_url
    if logo is None or not logo.startswith("https://"):
        return None
    parts = urlsplit(logo)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(nonce: str, settings: Settings) -> str:
    images = "'self' data:"
    origin = _logo_origin(settings)
    if origin is not None:
        images += f" {origin}"
    return (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; "
        f"style-src 'nonce-{nonce}'; "
        f"img-src {images}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _headers(nonce: str, settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(nonce, settings),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Robots-Tag": "noindex, nofollow",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _document(
    settings: Settings,
    language: str,
    nonce: str,
    title: str,
    body: str,
    *,
    script: bool = False,
) -> str:
    texts = PAGE_TEXTS[language]
    logo = f'<img src="{_e(settings.brand_logo_url)}" alt="">' if settings.brand_logo_url else ""
    scripts = f'<script nonce="{nonce}">{_COPY_SCRIPT}</script>' if script else ""
    return (
        "<!doctype html>"
        f'<html lang="{language}" data-copy="{_e(texts["copy"])}"'
        f' data-copied="{_e(texts["copied"])}">'
        '<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        '<meta name="referrer" content="no-referrer">'
        # no favicon request: the page loads nothing it does not need
        '<link rel="icon" href="data:,">'
        f"<title>{_e(title)} · {_e(settings.brand_name)}</title>"
        f'<style nonce="{nonce}">{_STYLE % {"color": settings.brand_color}}</style>'
        "</head><body>"
        f"<header>{logo}<span>{_e(settings.brand_name)}</span></header>"
        f"<main>{body}</main>{scripts}</body></html>"
    )


def _message_page(
    settings: Settings, language: str, status: int, key: str, extra: Mapping[str, str] = {}
) -> Response:
    texts = PAGE_TEXTS[language]
    nonce = secrets.token_urlsafe(16)
    title = texts[f"{key}_title"]
    body = f'<section class="wide"><h1>{_e(title)}</h1><p>{_e(texts[key])}</p></section>'
    return HTMLResponse(
        _document(settings, language, nonce, title, body),
        status_code=status,
        headers={**_headers(nonce, settings), **extra},
    )


def _step(step: Step) -> str:
    if step.value is None:
        return f"<li>{_e(step.text)}</li>"
    kind = step.value_kind.value.lower() if step.value_kind else "value"
    return (
        f"<li>{_e(step.text)}<br>"
        f'<code data-copy="{kind}" class="{kind}">{_e(step.value)}</code></li>'
    )


def _steps(steps: tuple[Step, ...]) -> str:
    return "<ol>" + "".join(_step(s) for s in steps) + "</ol>"


def _safe_link(url: str | None) -> str | None:
    """Only https links become buttons (a provider's value is never trusted as markup)."""
    return url if url is not None and url.startswith("https://") else None


def _install_button(
    method: Method | None, platform: Platform, texts: dict[str, str], *, primary: bool
) -> str:
    url = _safe_link(method.url) if method is not None else None
    if url is None:
        return ""
    label = texts["install_ios" if platform is Platform.IOS else "install_android"]
    css = "install" if primary else "install secondary"
    return (
        f'<a class="{css}" id="install-{platform.value.lower()}" href="{_e(url)}"'
        f' rel="noreferrer noopener">{_e(label)}</a>'
    )


def _one_tap(guide: Guide, platform: Platform) -> Method | None:
    return next((m for m in guide.platform(platform).methods if m.kind is MethodKind.ONE_TAP), None)


def _platform_section(guide: Guide, platform: Platform, texts: dict[str, str]) -> str:
    part = guide.platform(platform)
    methods = "".join(f"<h3>{_e(m.title)}</h3>{_steps(m.steps)}" for m in part.methods)
    return f"<h2>{_e(part.title)}</h2>{methods}"


def _amount_mb(mb: Decimal) -> str:
    if mb >= 1024:
        return f"{(mb / 1024).quantize(Decimal('0.01')).normalize():f} GB"
    return f"{mb.quantize(Decimal('1')):f} MB"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _validity_rows(
    profile: EsimProfile, usage: EsimUsage | None, plan_days: int | None, texts: dict[str, str]
) -> list[tuple[str, str]]:
    """The plan's days; then its window once the provider reports one (the eSIM is in
    use), else the installation deadline: a profile in use has nothing left to install."""
    rows: list[tuple[str, str]] = []
    if plan_days is not None:
        rows.append(
            (texts["validity"], texts["day" if plan_days == 1 else "days"].format(n=plan_days))
        )
    start, end = (usage.plan_start, usage.plan_end) if usage is not None else (None, None)
    if end is not None:
        period = (
            texts["from_to"].format(start=_when(start), end=_when(end))
            if start
            else texts["until"].format(end=_when(end))
        )
        rows.append((texts["period"], period))
    elif start is None and profile.expires_at is not None:
        rows.append((texts["install_by"], _when(profile.expires_at)))
    return rows


def _plan_section(
    profile: EsimProfile, usage: EsimUsage | None, plan_days: int | None, texts: dict[str, str]
) -> str:
    rows = _validity_rows(profile, usage, plan_days, texts)
    if usage is not None:
        if usage.unlimited:
            rows.append((texts["data_left"], texts["unlimited"]))
        elif usage.data_remaining_mb is not None:
            left = _amount_mb(usage.data_remaining_mb)
            if usage.data_allowed_mb is not None:
                left += f" {texts['of']} {_amount_mb(usage.data_allowed_mb)}"
            rows.append((texts["data_left"], left))
    if not rows:
        return ""
    cells = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    return f'<section id="plan"><h2>{_e(texts["plan"])}</h2><dl>{cells}</dl></section>'


def render_install_page(
    settings: Settings,
    guide: Guide,
    profile: EsimProfile,
    usage: EsimUsage | None,
    visitor: Platform | None,
    nonce: str,
    plan_days: int | None = None,
) -> str:
    texts = PAGE_TEXTS[guide.language]
    first = visitor or Platform.IOS
    other = Platform.ANDROID if first is Platform.IOS else Platform.IOS
    primary = _install_button(_one_tap(guide, first), first, texts, primary=True)
    # a desktop is neither platform: both buttons look alike and neither is folded away
    secondary = _install_button(_one_tap(guide, other), other, texts, primary=visitor is None)
    parts = [
        f'<section class="wide" id="install"><h1>{_e(texts["title"])}</h1>'
        f'<p class="lead">{_e(texts["lead"])}</p>'
    ]
    if visitor is None:
        parts.append(primary + secondary)
    elif primary or secondary:
        label = texts["other_android" if other is Platform.ANDROID else "other_ios"]
        parts.append(primary)
        if secondary:
            parts.append(
                f'<details id="other-platform"><summary>{_e(label)}</summary>{secondary}</details>'
            )
    if primary or secondary:
        parts.append(f'<p class="note">{_e(texts["one_tap_note"])}</p>')
    if not profile.lpa and guide.manual is None:
        parts.append(f'<p id="not-ready">{_e(texts["not_ready"])}</p>')
    parts.append("</section>")
    if profile.lpa:
        svg = segno.make_qr(profile.lpa, error="m").svg_inline(
            scale=1, border=4, omitsize=True, light="#fff", svgclass="qrcode"
        )
        parts.append(
            f'<section class="qr" id="qr"><h2>{_e(texts["qr_title"])}</h2>{svg}'
            f'<p class="note">{_e(texts["qr_note"])}</p></section>'
        )
    parts.append(_plan_section(profile, usage, plan_days, texts))
    if guide.manual is not None:
        parts.append(
            f'<section id="manual"><h2>{_e(guide.manual.title)}</h2>'
            f"{_steps(guide.manual.steps)}</section>"
        )
    for platform in (first, other):
        parts.append(
            f'<section id="steps-{platform.value.lower()}">'
            f"{_platform_section(guide, platform, texts)}</section>"
        )
    parts.append(
        f'<section id="network"><h2>{_e(guide.network.title)}</h2>'
        f"{_steps(guide.network.steps)}</section>"
    )
    return _document(settings, guide.language, nonce, texts["title"], "".join(parts), script=True)


@dataclass(frozen=True, slots=True)
class _Visit:
    profile: EsimProfile
    usage: EsimUsage | None
    #: the plan's validity in days, from the catalog (None when it no longer lists it)
    plan_days: int | None


async def _read_esim(services: Services, owner: str, iccid: str) -> _Visit:
    """The eSIM as its owner sees it (the link stands for the owner), and its usage when
    the provider reports it; a usage failure only leaves the usage out."""
    context = Context(
        services=services,
        principal=Principal(owner, Role.CUSTOMER),
        loaders=build_loaders(services.providers, services.ledger),
    )
    profile, record = await esim_resolvers.find_esim(context, iccid)
    usage: EsimUsage | None = None
    try:
        usage = await esim_resolvers.usage(context, profile)
    except GatewayError:
        usage = None
    return _Visit(profile, usage, await _plan_days(services, profile, record))


async def _plan_days(services: Services, profile: EsimProfile, record: OrderRecord) -> int | None:
    """From the catalog snapshot; a catalog that cannot be read only leaves it out. The
    package is the profile's where the provider names it (not Roamify's eSIM by ICCID),
    else the order's when it bought one package only."""
    package_id = profile.package_id
    if package_id is None and record.kind == "order":
        named = {str(item["packageId"]) for item in record.request.get("items", [])}
        package_id = named.pop() if len(named) == 1 else None
    if package_id is None:
        return None
    try:
        package = await services.catalog.get(profile.provider, package_id)
    except GatewayError:
        return None
    return package.days if package is not None else None


async def install_page(request: Request) -> Response:
    services: Services = request.app.state.services
    settings = services.settings
    install = services.install
    language = negotiate_language(request.headers.get("accept-language"))
    wait = await install.page_limiter.take(f"ip:{client_address(request.scope)}")
    if wait > 0:
        return _message_page(
            settings, language, 429, "busy", {"Retry-After": retry_after_header(wait)}
        )
    link = await install.links.by_token(request.path_params["token"])
    now = datetime.now(UTC)
    if link is None:
        return _message_page(settings, language, 404, "not_found")
    state = link.state(now)
    if state is not LinkState.ACTIVE:
        log.info("install page refused", link_id=link.id, state=state.value)
        return _message_page(settings, language, 410, "gone")
    try:
        visit = await _read_esim(services, link.owner, link.iccid)
    except (ResourceNotFound, NotFound):
        # the eSIM is gone (or its owner changed): the link has nothing left to show
        log.info("install page refused", link_id=link.id, state="ESIM_GONE")
        return _message_page(settings, language, 410, "gone")
    except GatewayError as exc:
        log.warning(
            "install page could not read the eSIM", link_id=link.id, error=type(exc).__name__
        )
        return _message_page(settings, language, 503, "unavailable")
    guide = build_guide(visit.profile, language)
    nonce = secrets.token_urlsafe(16)
    body = render_install_page(
        settings,
        guide,
        visit.profile,
        visit.usage,
        platform_of(request.headers.get("user-agent")),
        nonce,
        visit.plan_days,
    )
    return HTMLResponse(
        body, headers={**_headers(nonce, settings), "Vary": "User-Agent, Accept-Language"}
    )


def install_routes() -> list[Route]:
    return [Route("/install/{token}", install_page, methods=["GET"])]
