"""Install instructions as typed, ordered steps, in the traveller's language.

`build_guide(profile, language)` turns one eSIM's profile into steps for iOS (one-tap
link on iOS 17.4+, camera QR, manual entry), Android (one-tap link, QR, manual entry),
the manual codes on their own, and network settings. A method appears only when the
provider gave what it needs (no QR without an LPA string, no manual entry without the
SM-DP+ address and activation code), and a step never shows a value the provider did
not send: no APN line without an APN, no roaming or hotspot line when the provider is
silent about them.

Pure functions; no I/O. Texts live in `TEXTS`, one table per language.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from esim_gateway.domain import EsimProfile

__all__ = [
    "SUPPORTED_LANGUAGES",
    "Guide",
    "ManualCodes",
    "Method",
    "MethodKind",
    "NetworkSettings",
    "Platform",
    "PlatformGuide",
    "Step",
    "ValueKind",
    "build_guide",
    "negotiate_language",
    "supported_language",
    "text",
]


class Platform(enum.StrEnum):
    IOS = "IOS"
    ANDROID = "ANDROID"


class MethodKind(enum.StrEnum):
    ONE_TAP = "ONE_TAP"
    QR_CODE = "QR_CODE"
    MANUAL = "MANUAL"


class ValueKind(enum.StrEnum):
    """What a step's value is, so an app can render it (copy button, monospace...)."""

    SMDP_ADDRESS = "SMDP_ADDRESS"
    ACTIVATION_CODE = "ACTIVATION_CODE"
    LPA = "LPA"
    APN = "APN"


@dataclass(frozen=True, slots=True)
class Step:
    text: str
    value: str | None = None
    value_kind: ValueKind | None = None


@dataclass(frozen=True, slots=True)
class Method:
    kind: MethodKind
    title: str
    steps: tuple[Step, ...]
    #: the one-tap install link (ONE_TAP only)
    url: str | None = None


@dataclass(frozen=True, slots=True)
class PlatformGuide:
    platform: Platform
    title: str
    methods: tuple[Method, ...]


@dataclass(frozen=True, slots=True)
class ManualCodes:
    title: str
    smdp_address: str
    activation_code: str
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    title: str
    apn: str | None
    apn_automatic: bool | None
    data_roaming: bool | None
    hotspot: bool | None
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Guide:
    language: str
    ios: PlatformGuide
    android: PlatformGuide
    manual: ManualCodes | None
    network: NetworkSettings

    def platform(self, platform: Platform) -> PlatformGuide:
        return self.ios if platform is Platform.IOS else self.android


TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "ios": "iPhone and iPad",
        "android": "Android",
        "one_tap": "Install with one tap",
        "qr": "Scan the QR code",
        "manual": "Enter the details manually",
        "codes": "Manual codes",
        "network": "Network settings",
        "ios_tap_1": "On the iPhone that will use the eSIM (iOS 17.4 or later), tap the"
        " install button.",
        "ios_tap_2": "Tap Continue, then follow the prompts to add the eSIM.",
        "ios_label": "Give the new line a label such as “Travel”; keep your usual line for"
        " calls if you like.",
        "ios_qr_1": "Open Settings > Mobile Service (Cellular) > Add eSIM > Use QR Code.",
        "ios_qr_2": "Scan the QR code shown on another screen (or point the Camera app at it"
        " and tap the banner).",
        "ios_qr_3": "Tap Continue and wait until the eSIM is activated.",
        "ios_manual_1": "Open Settings > Mobile Service (Cellular) > Add eSIM > Use QR Code"
        " > Enter Details Manually.",
        "smdp": "SM-DP+ address:",
        "code": "Activation code:",
        "ios_manual_3": "Tap Next and wait until the eSIM is activated.",
        "android_tap_1": "On the Android phone that will use the eSIM, tap the install button.",
        "android_tap_2": "Confirm the download when your phone asks, and wait until the eSIM"
        " is ready.",
        "android_qr_1": "Open Settings > Network & internet > SIMs > Add eSIM (or Download a"
        " SIM instead).",
        "android_qr_2": "Scan the QR code shown on another screen.",
        "android_qr_3": "Confirm the download and wait until the eSIM is ready.",
        "android_manual_1": "Open Settings > Network & internet > SIMs > Add eSIM, then tap"
        " Need help? > Enter it manually.",
        "android_manual_2": "Enter this activation code:",
        "android_manual_3": "Confirm the download and wait until the eSIM is ready.",
        "codes_1": "Use these when your phone asks for the details of the eSIM.",
        "data_line": "When you arrive, choose this eSIM for mobile data.",
        "apn_set": "Set the APN (access point name) to:",
        "apn_auto_with": "The APN is set automatically; if mobile data does not work, set it to:",
        "apn_auto": "The APN is set automatically: nothing to enter.",
        "roaming_on": "Turn on Data Roaming for this eSIM.",
        "roaming_off": "Data Roaming can stay off for this eSIM.",
        "hotspot_yes": "Personal hotspot (tethering) works with this plan.",
        "hotspot_no": "Personal hotspot (tethering) is not available on this plan.",
    },
    "vi": {
        "ios": "iPhone và iPad",
        "android": "Android",
        "one_tap": "Cài đặt bằng một chạm",
        "qr": "Quét mã QR",
        "manual": "Nhập thông tin thủ công",
        "codes": "Mã cài đặt thủ công",
        "network": "Cài đặt mạng",
        "ios_tap_1": "Trên iPhone sẽ dùng eSIM (iOS 17.4 trở lên), chạm vào nút cài đặt.",
        "ios_tap_2": "Chạm Tiếp tục, rồi làm theo hướng dẫn để thêm eSIM.",
        "ios_label": "Đặt tên cho đường dây mới, ví dụ “Du lịch”; bạn có thể giữ số"
        " thường dùng để gọi điện.",
        "ios_qr_1": "Mở Cài đặt > Di động > Thêm eSIM > Sử dụng mã QR.",
        "ios_qr_2": "Quét mã QR hiển thị trên một màn hình khác (hoặc mở ứng dụng Camera,"
        " hướng vào mã rồi chạm vào thông báo).",
        "ios_qr_3": "Chạm Tiếp tục và chờ đến khi eSIM được kích hoạt.",
        "ios_manual_1": "Mở Cài đặt > Di động > Thêm eSIM > Sử dụng mã QR > Nhập thông tin"
        " thủ công.",
        "smdp": "Địa chỉ SM-DP+:",
        "code": "Mã kích hoạt:",
        "ios_manual_3": "Chạm Tiếp và chờ đến khi eSIM được kích hoạt.",
        "android_tap_1": "Trên điện thoại Android sẽ dùng eSIM, chạm vào nút cài đặt.",
        "android_tap_2": "Xác nhận tải xuống khi điện thoại hỏi và chờ đến khi eSIM sẵn sàng.",
        "android_qr_1": "Mở Cài đặt > Mạng và Internet > SIM > Thêm eSIM (hoặc Tải SIM xuống).",
        "android_qr_2": "Quét mã QR hiển thị trên một màn hình khác.",
        "android_qr_3": "Xác nhận tải xuống và chờ đến khi eSIM sẵn sàng.",
        "android_manual_1": "Mở Cài đặt > Mạng và Internet > SIM > Thêm eSIM, rồi chạm Bạn"
        " cần trợ giúp? > Nhập thủ công.",
        "android_manual_2": "Nhập mã kích hoạt sau:",
        "android_manual_3": "Xác nhận tải xuống và chờ đến khi eSIM sẵn sàng.",
        "codes_1": "Dùng các mã này khi điện thoại yêu cầu thông tin của eSIM.",
        "data_line": "Khi đến nơi, chọn eSIM này cho dữ liệu di động.",
        "apn_set": "Đặt APN (tên điểm truy cập) là:",
        "apn_auto_with": "APN được đặt tự động; nếu không có dữ liệu di động, hãy đặt là:",
        "apn_auto": "APN được đặt tự động: không cần nhập gì.",
        "roaming_on": "Bật Chuyển vùng dữ liệu cho eSIM này.",
        "roaming_off": "Có thể tắt Chuyển vùng dữ liệu cho eSIM này.",
        "hotspot_yes": "Gói này dùng được điểm truy cập cá nhân (chia sẻ mạng).",
        "hotspot_no": "Gói này không dùng được điểm truy cập cá nhân (chia sẻ mạng).",
    },
}

SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(TEXTS)
DEFAULT_LANGUAGE = "en"


def supported_language(tag: str) -> str | None:
    """The supported language for a BCP 47 tag (`vi`, `vi-VN`, `EN_us`), else None."""
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in TEXTS else None


