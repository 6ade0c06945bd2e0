"""The SimplifyTrip merchant-API wire client: one typed method per documented endpoint.

Every call carries `X-Api-Key: <apiKey>` and `Authorization: Bearer <secretKey>`; every
POST also `X-Signature`, the flattened-body HMAC of providers.md 2.2 computed over the
very dict that is encoded and sent (encoded once, signed once). Bodies omit optional
fields that were not given, rather than sending null.

Failures come out of `_http.send_json` as `esim_gateway.errors` types; an answer whose
shape cannot be read is a `ProviderUnavailable` (for a purchase, the outcome is unknown).
The keys never appear in a message, a repr or a log line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from esim_gateway.errors import ProviderUnavailable
from esim_gateway.providers._http import Timeouts, build_timeout, encode_json, send_json
from esim_gateway.providers.simplifytrip.models import (
    STAccount,
    STCancelledOrder,
    STCountry,
    STCreatedOrder,
    STEsimStatus,
    STOrder,
    STPage,
    STProduct,
    STRegion,
    STReturnRequest,
    STVariation,
    WireFormatError,
)
from esim_gateway.providers.wire import decode
from esim_gateway.signatures import simplifytrip_signature

__all__ = [
    "LIVE_BASE_URL",
    "PROVIDER",
    "ReturnLine",
    "SimplifyTripClient",
    "parse_simplifytrip_error",
]

PROVIDER = "simplifytrip"
LIVE_BASE_URL = "https://merchant.simplifytrip.com"
T = TypeVar("T")

#: a return-request item: (subOrderId or subTrackId, ICCIDs (eSIM / SIM recharge),
#: quantity (physical SIM) or None)
ReturnLine = tuple[str, Sequence[str], int | None]


def parse_simplifytrip_error(status: int, body: Any, text: str) -> tuple[str, str]:
    """`(errorCode, message)` from `{timestamp, statusCode, errorCode, message}`
    (providers.md 2.3); anything else is `(HTTP_<status>, <body text>)`."""
    if isinstance(body, dict) and ("errorCode" in body or "message" in body):
        code = body.get("errorCode")
        message = body.get("message")
        if isinstance(message, list):  # validation pipes may send one message per field
            message = "; ".join(str(m) for m in message)
        return (
            str(code) if code else f"HTTP_{status}",
            str(message) if message else (text.strip() or f"HTTP_{status}"),
        )
    return f"HTTP_{status}", text.strip() or f"HTTP_{status}"


def _seg(value: str) -> str:
    """One path segment, percent-encoded so an id can never change the path or query."""
    return quote(value, safe="")


def _parse(parse: Callable[[Any], T], data: Any, what: str) -> T:
    try:
        return parse(data)
    except WireFormatError as exc:
        raise ProviderUnavailable(
            PROVIDER, f"{PROVIDER} answered {what} in an unexpected shape: {exc}"
        ) from exc


class SimplifyTripClient:
    """Handed an `httpx.AsyncClient` whose base_url is `LIVE_BASE_URL` or a sandbox."""

    __slots__ = ("_checksum_key", "_headers", "_http", "_read", "_write")

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        secret_key: str,
        checksum_key: str,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, shared safely
    ) -> None:
        self._http = http
        self._headers = {
            "x-api-key": api_key,
            "authorization": f"Bearer {secret_key}",
            "accept": "application/json",
        }
        self._checksum_key = checksum_key
        self._read = build_timeout(timeouts.read, timeouts.connect)
        self._write = build_timeout(timeouts.write, timeouts.connect)

    def __repr__(self) -> str:
        return f"SimplifyTripClient(base_url={str(self._http.base_url)!r})"

    async def _get(self, path: str, params: Mapping[str, str | int | None] | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return await send_json(
            self._http,
            PROVIDER,
            "GET",
            path,
            params=query or None,
            headers=self._headers,
            timeout=self._read,
            parse_error=parse_simplifytrip_error,
        )

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        # The signature covers exactly the object that is encoded: one dict, used twice.
        payload = {k: v for k, v in body.items() if v is not None}
        content = encode_json(payload)
        headers = {
            **self._headers,
            "x-signature": simplifytrip_signature(payload, self._checksum_key),
        }
        return await send_json(
            self._http,
            PROVIDER,
            "POST",
            path,
            body=content,
            headers=headers,
            timeout=self._write,
            parse_error=parse_simplifytrip_error,
        )

    # -- catalog --------------------------------------------------------------------------

    async def products(
        self,
        type: str | None = None,
        query: str | None = None,
        country_id: str | None = None,
        region_id: str | None = None,
        take: int | None = None,
        skip: int | None = None,
    ) -> STPage[STProduct]:
        """`GET /api/v1/products`; `type` is eSIM, SIM or SIM_RECHARGE."""
        data = await self._get(
            "/api/v1/products",
            {
                "type": type,
                "query": query,
                "countryId": country_id,
                "regionId": region_id,
                "take": take,
                "skip": skip,
            },
        )
        return _parse(lambda d: decode(d, STPage[STProduct]), data, "products")

    async def all_products(
        self, type: str = "eSIM", page_size: int = 100, *, max_pages: int = 1000
    ) -> list[STProduct]:
        """Every product of a type: pages by skip/take until `total` or an empty page."""
        found: list[STProduct] = []
        for _ in range(max_pages):
            page = await self.products(type=type, take=page_size, skip=len(found))
            found.extend(page.items)
            if not page.items or len(found) >= page.total:
                break
        return found

    async def product(self, spu_or_slug: str) -> STProduct:
        data = await self._get(f"/api/v1/products/{_seg(spu_or_slug)}")
        return _parse(STProduct.from_json, data, "product")

    async def variation(self, sku: str) -> STVariation:
        data = await self._get(f"/api/v1/products/variation/{_seg(sku)}")
        return _parse(STVariation.from_json, data, "variation")

    async def countries(
        self, query: str | None = None, take: int | None = None, skip: int | None = None
    ) -> STPage[STCountry]:
        data = await self._get("/api/v1/countries", {"query": query, "take": take, "skip": skip})
        return _parse(lambda d: decode(d, STPage[STCountry]), data, "countries")

    async def regions(
        self, query: str | None = None, take: int | None = None, skip: int | None = None
    ) -> STPage[STRegion]:
        data = await self._get("/api/v1/regions", {"query": query, "take": take, "skip": skip})
        return _parse(lambda d: decode(d, STPage[STRegion]), data, "regions")

    # -- orders ---------------------------------------------------------------------------

    async def create_order(
        self,
        track_id: str,
        items: Sequence[tuple[str, str, int]],
        delivery_type: str | None = None,
        customer_email: str | None = None,
        customer_name: str | None = None,
    ) -> STCreatedOrder:
        """`POST /api/v1/orders`; `items` are (subTrackId, sku, quantity).

        Accepts the 201 answer with statuses and the older 200 one without.
        """
        data = await self._post(
            "/api/v1/orders",
            {
                "trackId": track_id,
                "items": [
                    {"subTrackId": sub_track_id, "sku": sku, "quantity": quantity}
                    for sub_track_id, sku, quantity in items
                ],
                "deliveryType": delivery_type,
                "customerEmail": customer_email,
                "customerName": customer_name,
            },
        )
        return _parse(STCreatedOrder.from_json, data, "create order")

    async def recharge(
        self, track_id: str, sub_track_id: str, sku: str, iccids: Sequence[str]
    ) -> STCreatedOrder:
        """`POST /api/v1/orders/recharge`: a SIM_RECHARGE sku on 1-50 SIM cards."""
        data = await self._post(
            "/api/v1/orders/recharge",
            {
                "trackId": track_id,
                "items": [{"subTrackId": sub_track_id, "sku": sku, "iccids": list(iccids)}],
            },
        )
        return _parse(STCreatedOrder.from_json, data, "recharge")

    async def cancel_order(self, order_id: str, reason: str | None = None) -> STCancelledOrder:
        """`POST /api/v1/orders/cancel` (order id or trackId); only NEW physical-SIM orders."""
        data = await self._post("/api/v1/orders/cancel", {"orderId": order_id, "reason": reason})
        return _parse(STCancelledOrder.from_json, data, "cancel order")

    async def get_order(self, order_id_or_track_id: str) -> STOrder:
        data = await self._get(f"/api/v1/orders/{_seg(order_id_or_track_id)}")
        return _parse(STOrder.from_json, data, "order details")

    # -- return requests ------------------------------------------------------------------

    async def create_return(
        self,
        return_track_id: str,
        order_id: str,
        items: Sequence[ReturnLine],
        reason: str | None = None,
    ) -> STReturnRequest:
        """`POST /api/v1/return-requests`; see `ReturnLine` for the items."""
        lines: list[dict[str, Any]] = []
        for sub_order_id, iccids, quantity in items:
            line: dict[str, Any] = {"subOrderId": sub_order_id}
            if iccids:
                line["iccids"] = list(iccids)
            if quantity is not None:
                line["quantity"] = quantity
            lines.append(line)
        data = await self._post(
            "/api/v1/return-requests",
            {
                "returnTrackId": return_track_id,
                "orderId": order_id,
                "reason": reason,
                "items": lines,
            },
        )
        return _parse(STReturnRequest.from_json, data, "create return request")

    async def get_return(self, return_id: str) -> STReturnRequest:
        """By SimplifyTrip id or returnTrackId."""
        data = await self._get(f"/api/v1/return-requests/{_seg(return_id)}")
        return _parse(STReturnRequest.from_json, data, "return request")

    async def cancel_return(self, return_id: str) -> STReturnRequest:
        data = await self._post("/api/v1/return-requests/cancel", {"returnId": return_id})
        return _parse(STReturnRequest.from_json, data, "cancel return request")

    # -- SIMs and wallets -----------------------------------------------------------------

    async def esim_status(self, iccid: str) -> STEsimStatus:
        data = await self._get(f"/api/v1/products/esim/{_seg(iccid)}")
        return _parse(STEsimStatus.from_json, data, "eSIM status")

    async def sim_status(self, iccid: str) -> STEsimStatus:
        data = await self._get(f"/api/v1/products/sim/{_seg(iccid)}")
        return _parse(STEsimStatus.from_json, data, "SIM status")

    async def accounts(self) -> list[STAccount]:
        data = await self._get("/api/v1/accounts")

        return _parse(lambda d: decode(d, list[STAccount]), data, "accounts")
