"""A deterministic, realistic Roamify catalog (providers.md 1.4).

Destinations are country groups (`japan-esims`), regional groups whose `signals[]` list
every covered country (ISO2 code + name; codes of the groups themselves are non-ISO, like
`EU`, `ASIA`, `AFR`), and one global group. Each destination sells the same grid of plans
(`PLANS`: 51 fixed data plans from 1 GB / 1 day to 100 GB / 365 days, then 8 unlimited
daily-capped plans), so the default catalog has 53 x 59 = 3,127 packages.

Prices are USD and follow real-world shapes: cheaper per GB for bigger plans (1 GB / 7 days
about $5, 20 GB / 30 days about $28, unlimited 7 days about $17 before the destination
factor), regional and global plans dearer than local ones, and "charm" prices ending in
.49 / .99. The flags (`withTopUp`, `withUsageCheck`, `withHotspot`, ...) are drawn from a
`random.Random(seed)`, so one seed always yields the same catalog; about 1 % of the
packages carry `requirements: {"travelDate": true}` and about 5 % have
`withUsageCheck: false`. About 15 % of the fixed plans state `dataAmount` in `GB` instead
of `MB` (the docs' samples use MB; the models accept both).

`packages_per_country=N` keeps the first N plans of the grid's popularity order
(`PLANS`), capped at the grid's size: small catalogs for tests still have everyday
plans (1 GB / 7 days, 3 GB / 30 days, unlimited 7 days, ...).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = ["COUNTRIES", "PLANS", "REGIONS", "UNLIMITED", "RoamifyCatalog", "build_catalog"]

#: JavaScript's Number.MAX_SAFE_INTEGER: Roamify's `dataAmount` for unlimited plans
UNLIMITED = 9007199254740991

#: (ISO2, name, region name, price factor)
COUNTRIES: tuple[tuple[str, str, str, float], ...] = (
    ("JP", "Japan", "Asia", 1.0),
    ("KR", "South Korea", "Asia", 1.0),
    ("TH", "Thailand", "Asia", 0.8),
    ("VN", "Vietnam", "Asia", 0.75),
    ("SG", "Singapore", "Asia", 1.05),
    ("MY", "Malaysia", "Asia", 0.8),
    ("ID", "Indonesia", "Asia", 0.85),
    ("PH", "Philippines", "Asia", 0.9),
    ("CN", "China", "Asia", 1.2),
    ("HK", "Hong Kong", "Asia", 1.0),
    ("TW", "Taiwan", "Asia", 1.0),
    ("IN", "India", "Asia", 0.9),
    ("KH", "Cambodia", "Asia", 0.9),
    ("AE", "United Arab Emirates", "Middle East", 1.4),
    ("SA", "Saudi Arabia", "Middle East", 1.35),
    ("QA", "Qatar", "Middle East", 1.4),
    ("IL", "Israel", "Middle East", 1.2),
    ("JO", "Jordan", "Middle East", 1.25),
    ("TR", "Turkey", "Europe", 1.0),
    ("FR", "France", "Europe", 1.0),
    ("DE", "Germany", "Europe", 1.0),
    ("IT", "Italy", "Europe", 1.0),
    ("ES", "Spain", "Europe", 1.0),
    ("PT", "Portugal", "Europe", 1.0),
    ("NL", "Netherlands", "Europe", 1.0),
    ("GB", "United Kingdom", "Europe", 1.0),
    ("CH", "Switzerland", "Europe", 1.5),
    ("GR", "Greece", "Europe", 1.0),
    ("AT", "Austria", "Europe", 1.0),
    ("PL", "Poland", "Europe", 0.9),
    ("SE", "Sweden", "Europe", 1.1),
    ("NO", "Norway", "Europe", 1.3),
    ("IE", "Ireland", "Europe", 1.0),
    ("CZ", "Czechia", "Europe", 0.9),
    ("US", "United States", "North America", 1.2),
    ("CA", "Canada", "North America", 1.4),
    ("MX", "Mexico", "Latin America", 1.1),
    ("BR", "Brazil", "Latin America", 1.2),
    ("AR", "Argentina", "Latin America", 1.3),
    ("CL", "Chile", "Latin America", 1.2),
    ("AU", "Australia", "Oceania", 1.2),
    ("NZ", "New Zealand", "Oceania", 1.3),
    ("ZA", "South Africa", "Africa", 1.4),
    ("EG", "Egypt", "Africa", 1.2),
    ("MA", "Morocco", "Africa", 1.1),
    ("KE", "Kenya", "Africa", 1.5),
)

#: (code, name, geography, covered ISO2 codes). Codes are Roamify-style, never ISO2
#: (`NORAM`, not `NA`, which is Namibia).
REGIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "EU",
        "Europe",
        "regional",
        ("FR", "DE", "IT", "ES", "PT", "NL", "GB", "GR", "AT", "PL", "SE", "IE", "CZ", "CH", "NO"),
    ),
    (
        "ASIA",
        "Asia",
        "regional",
        ("JP", "KR", "TH", "VN", "SG", "MY", "ID", "PH", "HK", "TW", "KH"),
    ),
    ("AFR", "Africa", "regional", ("ZA", "EG", "MA", "KE")),
    ("LATAM", "Latin America", "regional", ("MX", "BR", "AR", "CL")),
    ("NORAM", "North America", "regional", ("US", "CA", "MX")),
    ("MENA", "Middle East", "regional", ("AE", "SA", "QA", "IL", "JO", "TR", "EG")),
    (
        "GLOBAL",
        "Global",
        "global",
        (
            "JP",
            "KR",
            "TH",
            "SG",
            "US",
            "CA",
            "GB",
            "FR",
            "DE",
            "IT",
            "ES",
            "AU",
            "BR",
            "ZA",
            "AE",
            "TR",
        ),
    ),
)

NETWORKS = ("4G", "5G")
#: plausible carriers per ISO2 code; others get generic names
CARRIERS: dict[str, tuple[str, ...]] = {
    "JP": ("Docomo", "SoftBank", "KDDI"),
    "KR": ("SK Telecom", "KT", "LG U+"),
    "TH": ("AIS", "TrueMove H", "dtac"),
    "VN": ("Viettel", "Vinaphone", "Mobifone"),
    "US": ("AT&T", "T-Mobile", "Verizon"),
    "GB": ("Vodafone", "EE", "O2", "Three"),
    "FR": ("Orange", "SFR", "Bouygues"),
    "DE": ("Telekom", "Vodafone", "O2"),
    "AU": ("Telstra", "Optus", "Vodafone"),
    "KH": ("Smart", "Cellcard", "Metfone"),
}
GENERIC_CARRIERS = ("Vodafone", "Orange", "Claro", "Movistar", "Airtel", "MTN", "Etisalat")

#: (days, GB or None for unlimited), most popular first (small catalogs keep the head)
PLANS: tuple[tuple[int, int | None], ...] = (
    (7, 1),
    (30, 3),
    (7, None),
    (15, 5),
    (30, 10),
    (30, 20),
    (7, 3),
    (1, None),
    (30, 5),
    (7, 5),
    (15, 10),
    (3, 1),
    (30, None),
    (10, 5),
    (15, 3),
    (30, 1),
    (30, 50),
    (1, 1),
    (3, None),
    (5, 3),
    (7, 10),
    (10, 10),
    (15, None),
    (30, 2),
    (30, 8),
    (30, 15),
    (30, 30),
    (30, 100),
    (5, None),
    (10, 3),
    (15, 1),
    (15, 15),
    (15, 20),
    (20, 5),
    (20, 10),
    (20, 20),
    (10, None),
    (60, 10),
    (60, 20),
    (60, 30),
    (60, 50),
    (90, 20),
    (90, 30),
    (90, 50),
    (90, 100),
    (2, None),
    (180, 30),
    (180, 50),
    (180, 100),
    (365, 50),
    (365, 100),
    (1, 2),
    (1, 3),
    (3, 2),
    (3, 3),
    (3, 5),
    (5, 1),
    (5, 5),
    (7, 2),
)


@dataclass
class RoamifyCatalog:
    groups: list[dict[str, Any]]
    #: packageId -> (flat package, its group)
    packages: dict[str, tuple[dict[str, Any], dict[str, Any]]]
    countries: list[dict[str, str]]


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-").replace("&", "and")


def _charm(price: float) -> float:
    """$4.99, $5.49, ...: round to the nearest half dollar, minus one cent."""
    return max(0.99, round(round(price * 2) / 2 - 0.01, 2))


def _price(days: int, gb: int | None, factor: float, rng: random.Random) -> float:
    # unlimited plans are priced per day (full speed capped daily)
    base = 2.0 + 2.6 * days**0.9 if gb is None else 2.5 + 0.1 * days + 1.8 * gb**0.85
    return _charm(base * factor * rng.uniform(0.94, 1.06))


def _days_label(days: int) -> str:
    return "1 Day" if days == 1 else f"{days} Days"


def _throttle(unlimited: bool, throttled: bool) -> dict[str, Any]:
    """The `throttle` object and its `notes`: unlimited plans slow down after 2 GB a day."""
    return {
        "throttle": {
            "throttleSpeed": 512 if throttled else None,
            "throttleSpeedUnit": "Kbps" if throttled else None,
            "throttleThreshold": 2 if unlimited else None,
            "throttleThresholdUnit": "GB" if unlimited else None,
        },
        "notes": (
            ["Full speed for the first 2 GB each day, then 512 Kbps."]
            if unlimited
            else (["Speed reduced to 512 Kbps after the plan's data."] if throttled else [])
        ),
    }


def _calls(with_call: bool) -> dict[str, Any]:
    """Voice and SMS fields: a few plans include 30 minutes and 20 messages."""
    return {
        "callType": "all",
        "callAmount": 30 if with_call else -1,
        "callUnit": "minutes",
        "smsType": "all",
        "smsAmount": 20 if with_call else -1,
        "smsUnit": "sms",
        "withSMS": with_call,
        "withCall": with_call,
    }


def _package(
    slug: str, days: int, gb: int | None, price: float, rng: random.Random
) -> dict[str, Any]:
    unlimited = gb is None
    label = f"{'Unlimited' if unlimited else f'{gb} GB'} - {_days_label(days)}"
    package_id = f"esim-{slug}-{days}days-{'unlimited' if unlimited else f'{gb}gb'}-all"
    in_gb = not unlimited and rng.random() < 0.15
    throttled = unlimited or rng.random() < 0.1
    with_call = rng.random() < 0.08
    # the random draws keep their order: the seeded catalog must not change
    data_amount = UNLIMITED if unlimited else (gb if in_gb else (gb or 0) * 1024)
    package: dict[str, Any] = {
        "packageId": package_id,
        "package": label,
        "plan": "data-voice-text" if with_call else "data-only",
        "activation": "first-use",
        "day": days,
        "price": price,
        "isUnlimited": unlimited,
        "isAPNAutomatic": True,
        "apn": "",
        "dataAmount": data_amount,
        "dataUnit": "GB" if in_gb else "MB",
        **_calls(with_call),
        "withHotspot": rng.random() < 0.85,
        "withDataRoaming": True,
        "withDestinationInstall": rng.random() < 0.5,
        "withUsageCheck": rng.random() < 0.95,
        "withThrottle": throttled,
        "withTopUp": rng.random() < 0.65,
        **_throttle(unlimited, throttled),
    }
    if rng.random() < 0.01:
        package["requirements"] = {"travelDate": True}
        package["notes"] = [*package["notes"], "Choose your travel start date when activating."]
    return package


def _signals(covered: tuple[str, ...], names: dict[str, str], rng: random.Random) -> list[Any]:
    signals = []
    for code in covered:
        carriers = CARRIERS.get(code, GENERIC_CARRIERS)
        signals.append(
            {
                "code": code,
                "name": names.get(code, code),
                "networks": list(NETWORKS[: 1 + rng.randrange(2)]),
                "carriers": rng.sample(carriers, min(2, len(carriers))),
            }
        )
    return signals


def build_catalog(seed: int = 7, packages_per_country: int | None = None) -> RoamifyCatalog:
    rng = random.Random(seed)
    count = len(PLANS) if packages_per_country is None else max(1, packages_per_country)
    plans = PLANS[:count]
    groups: list[dict[str, Any]] = []
    packages: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    names = {code: name for code, name, _, _ in COUNTRIES}
    destinations: list[tuple[str, str, str, str, float, tuple[str, ...]]] = [
        (code, name, region, "local", factor, (code,)) for code, name, region, factor in COUNTRIES
    ] + [
        (code, name, name, geo, 1.3 if geo == "regional" else 1.8, covered)
        for code, name, geo, covered in REGIONS
    ]
    for code, name, region, geography, factor, covered in destinations:
        slug = _slug(name)
        group: dict[str, Any] = {
            "id": f"{slug}-esims",
            "countryName": name,
            "countryCode": code,
            "countrySlug": slug,
            "region": region,
            "geography": geography,
            "minPrice": 0,
            "maxPrice": 0,
            "image": f"https://static.sandbox.roamify.example/flags/{code.lower()}.png",
            "signals": _signals(covered, names, rng),
            "packages": [],
        }
        for days, gb in plans:
            package = _package(slug, days, gb, _price(days, gb, factor, rng), rng)
            group["packages"].append(package)
            packages[package["packageId"]] = (package, group)
        prices = [p["price"] for p in group["packages"]]
        group["minPrice"], group["maxPrice"] = min(prices), max(prices)
        groups.append(group)
    countries = [{"code": c, "name": n, "geography": "local"} for c, n, _, _ in COUNTRIES]
    countries += [{"code": c, "name": n, "geography": g} for c, n, g, _ in REGIONS]
    return RoamifyCatalog(groups, packages, countries)