def negotiate_language(accept_language: str | None) -> str:
    """The best supported language for an `Accept-Language` header (English otherwise)."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = supported_language(tag) if tag and tag != "*" else None
        if language is not None and quality > 0:
            choices.append((-quality, index, language))
    return min(choices)[2] if choices else DEFAULT_LANGUAGE


def text(language: str, key: str) -> str:
    return TEXTS[language][key]


def split_lpa(lpa: str | None) -> tuple[str | None, str | None]:
    """(SM-DP+ address, activation code) of an `LPA:1$<smdp>$<code>` string."""
    if not lpa or not lpa.upper().startswith("LPA:1$"):
        return None, None
    parts = lpa.split("$")
    if len(parts) < 3 or not parts[1] or not parts[2]:
        return None, None
    return parts[1], parts[2]


def manual_codes(profile: EsimProfile) -> tuple[str | None, str | None]:
    """The SM-DP+ address and activation code as sent, else read from the LPA string."""
    smdp, code = split_lpa(profile.lpa)
    return profile.smdp_address or smdp, profile.activation_code or code


def _method(
    t: dict[str, str], kind: MethodKind, title: str, *steps: Step | str, url: str | None = None
) -> Method:
    """A method; a `str` step is a text key, shown as it is."""
    return Method(
        kind, t[title], tuple(Step(t[s]) if isinstance(s, str) else s for s in steps), url=url
    )


def build_guide(profile: EsimProfile, language: str) -> Guide:
    """Every way to install this eSIM, in `language` (one of `SUPPORTED_LANGUAGES`)."""
    t = TEXTS[language]
    smdp, code = manual_codes(profile)
    lpa, ios_url, android_url = profile.lpa, profile.ios_install_url, profile.android_install_url
    smdp_step = Step(t["smdp"], smdp, ValueKind.SMDP_ADDRESS)
    code_step = Step(t["code"], code, ValueKind.ACTIVATION_CODE)
    has_codes = smdp is not None and code is not None
    ios = (
        _method(
            t, MethodKind.ONE_TAP, "one_tap", "ios_tap_1", "ios_tap_2", "ios_label", url=ios_url
        )
        if ios_url
        else None,
        _method(t, MethodKind.QR_CODE, "qr", "ios_qr_1", "ios_qr_2", "ios_qr_3") if lpa else None,
        _method(
            t, MethodKind.MANUAL, "manual", "ios_manual_1", smdp_step, code_step, "ios_manual_3"
        )
        if has_codes
        else None,
    )
    android = (
        _method(t, MethodKind.ONE_TAP, "one_tap", "android_tap_1", "android_tap_2", url=android_url)
        if android_url
        else None,
        _method(t, MethodKind.QR_CODE, "qr", "android_qr_1", "android_qr_2", "android_qr_3")
        if lpa
        else None,
        # Android's manual entry takes the whole activation string
        _method(
            t,
            MethodKind.MANUAL,
            "manual",
            "android_manual_1",
            Step(t["android_manual_2"], lpa, ValueKind.LPA),
            "android_manual_3",
        )
        if lpa
        else None,
    )
    manual = (
        ManualCodes(t["codes"], smdp, code, (Step(t["codes_1"]), smdp_step, code_step))
        if smdp is not None and code is not None
        else None
    )
    return Guide(
        language=language,
        ios=PlatformGuide(Platform.IOS, t["ios"], tuple(m for m in ios if m is not None)),
        android=PlatformGuide(
            Platform.ANDROID, t["android"], tuple(m for m in android if m is not None)
        ),
        manual=manual,
        network=_network(profile, t),
    )


def _network(profile: EsimProfile, t: dict[str, str]) -> NetworkSettings:
    steps = [Step(t["data_line"])]
    if profile.apn and profile.apn_automatic:
        steps.append(Step(t["apn_auto_with"], profile.apn, ValueKind.APN))
    elif profile.apn:
        steps.append(Step(t["apn_set"], profile.apn, ValueKind.APN))
    elif profile.apn_automatic:
        steps.append(Step(t["apn_auto"]))
    if profile.data_roaming is not None:
        steps.append(Step(t["roaming_on" if profile.data_roaming else "roaming_off"]))
    if profile.hotspot is not None:
        steps.append(Step(t["hotspot_yes" if profile.hotspot else "hotspot_no"]))
    return NetworkSettings(
        title=t["network"],
        apn=profile.apn,
        apn_automatic=profile.apn_automatic,
        data_roaming=profile.data_roaming,
        hotspot=profile.hotspot,
        steps=tuple(steps),
    )
