"""One catalog: filtering and ordering against a brute-force reference, stable paging
across a refresh, a provider down while the other serves, warm restarts, bad filters."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esim_gateway.domain import CatalogPackage, ProviderName
from tests.conftest import Gateway, GatewayFactory

QUERY = """query($filter: PackageFilter, $first: Int, $after: String, $order: PackageOrderBy!) {
  packages(filter: $filter, first: $first, after: $after, orderBy: $order) {
    totalCount edges { cursor node { provider packageId } } pageInfo { hasNextPage endCursor }
    providerErrors { provider } } }"""

FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "provider": st.sampled_from(["ROAMIFY", "SIMPLIFYTRIP"]),
        "country": st.sampled_from(["JP", "FR", "US", "TH", "ZA", "KE"]),
        "minDays": st.integers(0, 31),
        "maxDays": st.integers(1, 200),
        "minDataMb": st.sampled_from([0, 500, 1024, 5120, 20480]),
        "unlimited": st.booleans(),
        "topup": st.booleans(),
    },
)


def reference(gw: Gateway, flt: dict[str, Any], order: str) -> list[tuple[str, str]]:
    """The same query answered by brute force over every package."""
    services = gw.services
    rows: list[CatalogPackage] = []
    for provider in ProviderName:
        snapshot = services.catalog.snapshot(provider)
        assert snapshot is not None
        rows.extend(snapshot.packages)

    def keep(p: CatalogPackage) -> bool:
        return all(
            (
                "provider" not in flt or p.provider.name == flt["provider"],
                "country" not in flt or flt["country"] in p.country_codes,
                "minDays" not in flt or p.days >= flt["minDays"],
                "maxDays" not in flt or p.days <= flt["maxDays"],
                "minDataMb" not in flt or p.unlimited or (p.data_mb or 0) >= flt["minDataMb"],
                "unlimited" not in flt or p.unlimited == flt["unlimited"],
                "topup" not in flt or p.topup == flt["topup"],
            )
        )

    def usd(p: CatalogPackage) -> Decimal:
        value = services.prices.usd(p.price)
        assert value is not None
        return value

    def measure(p: CatalogPackage) -> tuple[Any, ...]:
        tail = (usd(p), p.provider.value, p.package_id)
        if order == "DAYS":
            return (p.days, *tail)
        if order == "DATA":
            return (Decimal("1e15") if p.unlimited else Decimal(p.data_mb or 0), *tail)
        if order == "PRICE_PER_GB":
            per_gb = (
                None
                if p.unlimited or not p.data_mb
                else (usd(p) * 1024 / p.data_mb).quantize(Decimal("0.0001"))
            )
            return (per_gb is None, per_gb or 0, *tail)
        return tail

    return [(p.provider.name, p.package_id) for p in sorted(filter(keep, rows), key=measure)]


async def all_pages(
    gw: Gateway, flt: dict[str, Any], order: str, first: int
) -> tuple[list[tuple[str, str]], int]:
    seen: list[tuple[str, str]] = []
    after = None
    while True:
        page = (await gw.execute(QUERY, filter=flt, first=first, after=after, order=order))[
            "packages"
        ]
        seen.extend((e["node"]["provider"], e["node"]["packageId"]) for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return seen, page["totalCount"]
        after = page["pageInfo"]["endCursor"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    flt=FILTERS,
    order=st.sampled_from(["PRICE_USD", "PRICE_PER_GB", "DAYS", "DATA"]),
    first=st.integers(7, 100),
)
async def test_filtering_ordering_and_paging_match_a_brute_force_reference(
    gateway: Gateway, flt: dict[str, Any], order: str, first: int
) -> None:
    if flt.get("minDays", 0) > flt.get("maxDays", 10**6):
        return  # refused as a ValidationError (tested below)
    seen, total = await all_pages(gateway, flt, order, first)
    assert seen == reference(gateway, flt, order)
    assert total == len(seen)


async def test_pages_stay_stable_while_the_catalog_refreshes(gateway: Gateway) -> None:
    flt = {"country": "JP"}
    first = (await gateway.execute(QUERY, filter=flt, first=10, order="PRICE_USD"))["packages"]
    for provider in ProviderName:
        await gateway.services.catalog.refresh(provider)
    rest, _ = await all_pages_after(gateway, flt, first["pageInfo"]["endCursor"])
    whole, _ = await all_pages(gateway, flt, "PRICE_USD", 50)
    head = [(e["node"]["provider"], e["node"]["packageId"]) for e in first["edges"]]
    assert head + rest == whole


async def all_pages_after(
    gw: Gateway, flt: dict[str, Any], after: str
) -> tuple[list[tuple[str, str]], int]:
    seen: list[tuple[str, str]] = []
    cursor: str | None = after
    while cursor is not None:
        page = (await gw.execute(QUERY, filter=flt, first=50, after=cursor, order="PRICE_USD"))[
            "packages"
        ]
        seen.extend((e["node"]["provider"], e["node"]["packageId"]) for e in page["edges"])
        cursor = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    return seen, len(seen)


async def test_a_failed_refresh_keeps_the_last_snapshot_and_reports_its_age(
    gateway: Gateway,
) -> None:
    await gateway.execute(QUERY, first=5, order="PRICE_USD")
    gateway.roamify.control.faults.arm(
        "GET",
        "/api/esim/packages",
        status=503,
        body={"message": "down", "status": "failed"},
        times=None,
    )
    await gateway.services.catalog.refresh(ProviderName.ROAMIFY)
    page = (
        await gateway.execute(QUERY, first=100, filter={"provider": "ROAMIFY"}, order="PRICE_USD")
    )["packages"]
    assert page["totalCount"] > 0 and page["providerErrors"] == []
    status = (await gateway.execute("{ catalogStatus { provider plans ageSeconds lastError } }"))[
        "catalogStatus"
    ]
    roamify = next(s for s in status if s["provider"] == "ROAMIFY")
    assert roamify["plans"] == page["totalCount"] and roamify["ageSeconds"] >= 0
    assert roamify["lastError"]


async def test_a_restart_starts_warm_from_the_stored_snapshot(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory() as gw:
        await gw.execute(QUERY, first=5, order="PRICE_USD")
        sandboxes = gw.sandboxes
    async with gateway_factory(sandboxes=sandboxes) as again:
        sandboxes.roamify.control.calls.clear()
        sandboxes.simplifytrip.control.calls.clear()
        await again.services.catalog.load_persisted()
        page = (await again.execute(QUERY, first=5, order="PRICE_USD"))["packages"]
        assert page["totalCount"] > 0
        assert sandboxes.roamify.control.calls.count("GET", "/api/esim/packages") == 0


async def test_bad_filters_are_typed_errors(gateway: Gateway) -> None:
    for flt, message in (
        ({"minDays": -1}, "negative"),
        ({"country": "XX"}, "ISO 3166-1"),
        ({"country": "Japan"}, "alpha-2"),
        ({"minDays": 9, "maxDays": 3}, "below minDays"),
    ):
        response = await gateway.post(QUERY, {"filter": flt, "order": "PRICE_USD"})
        assert message in response.json()["errors"][0]["message"], flt
    big = await gateway.post(QUERY, {"first": 100000, "order": "PRICE_USD"})
    assert "between 1 and 100" in big.json()["errors"][0]["message"]


async def test_best_offers_meet_or_exceed_the_request_across_providers(
    gateway: Gateway,
) -> None:
    offers = (
        await gateway.execute(
            """{ bestOffers(country: "JP", days: 3, dataMb: 1000) { reasons
             package { provider days dataMb unlimited countryCodes priceUsd { amount } } } }"""
        )
    )["bestOffers"]
    assert offers
    prices = [Decimal(o["package"]["priceUsd"]["amount"]) for o in offers]
    assert prices == sorted(prices)
    for offer in offers:
        package = offer["package"]
        assert "JP" in package["countryCodes"] and package["days"] >= 3
        assert package["unlimited"] or package["dataMb"] >= 1000
        assert any("covers JP" in reason for reason in offer["reasons"])


async def test_usd_prices_can_follow_roamifys_exchange_rates(
    gateway_factory: GatewayFactory,
) -> None:
    from esim_gateway.app import refresh_roamify_rates

    async with gateway_factory(
        usd_rates=(("USD", Decimal(1)), ("VND", Decimal(20000))), usd_rates_source="roamify"
    ) as gw:
        await refresh_roamify_rates(gw.services, gw.services.settings)
        query = """{ packages(filter: {provider: SIMPLIFYTRIP}, first: 1) { edges { node {
          price { amount } priceUsd { amount } usdRate { unitsPerUsd source asOf } } } } }"""
        node = (await gw.execute(query))["packages"]["edges"][0]["node"]
        rate = node["usdRate"]
        assert rate["source"] == "roamify" and Decimal(rate["unitsPerUsd"]) == 25400
        expected = (Decimal(node["price"]["amount"]) / 25400).quantize(Decimal("0.01"))
        assert Decimal(node["priceUsd"]["amount"]) == expected
        assert gw.roamify.control.calls.count("GET", "/api/rates") >= 1


async def test_countries_and_regions_feed_a_destination_picker(gateway: Gateway) -> None:
    found = await gateway.execute("""{ countries { code name kind plans }
      regions { code name kind countryCodes plans } }""")
    countries = {c["code"]: c for c in found["countries"]}
    assert countries["JP"]["name"] == "Japan" and countries["JP"]["plans"] > 0
    assert all(len(code) == 2 for code in countries)
    regions = found["regions"]
    assert any(r["kind"] == "GLOBAL" for r in regions)
    europe = [r for r in regions if "FR" in r["countryCodes"] and r["kind"] == "REGIONAL"]
    assert europe and all(len(c) == 2 for r in europe for c in r["countryCodes"])


async def test_a_configured_markup_yields_the_retail_price(
    gateway_factory: GatewayFactory,
) -> None:
    from esim_gateway.config import Markup

    markups = (
        ("roamify", Markup(Decimal(10), Decimal("0.5"))),
        ("simplifytrip", Markup(Decimal(15), Decimal(0))),
    )
    async with gateway_factory(markups=markups) as gw:
        query = """query($p: Provider!) { packages(filter: {provider: $p}, first: 3) { edges {
          node { price { amount currency } retailPrice { amount currency } } } } }"""
        for provider, percent, fixed, quantum in (
            ("ROAMIFY", 10, "0.5", "0.01"),
            ("SIMPLIFYTRIP", 15, "0", "1"),
        ):
            for edge in (await gw.execute(query, p=provider))["packages"]["edges"]:
                price = Decimal(edge["node"]["price"]["amount"])
                retail = edge["node"]["retailPrice"]
                expected = (price * (1 + Decimal(percent) / 100) + Decimal(fixed)).quantize(
                    Decimal(quantum), rounding="ROUND_HALF_UP"
                )
                assert Decimal(retail["amount"]) == expected
                assert retail["currency"] == edge["node"]["price"]["currency"]


async def test_a_new_exchange_rate_reorders_the_next_search(gateway: Gateway) -> None:
    """Sort keys are cached per rates generation: a rate change must not serve stale order."""
    from datetime import UTC, datetime

    from esim_gateway.pricing.prices import Rate

    query = """query($country: String) { packages(filter: {country: $country}, first: 100) {
      edges { node { provider priceUsd { amount } } } } }"""

    async def usd_prices() -> list[tuple[str, Decimal]]:
        edges = (await gateway.execute(query, country="JP"))["packages"]["edges"]
        return [(e["node"]["provider"], Decimal(e["node"]["priceUsd"]["amount"])) for e in edges]

    before = await usd_prices()
    assert [p for _, p in before] == sorted(p for _, p in before)
    assert {provider for provider, _ in before} == {"ROAMIFY", "SIMPLIFYTRIP"}
    assert before[0][0] == "SIMPLIFYTRIP"  # the sandbox's cheapest JP plan
    # VND a hundred times stronger: every SimplifyTrip plan becomes the dearest
    gateway.services.prices.update_rates([Rate("VND", Decimal(254), datetime.now(UTC), "test")])
    after = await usd_prices()
    assert [p for _, p in after] == sorted(p for _, p in after)
    assert after[0][0] == "ROAMIFY" and after[-1][0] == "SIMPLIFYTRIP"


async def test_a_package_id_resolves_back_to_the_package_through_node(gateway: Gateway) -> None:
    listed = (await gateway.execute("{ packages(first: 3) { edges { node { id packageId } } } }"))[
        "packages"
    ]["edges"]
    for edge in listed:
        found = (
            await gateway.execute(
                "query($id: ID!) { node(id: $id) { __typename id ... on Package { packageId } } }",
                id=edge["node"]["id"],
            )
        )["node"]
        assert found == {"__typename": "Package", **edge["node"]}
