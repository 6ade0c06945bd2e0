"""The Roamify wire client: one typed async method per endpoint the gateway uses.

Handed an `httpx.AsyncClient` whose `base_url` is Roamify's (`https://api.getroamify.com`,
`https://api-dev.getroamify.com`) or the sandbox's, plus the bearer token. Every request
goes through `_http.send_json` (the one place failures are translated) with
`Authorization: Bearer <token>`; bodies are encoded with `_http.encode_json`. Timeouts:
reads `timeouts.read`, purchases and other writes `timeouts.write`, and the two calls
that generate profiles (`create_instant_order`, `apply`) `timeouts.fulfil` (Roamify asks
for at least 60 s, its docs say up to 90 s).

Failures leave as `esim_gateway.errors` exceptions: transport trouble and unusable 2xx
bodies as `ProviderUnavailable`, 404 as `NotFound`, other statuses as `ProviderError`
carrying what `parse_roamify_error` extracted. The token is never put into a message,
a repr or a log line.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any, TypeVar, overload

import httpx

from esim_gateway.errors import NotFound, ProviderError, ProviderUnavailable
from esim_gateway.providers._http import Timeouts, build_timeout, encode_json, send_json
from esim_gateway.providers.roamify.models import (
    RoamifyBalance,
    RoamifyCountry,
    RoamifyEsim,
    RoamifyHealth,
    RoamifyOrder,
    RoamifyPackage,
    RoamifyPackagePage,
    RoamifyRate,
    RoamifyShareLink,
    RoamifyTopupPackage,
    RoamifyUsage,
    WireFormatError,
)
from esim_gateway.providers.wire import decode

__all__ = ["DEFAULT_TIMEOUTS", "PROVIDER", "RoamifyClient", "parse_roamify_error"]

PROVIDER = "roamify"
DEFAULT_TIMEOUTS = Timeouts()
T = TypeVar("T")

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_MAX_MESSAGE = 300


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _plain(text: str) -> str:
    """Raw error text made readable: HTML tags dropped, whitespace collapsed, capped."""
    if "<" in text and ">" in text:
        text = html.unescape(_TAG.sub(" ", text))
    return _SPACE.sub(" ", text).strip()[:_MAX_MESSAGE]


def _text(value: Any) -> str | None:
    if isinstance(value, dict):  # {"error": {"message": "..."}}
        value = value.get("message")
    if value is None or isinstance(value, (list, bool)):
        return None
    text = str(value).strip()
    return text or None


def parse_roamify_error(status: int, body: Any, text: str) -> tuple[str, str]:
    """(error_code, message) of a Roamify error answer.

    Roamify documents no single error body (providers.md 1.2), so every observed shape
    is read, in this order:

    * `{"message", "status": "failed", "code"}` (refund module; the sandbox's business
      errors) -> (`code`, `message`): the code is the only machine-readable reason
      Roamify gives, so it is kept verbatim for callers to branch on;
    * `{"error": "..."}` (observed Joi validation answer, e.g. `"items" is required`)
      -> (`HTTP_<status>`, `error`);
    * `{"message", "status": "failed"}` without a code (observed 500 "Unknown error";
      voucher/insurance modules) -> (`HTTP_<status>`, `message`);
    * anything else, or a body that is not JSON (a proxy's HTML page) ->
      (`HTTP_<status>`, the text with tags stripped, or the status's reason phrase).

    `HTTP_<status>` is used whenever Roamify sent no code, so the code is never empty
    and a client can tell a provider code (no `HTTP_` prefix) from a derived one. The
    message is redacted of credentials by `ProviderError` itself.
    """
    fallback_code = f"HTTP_{status}"
    if isinstance(body, dict):
        code = body.get("code")
        code_text = None if isinstance(code, bool) else _text(code)
        message = _text(body.get("message"))
        error = _text(body.get("error"))
        if code_text is not None:
            return code_text, message or error or _reason(status)
        if error is not None:
            return fallback_code, error
        if message is not None:
            return fallback_code, message
    return fallback_code, _plain(text) or _reason(status)


def _data(body: Any) -> Any:
    """The `data` of the `{"status": "success", "data": ...}` envelope; a body without
    the envelope (eSIM events are bare) is returned as it is."""
    if isinstance(body, dict) and "data" in body:
        return body["data"]
    return body


def _start_date(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class RoamifyClient:
    """Typed Roamify endpoints over an injected `httpx.AsyncClient`."""

    def __init__(
        self, http: httpx.AsyncClient, token: str, timeouts: Timeouts = DEFAULT_TIMEOUTS
    ) -> None:
        self._http = http
        self._headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
        self._token = token
        self.timeouts = timeouts
        self._read = build_timeout(timeouts.read, timeouts.connect)
        self._write = build_timeout(timeouts.write, timeouts.connect)
        self._fulfil = build_timeout(timeouts.fulfil, timeouts.connect)

    def __repr__(self) -> str:  # never the token
        return f"RoamifyClient(base_url={str(self._http.base_url)!r})"

    # -- plumbing -----------------------------------------------------------------------

    def _parse_error(self, status: int, body: Any, text: str) -> tuple[str, str]:
        """`parse_roamify_error`, plus: a message that echoes our own token loses it
        (`errors.redact` only knows token *formats*; ours may be any string)."""
        code, message = parse_roamify_error(status, body, text)
        if self._token and self._token in message:
            message = message.replace(self._token, "[redacted]")
        return code, message

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | float | bool | None] | None = None,
        body: Mapping[str, Any] | None = None,
        timeout: httpx.Timeout,
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        payload = (
            encode_json({k: v for k, v in body.items() if v is not None})
            if body is not None
            else None
        )
        answer = await send_json(
            self._http,
            PROVIDER,
            method,
            path,
            params={k: v if isinstance(v, (str, int)) else str(v) for k, v in query.items()}
            if query
            else None,
            body=payload,
            headers=self._headers,
            timeout=timeout,
            parse_error=self._parse_error,
        )
        if isinstance(answer, dict) and str(answer.get("status", "")).lower() == "failed":
            # a 2xx that still says failed: the provider refused, whatever the status line
            code, message = self._parse_error(200, answer, "")
            raise ProviderError(PROVIDER, 200, code, message, retryable=False)
        return _data(answer)

    async def _get(
        self, path: str, params: Mapping[str, str | int | float | bool | None] | None = None
    ) -> Any:
        return await self._send("GET", path, params=params, timeout=self._read)

    async def _post(
        self, path: str, body: Mapping[str, Any], *, timeout: httpx.Timeout | None = None
    ) -> Any:
        return await self._send("POST", path, body=body, timeout=timeout or self._write)

    @staticmethod
    def _parse(parse: Callable[[Any], T], data: Any, what: str) -> T:
        """A 2xx body that does not parse is an unusable answer: ProviderUnavailable
        (for a purchase the outcome is then unknown, as with a lost response)."""
        try:
            return parse(data)
        except (WireFormatError, KeyError, TypeError, AttributeError) as exc:
            raise ProviderUnavailable(
                PROVIDER, f"roamify answered {what} with an unexpected shape: {exc}"
            ) from exc

    @staticmethod
    def _items(items: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
        if not items:
            raise ValueError("an order needs at least one item")
        return [{"packageId": package_id, "quantity": quantity} for package_id, quantity in items]

    @staticmethod
    def _one_of(what: str, **keys: str | None) -> None:
        if sum(value is not None for value in keys.values()) != 1:
            raise ValueError(f"{what} takes exactly one of {', '.join(keys)}")

    # -- catalog ----------------------------------------------------------------------

    async def countries(self, geography: str | None = None) -> list[RoamifyCountry]:
        """`GET /api/esim/countries` (`geography`: local | regional | global)."""
        data = await self._get("/api/esim/countries", {"geography": geography})

        def parse(d: Any) -> list[RoamifyCountry]:
            entries = d["countries"] if isinstance(d, dict) else d
            return decode(entries, list[RoamifyCountry])

        return self._parse(parse, data, "GET /api/esim/countries")

    async def packages(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        country: str | None = None,
        country_code: str | None = None,
        geography: str | None = None,
        days: int | None = None,
        gbs: float | None = None,
        is_unlimited: bool | None = None,
        package_id: str | None = None,
    ) -> RoamifyPackagePage:
        """One answer of `GET /api/esim/packages`, in either shape (flat or grouped)."""
        data = await self._get(
            "/api/esim/packages",
            {
                "country": country,
                "countryCode": country_code,
                "geography": geography,
                "days": days,
                "gbs": gbs,
                "isUnlimited": is_unlimited,
                "packageId": package_id,
                "page": page,
                "pageSize": page_size,
            },
        )
        return self._parse(RoamifyPackagePage.from_json, data, "GET /api/esim/packages")

    async def all_packages(
        self, page_size: int = 200, max_pages: int = 1000
    ) -> list[RoamifyPackage]:
        """Every package, pages 1, 2, ... until a page has fewer entries than `page_size`
        (providers.md: Roamify's paging rule), or brings nothing new (a server that
        ignores paging and answers the older, complete, country-grouped list every time),
        or reaches a `total` the server announced. Duplicates are dropped."""
        found: dict[str, RoamifyPackage] = {}
        for page in range(1, max_pages + 1):
            batch = await self.packages(page=page, page_size=page_size)
            fresh = [p for p in batch.packages if p.package_id not in found]
            for package in fresh:
                found[package.package_id] = package
            if batch.item_count < page_size or not fresh:
                break
            if batch.total is not None and len(found) >= batch.total:
                break
        return list(found.values())

    # -- orders -----------------------------------------------------------------------

    async def create_order(
        self, items: Sequence[tuple[str, int]], reference_id: str | None = None
    ) -> RoamifyOrder:
        """`POST /api/esim/order`: money is spent; the answer has one item per eSIM and
        no profile (call `apply` next). `items` are (packageId, quantity)."""
        data = await self._post(
            "/api/esim/order", {"items": self._items(items), "referenceId": reference_id}
        )
        return self._parse(RoamifyOrder.from_json, data, "POST /api/esim/order")

    async def create_instant_order(
        self, items: Sequence[tuple[str, int]], reference_id: str | None = None
    ) -> RoamifyOrder:
        """`POST /api/esim/order/instant`: order and profiles in one (slow) call; the
        answer carries `esims` instead of `items`. Never follow it with `apply`."""
        data = await self._post(
            "/api/esim/order/instant",
            {"items": self._items(items), "referenceId": reference_id},
            timeout=self._fulfil,
        )
        return self._parse(RoamifyOrder.from_json, data, "POST /api/esim/order/instant")

    @overload
    async def apply(
        self, *, esim_id: str, start_date: date | datetime | None = None
    ) -> RoamifyEsim: ...

    @overload
    async def apply(
        self, *, reference_id: str, start_date: date | datetime | None = None
    ) -> list[RoamifyEsim]: ...

    async def apply(
        self,
        *,
        esim_id: str | None = None,
        reference_id: str | None = None,
        start_date: date | datetime | None = None,
    ) -> RoamifyEsim | list[RoamifyEsim]:
        """`POST /api/esim/apply`: generate the profile of one eSIM (`esim_id`: returns
        that eSIM) or of every eSIM of the order with `reference_id` (returns a list).
        `start_date` is required by the few packages with `requirements.travelDate`."""
        self._one_of("apply", esim_id=esim_id, reference_id=reference_id)
        data = await self._post(
            "/api/esim/apply",
            {
                "esimId": esim_id,
                "referenceId": reference_id,
                "startDate": _start_date(start_date),
            },
            timeout=self._fulfil,
        )
        entries = data if isinstance(data, list) else [data]
        esims = self._parse(lambda d: decode(d, list[RoamifyEsim]), entries, "POST /api/esim/apply")
        if esim_id is None:
            return esims
        if len(esims) != 1:
            raise ProviderUnavailable(
                PROVIDER, f"roamify answered apply for one eSIM with {len(esims)} eSIMs"
            )
        return esims[0]

    async def create_topup_order(
        self, iccid: str, package_id: str, reference_id: str | None = None
    ) -> RoamifyOrder:
        """`POST /api/esim/order/topup`; `package_id` from `topup_packages(iccid)`."""
        data = await self._post(
            "/api/esim/order/topup",
            {"iccid": iccid, "packageId": package_id, "referenceId": reference_id},
        )
        return self._parse(RoamifyOrder.from_json, data, "POST /api/esim/order/topup")

    async def topup_packages(
        self,
        iccid: str,
        *,
        days: int | None = None,
        gbs: float | None = None,
        is_unlimited: bool | None = None,
        package_id: str | None = None,
    ) -> list[RoamifyTopupPackage]:
        """`GET /api/esim/topup/packages`: the packages compatible with this eSIM."""
        data = await self._get(
            "/api/esim/topup/packages",
            {
                "iccid": iccid,
                "days": days,
                "gbs": gbs,
                "isUnlimited": is_unlimited,
                "packageId": package_id,
            },
        )

        def parse(d: Any) -> list[RoamifyTopupPackage]:
            entries = d["packages"] if isinstance(d, dict) else d
            return decode(entries, list[RoamifyTopupPackage])

        return self._parse(parse, data, "GET /api/esim/topup/packages")

    async def get_order(
        self, *, order_id: str | None = None, reference_id: str | None = None
    ) -> RoamifyOrder:
        """`GET /api/esim/order?orderId=` or `?referenceId=`; `NotFound` when none."""
        self._one_of("get_order", order_id=order_id, reference_id=reference_id)
        data = await self._get(
            "/api/esim/order", {"orderId": order_id, "referenceId": reference_id}
        )
        if data is None or data == {}:
            raise NotFound(PROVIDER, 404, "HTTP_404", "Roamify has no such order", retryable=False)
        return self._parse(RoamifyOrder.from_json, data, "GET /api/esim/order")

    async def list_orders(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        reference_id: str | None = None,
    ) -> list[RoamifyOrder]:
        """`GET /api/esim/orders` (status PENDING | COMPLETED | ARCHIVED | CANCELLED |
        REFUNDED | REQUIRE_ACTION; Roamify's default limit is 50)."""
        data = await self._get(
            "/api/esim/orders", {"status": status, "limit": limit, "referenceId": reference_id}
        )

        def parse(d: Any) -> list[RoamifyOrder]:
            entries = d["orders"] if isinstance(d, dict) else d
            return decode(entries, list[RoamifyOrder])

        return self._parse(parse, data, "GET /api/esim/orders")

    # -- eSIMs ------------------------------------------------------------------------

    async def get_esim(
        self, *, iccid: str | None = None, esim_id: str | None = None
    ) -> RoamifyEsim:
        """`GET /api/esim?iccid=` or `?esimId=`; `NotFound` when none."""
        self._one_of("get_esim", iccid=iccid, esim_id=esim_id)
        data = await self._get("/api/esim", {"iccid": iccid, "esimId": esim_id})
        if data is None or data == {}:
            raise NotFound(PROVIDER, 404, "HTTP_404", "Roamify has no such eSIM", retryable=False)
        return self._parse(RoamifyEsim.from_json, data, "GET /api/esim")

    async def list_esims(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        reference_id: str | None = None,
    ) -> list[RoamifyEsim]:
        """`GET /api/esims` (status NEW | READY | INSTALLED | REVOKED | EXPIRED | UNKNOWN;
        default limit 50)."""
        data = await self._get(
            "/api/esims", {"status": status, "limit": limit, "referenceId": reference_id}
        )

        def parse(d: Any) -> list[RoamifyEsim]:
            entries = d["esims"] if isinstance(d, dict) else d
            return decode(entries, list[RoamifyEsim])

        return self._parse(parse, data, "GET /api/esims")

    async def usage(self, iccid: str) -> RoamifyUsage:
        """`GET /api/esim/usage?iccid=` (only for packages with `withUsageCheck`)."""
        data = await self._get("/api/esim/usage", {"iccid": iccid})
        return self._parse(RoamifyUsage.from_json, data, "GET /api/esim/usage")

    async def usage_details(self, iccid: str) -> RoamifyUsage:
        """`GET /api/esim/usage/details?iccid=`: the summary plus `dataUsages[]`."""
        data = await self._get("/api/esim/usage/details", {"iccid": iccid})
        return self._parse(RoamifyUsage.from_json, data, "GET /api/esim/usage/details")

    async def share_link(
        self, *, iccid: str | None = None, esim_id: str | None = None
    ) -> RoamifyShareLink:
        """`POST /api/esim/link` with `iccid` or `esimId`: Roamify's hosted install page."""
        self._one_of("share_link", iccid=iccid, esim_id=esim_id)
        data = await self._post("/api/esim/link", {"iccid": iccid, "esimId": esim_id})
        return self._parse(RoamifyShareLink.from_json, data, "POST /api/esim/link")

    # -- account ----------------------------------------------------------------------

    async def balance(self) -> RoamifyBalance:
        """`GET /api/balance`: the partner's prepaid balance."""
        data = await self._get("/api/balance")
        return self._parse(RoamifyBalance.from_json, data, "GET /api/balance")

    async def rate(self, target: str, source: str = "USD") -> RoamifyRate:
        """`GET /api/rates?source=&target=`: the current exchange rate."""
        data = await self._get("/api/rates", {"source": source.upper(), "target": target.upper()})
        return self._parse(RoamifyRate.from_json, data, "GET /api/rates")

    async def usd_rate(self, target: str) -> Decimal:
        """Units of `target` per USD."""
        return (await self.rate(target)).rate

    async def health(self) -> RoamifyHealth:
        """`GET /api/health`. Its body is undocumented: any 2xx counts as healthy unless
        it says otherwise; a failure raises like every other call."""
        body = await send_json(
            self._http,
            PROVIDER,
            "GET",
            "/api/health",
            headers=self._headers,
            timeout=self._read,
            parse_error=self._parse_error,
        )
        return RoamifyHealth.from_json(body)
