"""A deterministic, realistic SimplifyTrip catalog (providers.md 2.4), priced in VND.

`build_catalog(seed, products_per_country)` gives one eSIM product (SPU) per country and
per region (each region product lists every covered country; ``GLOBAL-60`` is the global
one), each with `products_per_country` variations (SKUs; default 60: 20 plans from three
suppliers); two physical-SIM products; and two SIM_RECHARGE products whose SKUs recharge
the documented TEST_MODE SIM cards (`RECHARGE_ICCIDS`); the China Telecom one takes one
ICCID per order, as documented.

Products are JSON-ready dicts (what ``GET /api/v1/products`` answers). eSIM SKUs follow
the documented pattern (`EJPXY05GB07DFX`): ``E`` + destination (ISO2 or a two-digit region
number) + supplier (``XY``, ``XX``, ``XZ``, ...) + data (``05GB``, ``UNLM``) + days
(``07D``) + ``P``/``F`` (daily / fixed allowance) + ``Y``/``X``. The same seed always
gives the same catalog; prices vary by seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHINA_TELECOM",
    "COUNTRIES",
    "PLANS",
    "RECHARGE_ICCIDS",
    "REGIONS",
    "SimplifyTripCatalog",
    "build_catalog",
]

FILES = "https://files.sandbox.simplifytrip.example"

#: (ISO2, ISO3, English name, Vietnamese name, continent, price factor)
COUNTRIES: tuple[tuple[str, str, str, str, str, float], ...] = (
    ("JP", "JPN", "Japan", "Nhật Bản", "Asia", 1.0),
    ("KR", "KOR", "South Korea", "Hàn Quốc", "Asia", 1.0),
    ("TH", "THA", "Thailand", "Thái Lan", "Asia", 0.8),
    ("SG", "SGP", "Singapore", "Singapore", "Asia", 1.0),
    ("MY", "MYS", "Malaysia", "Malaysia", "Asia", 0.8),
    ("ID", "IDN", "Indonesia", "Indonesia", "Asia", 0.8),
    ("PH", "PHL", "Philippines", "Philippines", "Asia", 0.9),
    ("CN", "CHN", "China", "Trung Quốc", "Asia", 1.1),
    ("HK", "HKG", "Hong Kong", "Hồng Kông", "Asia", 1.0),
    ("MO", "MAC", "Macau", "Ma Cao", "Asia", 1.0),
    ("TW", "TWN", "Taiwan", "Đài Loan", "Asia", 1.0),
    ("IN", "IND", "India", "Ấn Độ", "Asia", 0.9),
    ("KH", "KHM", "Cambodia", "Campuchia", "Asia", 0.8),
    ("LA", "LAO", "Laos", "Lào", "Asia", 0.8),
    ("AE", "ARE", "United Arab Emirates", "Các Tiểu vương quốc Ả Rập Thống nhất", "Asia", 1.4),
    ("SA", "SAU", "Saudi Arabia", "Ả Rập Xê Út", "Asia", 1.3),
    ("QA", "QAT", "Qatar", "Qatar", "Asia", 1.3),
    ("IL", "ISR", "Israel", "Israel", "Asia", 1.2),
    ("VN", "VNM", "Vietnam", "Việt Nam", "Asia", 0.6),
    ("TR", "TUR", "Turkey", "Thổ Nhĩ Kỳ", "Europe", 1.0),
    ("FR", "FRA", "France", "Pháp", "Europe", 1.0),
    ("DE", "DEU", "Germany", "Đức", "Europe", 1.0),
    ("IT", "ITA", "Italy", "Ý", "Europe", 1.0),
    ("ES", "ESP", "Spain", "Tây Ban Nha", "Europe", 1.0),
    ("GB", "GBR", "United Kingdom", "Vương quốc Anh", "Europe", 1.0),
    ("NL", "NLD", "Netherlands", "Hà Lan", "Europe", 1.0),
    ("CH", "CHE", "Switzerland", "Thụy Sĩ", "Europe", 1.4),
    ("GR", "GRC", "Greece", "Hy Lạp", "Europe", 1.0),
    ("AT", "AUT", "Austria", "Áo", "Europe", 1.0),
    ("CZ", "CZE", "Czechia", "Séc", "Europe", 0.9),
    ("PT", "PRT", "Portugal", "Bồ Đào Nha", "Europe", 1.0),
    ("BE", "BEL", "Belgium", "Bỉ", "Europe", 1.0),
    ("DK", "DNK", "Denmark", "Đan Mạch", "Europe", 1.1),
    ("SE", "SWE", "Sweden", "Thụy Điển", "Europe", 1.1),
    ("NO", "NOR", "Norway", "Na Uy", "Europe", 1.2),
    ("FI", "FIN", "Finland", "Phần Lan", "Europe", 1.1),
    ("IE", "IRL", "Ireland", "Ireland", "Europe", 1.0),
    ("PL", "POL", "Poland", "Ba Lan", "Europe", 0.9),
    ("HU", "HUN", "Hungary", "Hungary", "Europe", 0.9),
    ("RO", "ROU", "Romania", "Romania", "Europe", 0.9),
    ("HR", "HRV", "Croatia", "Croatia", "Europe", 0.9),
    ("SK", "SVK", "Slovakia", "Slovakia", "Europe", 0.9),
    ("SI", "SVN", "Slovenia", "Slovenia", "Europe", 0.9),
    ("LU", "LUX", "Luxembourg", "Luxembourg", "Europe", 1.0),
    ("BG", "BGR", "Bulgaria", "Bulgaria", "Europe", 0.9),
    ("EE", "EST", "Estonia", "Estonia", "Europe", 0.9),
    ("LV", "LVA", "Latvia", "Latvia", "Europe", 0.9),
    ("LT", "LTU", "Lithuania", "Litva", "Europe", 0.9),
    ("IS", "ISL", "Iceland", "Iceland", "Europe", 1.3),
    ("MT", "MLT", "Malta", "Malta", "Europe", 1.0),
    ("CY", "CYP", "Cyprus", "Síp", "Europe", 1.0),
    ("US", "USA", "United States", "Hoa Kỳ", "North America", 1.2),
    ("CA", "CAN", "Canada", "Canada", "North America", 1.3),
    ("MX", "MEX", "Mexico", "Mexico", "North America", 1.1),
    ("BR", "BRA", "Brazil", "Brazil", "South America", 1.2),
    ("AR", "ARG", "Argentina", "Argentina", "South America", 1.2),
    ("AU", "AUS", "Australia", "Úc", "Oceania", 1.2),
    ("NZ", "NZL", "New Zealand", "New Zealand", "Oceania", 1.3),
    ("ZA", "ZAF", "South Africa", "Nam Phi", "Africa", 1.4),
    ("EG", "EGY", "Egypt", "Ai Cập", "Africa", 1.2),
)

_EU_30 = (
    "FR", "DE", "IT", "ES", "GB", "NL", "CH", "GR", "AT", "CZ", "PT", "BE", "DK", "SE", "NO",
    "FI", "IE", "PL", "HU", "RO", "HR", "SK", "SI", "LU", "BG", "EE", "LV", "LT", "IS", "MT",
)  # fmt: skip

#: (id, English name, Vietnamese name, covered ISO2 codes); GLOBAL-60 covers every country
REGIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("SIN-MYS-IDN", "Singapore - Malaysia - Indonesia", "Singapore - Malaysia - Indonesia",
     ("SG", "MY", "ID")),
    ("CHN-HKG-MAC", "China - Hong Kong - Macau", "Trung Quốc - Hồng Kông - Ma Cao",
     ("CN", "HK", "MO")),
    ("EU-30", "Europe 30 countries", "Châu Âu 30 nước", _EU_30),
    ("ASIA-8", "Asia 8 countries", "Châu Á 8 nước",
     ("JP", "KR", "TH", "SG", "MY", "ID", "HK", "TW")),
    ("USA-CAN", "USA - Canada", "Hoa Kỳ - Canada", ("US", "CA")),
    ("GLOBAL-60", "Global 60 countries", "Toàn cầu 60 nước", tuple(c[0] for c in COUNTRIES)),
)  # fmt: skip

#: (days, GB (per day when DAILY) or None for unlimited, DAILY/FIXED)
PLANS: tuple[tuple[int, int | None, str], ...] = (
    (1, 1, "DAILY"),
    (3, 1, "DAILY"),
    (5, 2, "DAILY"),
    (7, 1, "DAILY"),
    (7, 2, "DAILY"),
    (10, 2, "DAILY"),
    (15, 1, "DAILY"),
    (3, 3, "FIXED"),
    (5, 5, "FIXED"),
    (7, 5, "FIXED"),
    (7, 10, "FIXED"),
    (10, 10, "FIXED"),
    (15, 10, "FIXED"),
    (15, 20, "FIXED"),
    (30, 10, "FIXED"),
    (30, 20, "FIXED"),
    (30, 50, "FIXED"),
    (7, None, "DAILY"),
    (15, None, "DAILY"),
    (30, None, "DAILY"),
)

#: suppliers of the same plan (the SKU's two letters after the destination)
SUPPLIERS = ("XY", "XX", "XZ", "XW", "XV", "XU", "XT", "XS")

RECHARGE_ICCIDS = tuple(
    f"89860012017201244{suffix}"
    for suffix in ("064", "085", "086", "087", "088", "092", "093", "094", "095", "096")
)

#: China Telecom recharge plans take exactly one ICCID per order (providers.md 2.4)
CHINA_TELECOM = "China Telecom SIM recharge"

STAMP = "2026-01-05T03:00:00.000Z"
KB_PER_GB = 1024 * 1024
#: unlimited plans run at full speed for this much per day, then at `throttleSpeed`
UNLIMITED_HIGH_SPEED_GB = 2


@dataclass(slots=True)
class SimplifyTripCatalog:
    #: spu -> product, in catalog order
    products: dict[str, dict[str, Any]]
    #: sku -> (variation, its product)
    variations: dict[str, tuple[dict[str, Any], dict[str, Any]]]
    countries: list[dict[str, Any]]
    regions: list[dict[str, Any]]


def _country(row: tuple[str, str, str, str, str, float]) -> dict[str, Any]:
    iso2, iso3, en, vi, continent, _ = row
    return {
        "id": iso2,
        "name": {"vi": vi, "en": en},
        "mcc": iso2,
        "mcc3": iso3,
        "continent": continent,
        "thumbnail": f"{FILES}/flags/{iso2.lower()}.png",
    }


def _esim_variation(
    dest: str, plan: tuple[int, int | None, str], supplier: int, factor: float, rng: random.Random
) -> dict[str, Any]:
    days, gb, package = plan
    unlimited = gb is None
    daily = package == "DAILY"
    size = "UNLM" if gb is None else f"{gb:02d}GB"
    sku = (
        f"E{dest}{SUPPLIERS[supplier % len(SUPPLIERS)]}{size}{days:02d}D"
        f"{'P' if daily else 'F'}{'Y' if daily else 'X'}"
    )
    if gb is None:
        base = 45_000 + days * 24_000
        data_text = "Unlimited"
    elif daily:
        base = 20_000 + days * gb * 11_000
        data_text = f"{gb}GB/day"
    else:
        base = 30_000 + days * 3_000 + gb * 16_000
        data_text = f"{gb}GB"
    jitter = rng.uniform(0.92, 1.08) * (1 + 0.05 * supplier)
    price = int(round(base * factor * jitter, -3))
    discount = rng.choice((0, 0, 0, 5, 10))
    high_flow_gb = UNLIMITED_HIGH_SPEED_GB if gb is None else gb
    return {
        "sku": sku,
        "name": {"vi": f"{data_text} - {days} ngày", "en": f"{data_text} - {days} days"},
        "price": price,
        "priceFloor": int(round(price * 0.9, -3)),
        "discount": discount,
        "highFlowSize": high_flow_gb * KB_PER_GB,
        "days": days,
        "package": package,
        "data": data_text,
        "throttleSpeed": "512Kbps" if daily or unlimited else None,
        "smsCall": rng.random() < 0.1,
        "apn": "plus.4g",
        "pointContactType": "INTERNET",
        "hotsPot": rng.random() < 0.85,
    }


def _product(
    spu: str, kind: str, en: str, vi: str, slug: str, countries: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "spu": spu,
        "createdAt": STAMP,
        "updatedAt": STAMP,
        "name": {"vi": vi, "en": en},
        "slug": {"vi": slug, "en": slug},
        "metadata": {
            "vi": "<p>Kích hoạt khi đến nơi. Chia sẻ dữ liệu nếu gói hỗ trợ.</p>",
            "en": "<p>Activates on arrival. Hotspot where the plan allows it.</p>",
        },
        "type": kind,
        "thumbnail": f"{FILES}/products/{spu.lower()}.png",
        "regions": [],
        "countries": countries,
        "variations": [],
    }


def _slug(text: str) -> str:
    return text.lower().replace(" - ", "-").replace(" ", "-")


Destination = tuple[str, str, str, list[dict[str, Any]], float, dict[str, Any] | None]
#: physical SIM cards (shipped; orders start NEW) and the SIM recharge products:
#: (type, country, SKU prefix, English name, Vietnamese name, APN)
CARDS = (
    ("SIM", "VN", "SVN", "SIM card Vietnam", "SIM Việt Nam", "m3-world"),
    ("SIM", "TH", "STH", "SIM card Thailand", "SIM Thái Lan", "internet"),
    ("SIM_RECHARGE", "CN", "RCN", "China SIM recharge", "Nạp SIM Trung Quốc", "3gnet"),
    ("SIM_RECHARGE", "CN", "RCT", CHINA_TELECOM, "Nạp SIM China Telecom", "ctnet"),
)


def _destinations(
    by_code: dict[str, dict[str, Any]],
) -> tuple[list[Destination], list[dict[str, Any]]]:
    """Every eSIM destination (countries, then regions) and the regions' bodies:
    (code, English name, Vietnamese name, countries covered, price factor, region)."""
    destinations: list[Destination] = [
        (iso2, en, vi, [by_code[iso2]], factor, None) for iso2, _, en, vi, _, factor in COUNTRIES
    ]
    regions: list[dict[str, Any]] = []
    for number, (region_id, en, vi, codes) in enumerate(REGIONS, start=21):
        region_body: dict[str, Any] = {
            "id": region_id,
            "name": {"vi": vi, "en": en},
            "thumbnail": f"{FILES}/regions/{region_id.lower()}.png",
        }
        regions.append(region_body)
        factor = 1.15 + 0.01 * len(codes)
        destinations.append((str(number), en, vi, [by_code[c] for c in codes], factor, region_body))
    return destinations, regions


def _card_variation(kind: str, sku_code: str, apn: str, days: int, gb: int) -> dict[str, Any]:
    price = 60_000 + gb * 9_000 + days * 1_000 + (40_000 if kind == "SIM" else 0)
    return {
        "sku": f"{sku_code}X{gb:02d}GB{days:02d}DFX",
        "name": {"vi": f"{gb}GB - {days} ngày", "en": f"{gb}GB - {days} days"},
        "price": price,
        "priceFloor": int(round(price * 0.9, -3)),
        "discount": 0,
        "highFlowSize": gb * KB_PER_GB,
        "days": days,
        "package": "FIXED",
        "data": f"{gb}GB",
        "throttleSpeed": None,
        "smsCall": kind == "SIM",
        "apn": apn,
        "pointContactType": "INTERNET",
        "hotsPot": True,
    }


def _listings(
    by_code: dict[str, dict[str, Any]], regions: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The bodies of `GET /countries` and `GET /regions`."""
    countries = [
        {
            "id": iso2,
            "name": {"en": en},
            "createdAt": STAMP,
            "updatedAt": STAMP,
            "continent": continent,
            "thumbnail": by_code[iso2]["thumbnail"],
            "mcc": iso2,
            "mcc3": iso3,
        }
        for iso2, iso3, en, _, continent, _ in COUNTRIES
    ]
    region_list = [
        {
            "id": r["id"],
            "name": {"en": r["name"]["en"]},
            "thumbnail": r["thumbnail"],
            "createdAt": STAMP,
            "updatedAt": STAMP,
        }
        for r in regions
    ]
    return countries, region_list


def build_catalog(seed: int = 11, products_per_country: int | None = None) -> SimplifyTripCatalog:
    """The whole catalog; `products_per_country` is the number of SKUs per destination."""
    rng = random.Random(seed)
    per_product = products_per_country or len(PLANS) * 3
    by_code = {row[0]: _country(row) for row in COUNTRIES}
    products: dict[str, dict[str, Any]] = {}
    variations: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def add(product: dict[str, Any], variation: dict[str, Any]) -> None:
        product["variations"].append(variation)
        variations[variation["sku"]] = (variation, product)

    destinations, regions = _destinations(by_code)
    for index, (code, en, vi, covered, factor, region) in enumerate(destinations):
        spu = f"SPU{index + 1:05d}"
        product = _product(spu, "eSIM", f"eSIM {en}", f"eSIM {vi}", f"esim-{_slug(en)}", covered)
        if region is not None:
            product["regions"] = [region]
        for v in range(per_product):
            plan = PLANS[v % len(PLANS)]
            add(product, _esim_variation(code, plan, v // len(PLANS), factor, rng))
        products[spu] = product

    for kind, code, sku_code, en, vi, apn in CARDS:
        spu = f"SPU{len(products) + 1:05d}"
        product = _product(spu, kind, en, vi, _slug(en), [by_code[code]])
        for days, gb in ((7, 5), (15, 10), (30, 20)):
            add(product, _card_variation(kind, sku_code, apn, days, gb))
        products[spu] = product

    countries, region_list = _listings(by_code, regions)
    return SimplifyTripCatalog(products, variations, countries, region_list)
