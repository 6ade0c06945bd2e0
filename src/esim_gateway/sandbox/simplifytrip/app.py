"""The SimplifyTrip merchant-API simulator (providers.md part 2).

Bare JSON bodies (no envelope), VND integers, ISO timestamps, and every error as
`{timestamp, statusCode, errorCode, message}`. Choices where the docs are silent:
* a missing or wrong `X-Signature` answers 400 BAD_REQUEST "Invalid signature" (a bad
  key answers 401 UNAUTHORIZED);
* `take` defaults to 10 and is capped at 100;
* return items accept `subOrderId` and the workflow page's `orderItemId`;
* eSIM orders are fulfilled `fulfil_delay` seconds after creation (a read after the due
  time sees them fulfilled even if no background task ran).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from esim_gateway.sandbox._kit import Refused, json_response, refusals
from esim_gateway.sandbox.simplifytrip.state import (
    RETURN_FEE,
    SimplifyTripState,
    StItem,
    StOrder,
    StReturn,
    iso,
    return_type,
)
from esim_gateway.signatures import verify_simplifytrip_signature

__all__ = ["ERROR_CODES", "error", "routes"]

ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
NOT_ELIGIBLE = "No eligible order or request found"
SIX_MONTHS = 183 * 86400


def error(status: int, message: str) -> Response:
    return json_response(
        {
            "timestamp": int(time.time() * 1000),
            "statusCode": status,
            "errorCode": ERROR_CODES.get(status, "ERROR"),
            "message": message,
        },
        status,
    )


def refuse(status: int, message: str) -> Refused:
    return Refused(error(status, message))


def _state(request: Request) -> SimplifyTripState:
    state: SimplifyTripState = request.app.state.simplifytrip
    return state


async def _signed(request: Request) -> dict[str, Any]:
    """The JSON object body, its `X-Signature` checked."""
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise refuse(400, "Request body must be valid JSON") from None
    if not isinstance(body, dict):
        raise refuse(400, "Request body must be a JSON object")
    key: str = request.app.state.checksum_key
    if not verify_simplifytrip_signature(body, request.headers.get("x-signature"), key):
        raise refuse(400, "Invalid signature")
    return body


def _page(request: Request) -> tuple[int, int] | Response:
    try:
        take = int(request.query_params.get("take", "10"))
        skip = int(request.query_params.get("skip", "0"))
    except ValueError:
        return error(400, "take and skip must be integers")
    if take < 1 or take > 100 or skip < 0:
        return error(400, "take must be 1-100 and skip >= 0")
    return take, skip


def _paged(items: list[Any], take: int, skip: int) -> Response:
    return json_response(
        {"total": len(items), "skip": skip, "take": take, "items": items[skip : skip + take]}
    )


def _text_match(needle: str, *haystacks: Any) -> bool:
    needle = needle.lower()
    return any(needle in str(h).lower() for h in haystacks)


async def products(request: Request) -> Response:
    paging = _page(request)
    if isinstance(paging, Response):
        return paging
    q = request.query_params
    found = []
    for product in _state(request).catalog.products.values():
        if q.get("type") and product["type"] != q["type"]:
            continue
        if q.get("countryId") and q["countryId"].upper() not in {
            c["id"] for c in product["countries"]
        }:
            continue
        if q.get("regionId") and q["regionId"] not in {r["id"] for r in product["regions"]}:
            continue
        if q.get("query") and not _text_match(
            q["query"],
            product["spu"],
            product["name"]["en"],
            product["name"]["vi"],
            *(c["name"]["en"] for c in product["countries"]),
            *(r["name"]["en"] for r in product["regions"]),
        ):
            continue
        found.append(product)
    return _paged(found, *paging)


async def product(request: Request) -> Response:
    key = request.path_params["spu"]
    for item in _state(request).catalog.products.values():
        if key in (item["spu"], item["slug"]["en"], item["slug"]["vi"]):
            return json_response(item)
    return error(404, "Product not found")


async def variation(request: Request) -> Response:
    found = _state(request).catalog.variations.get(request.path_params["sku"])
    if found is None:
        return error(404, "Variation not found")
    item, parent = found
    return json_response({**item, "spu": parent["spu"]})


def _named_list(request: Request, entries: list[dict[str, Any]]) -> Response:
    """`GET /countries` and `GET /regions`: `query` matches id or English name; paged."""
    paging = _page(request)
    if isinstance(paging, Response):
        return paging
    query = request.query_params.get("query")
    items = [e for e in entries if not query or _text_match(query, e["id"], e["name"]["en"])]
    return _paged(items, *paging)


async def countries(request: Request) -> Response:
    return _named_list(request, _state(request).catalog.countries)


async def regions(request: Request) -> Response:
    return _named_list(request, _state(request).catalog.regions)


def _due(state: SimplifyTripState, order: StOrder) -> StOrder:
    if order.status == "PROCESSING" and order.due_at is not None and state.clock() >= order.due_at:
        state.fulfil(order)
    return order


def order_json(state: SimplifyTripState, order: StOrder) -> dict[str, Any]:
    returns = [state.returns[r] for r in reversed(order.returns)]
    pending = any(r.status == "REQUESTED" for r in returns)
    refunding = any(r.status == "REFUNDING" for r in returns)
    returned = sum(i.quantity_returned for i in order.items)
    total_qty = sum(i.quantity for i in order.items)
    return {
        "id": order.id,
        "trackId": order.track_id,
        "createdAt": iso(order.created_at),
        "updatedAt": iso(order.updated_at),
        "confirmedAt": iso(order.confirmed_at),
        "deliveringAt": iso(order.delivering_at),
        "canceledAt": iso(order.canceled_at),
        "succeededAt": iso(order.succeeded_at),
        "status": order.status,
        "returnStatus": "NONE"
        if returned == 0
        else ("FULL" if returned >= total_qty else "PARTIAL"),
        "hasPendingReturn": pending,
        "hasRefundingReturn": refunding,
        "totalBeforeRefund": order.total,
        "total": order.total - order.refund_amount,
        "refundAmount": order.refund_amount,
        "error": order.error,
        "shippingAddress": None,
        "items": [
            {
                "id": item.id,
                "subTrackId": item.sub_track_id,
                "status": item.status,
                "quantity": item.quantity,
                "quantityReturned": item.quantity_returned,
                "iccids": list(item.iccids),
                "price": item.price,
                "type": item.type,
                "spu": state.catalog.variations[item.sku][1]["spu"],
                "sku": item.sku,
                "eSims": [state.esim_json(state.esims[i]) for i in item.iccids if i in state.esims],
            }
            for item in order.items
        ],
        "returns": [return_json(state, r) for r in returns],
    }


def return_json(state: SimplifyTripState, request: StReturn) -> dict[str, Any]:
    order = state.orders[request.order_id]
    return {
        "id": request.id,
        "returnTrackId": request.return_track_id,
        "orderId": order.id,
        "orderTrackId": order.track_id,
        "createdAt": iso(request.created_at),
        "refundingAt": iso(request.refunding_at),
        "completedAt": iso(request.completed_at),
        "canceledAt": iso(request.canceled_at),
        "rejectedAt": iso(request.rejected_at),
        "reason": request.reason,
        "rejectionReason": request.rejection_reason,
        "status": request.status,
        "returnType": return_type(order, request),
        "refundFee": request.refund_fee,
        "extraFee": request.extra_fee,
        "extraFeeNote": None,
        "refundAmount": request.refund_amount,
        "items": [{k: v for k, v in item.items() if k != "unitPrice"} for item in request.items],
    }


def _created(state: SimplifyTripState, order: StOrder) -> dict[str, Any]:
    items = []
    for item in order.items:
        entry = {
            "subOrderId": item.id,
            "subTrackId": item.sub_track_id,
            "sku": item.sku,
            "quantity": item.quantity,
            "type": item.type,
        }
        if not state.legacy_create_status:
            entry["status"] = item.status
        items.append(entry)
    body: dict[str, Any] = {"success": True, "orderId": order.id, "trackId": order.track_id}
    if not state.legacy_create_status:
        body["status"] = order.status
    body["items"] = items
    return body


def _blank(body: dict[str, Any], *names: str) -> str | None:
    """The first of `names` missing or blank in `body`."""
    for name in names:
        value = body.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return name
    return None


def _require(body: dict[str, Any], *names: str) -> None:
    missing = _blank(body, *names)
    if missing is not None:
        raise refuse(400, f"Please do not leave blank: {missing}")


def _check_order_request(state: SimplifyTripState, body: dict[str, Any]) -> None:
    """The order's own fields (its items are checked by `_order_lines`)."""
    _require(body, "trackId", "items")
    track_id, items = body["trackId"], body["items"]
    if not isinstance(track_id, str) or len(track_id) > 100:
        raise refuse(400, "trackId must be a string of at most 100 characters")
    if not isinstance(items, list) or not items:
        raise refuse(400, "items must contain at least 1 item")
    delivery = body.get("deliveryType", "WEBHOOK")
    if delivery not in ("WEBHOOK", "EMAIL"):
        raise refuse(400, "deliveryType must be WEBHOOK or EMAIL")
    if delivery == "EMAIL" and (_blank(body, "customerEmail", "customerName") is not None):
        raise refuse(400, "customerEmail and customerName are required when deliveryType is EMAIL")
    if track_id in state.by_track:
        raise refuse(400, f"trackId {track_id} already exists")


Line = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def _order_lines(state: SimplifyTripState, items: list[Any]) -> list[Line]:
    """Each item with its variation and product: (item, variation, product)."""
    sub_ids: set[Any] = set()
    skus: set[Any] = set()
    parsed: list[Line] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise refuse(400, f"items[{index}] must be an object")
        _require(item, "subTrackId", "sku", "quantity")
        quantity = item["quantity"]
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 500:
            raise refuse(400, f"items[{index}].quantity must be an integer from 1 to 500")
        if item["subTrackId"] in sub_ids or item["sku"] in skus:
            raise refuse(400, "subTrackId and sku must be unique in the request")
        sub_ids.add(item["subTrackId"])
        skus.add(item["sku"])
        found = state.catalog.variations.get(str(item["sku"]))
        if found is None:
            raise refuse(404, f"Product {item['sku']} not found")
        parsed.append((item, found[0], found[1]))
    return parsed


def _one_kind(parsed: list[Line]) -> str:
    kinds = {product["type"] for _, _, product in parsed}
    if len(kinds) != 1 or kinds - {"eSIM", "SIM"}:
        raise refuse(400, "All items must be of the same product type (eSIM or SIM)")
    return str(kinds.pop())


def _charge(state: SimplifyTripState, total: int) -> None:
    if total > state.wallet:
        raise refuse(422, "Insufficient wallet balance")
    state.wallet -= total


def _record(state: SimplifyTripState, order: StOrder) -> None:
    state.orders[order.id] = order
    state.by_track[order.track_id] = order.id


@refusals
async def create_order(request: Request) -> Response:
    state = _state(request)
    body = await _signed(request)
    _check_order_request(state, body)
    parsed = _order_lines(state, body["items"])
    kind = _one_kind(parsed)
    _charge(state, sum(v["price"] * i["quantity"] for i, v, _ in parsed))
    now = state.clock()
    status = "PROCESSING" if kind == "eSIM" else "NEW"
    order = StOrder(
        state.next_id(),
        body["trackId"],
        now,
        status,
        [
            StItem(
                state.next_id(24)[:24],
                str(i["subTrackId"]),
                str(i["sku"]),
                int(i["quantity"]),
                int(v["price"]),
                kind,
                status,
            )
            for i, v, _ in parsed
        ],
        updated_at=now,
    )
    if kind == "eSIM":
        order.due_at = now + state.fulfil_delay
    _record(state, order)
    request.app.state.schedule_fulfilment(order)
    return json_response(_created(state, order), 200 if state.legacy_create_status else 201)


async def get_order(request: Request) -> Response:
    state = _state(request)
    order = state.find_order(request.path_params["id"])
    if order is None:
        return error(404, NOT_ELIGIBLE)
    return json_response(order_json(state, _due(state, order)))


def _recharge_line(
    state: SimplifyTripState, body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """The one item of a recharge: (item, its variation, its ICCIDs), all checked."""
    _require(body, "trackId", "items")
    items = body["items"]
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        raise refuse(400, "items must contain exactly one item")
    item = items[0]
    _require(item, "subTrackId", "sku", "iccids")
    if body["trackId"] in state.by_track:
        raise refuse(400, f"trackId {body['trackId']} already exists")
    iccids = item["iccids"]
    if (
        not isinstance(iccids, list)
        or not 1 <= len(iccids) <= 50
        or len(set(iccids)) != len(iccids)
    ):
        raise refuse(400, "iccids must hold 1 to 50 unique ICCIDs")
    found = state.catalog.variations.get(str(item["sku"]))
    if found is None or found[1]["type"] != "SIM_RECHARGE":
        raise refuse(404, f"Recharge product {item['sku']} not found")
    unknown = [i for i in iccids if i not in state.sims]
    if unknown:
        raise refuse(404, f"SIM {unknown[0]} not found")
    return item, found[0], iccids


@refusals
async def recharge(request: Request) -> Response:
    state = _state(request)
    body = await _signed(request)
    item, variation_, iccids = _recharge_line(state, body)
    _charge(state, variation_["price"] * len(iccids))
    now = state.clock()
    order = StOrder(
        state.next_id(),
        str(body["trackId"]),
        now,
        "SUCCESS",
        [
            StItem(
                state.next_id(24)[:24],
                str(item["subTrackId"]),
                str(item["sku"]),
                len(iccids),
                int(variation_["price"]),
                "SIM_RECHARGE",
                "SUCCESS",
                list(iccids),
            )
        ],
        updated_at=now,
        succeeded_at=now,
    )
    _record(state, order)
    for iccid in iccids:
        sim = state.sims[iccid]
        sim.update(
            sku=item["sku"],
            days=sim["days"] + variation_["days"],
            started=now,
            order_id=order.id,
            item_id=order.items[0].id,
        )
    return json_response(_created(state, order), 201)


@refusals
async def cancel_order(request: Request) -> Response:
    state = _state(request)
    body = await _signed(request)
    _require(body, "orderId")
    order = state.find_order(str(body["orderId"]))
    if (
        order is None
        or order.status != "NEW"
        or any(i.type != "SIM" or i.status != "NEW" for i in order.items)
    ):
        return error(404, NOT_ELIGIBLE)
    now = state.clock()
    order.status, order.canceled_at, order.updated_at = "CANCELED", now, now
    order.reason = body.get("reason")
    for item in order.items:
        item.status = "CANCELED"
    state.wallet += order.total
    return json_response(
        {
            "id": order.id,
            "trackId": order.track_id,
            "createdAt": iso(order.created_at),
            "updatedAt": iso(now),
            "status": "CANCELED",
            "reason": order.reason,
            "items": [
                {
                    "id": i.id,
                    "subTrackId": i.sub_track_id,
                    "sku": i.sku,
                    "quantity": i.quantity,
                    "type": i.type,
                    "status": i.status,
                }
                for i in order.items
            ],
        },
        201,
    )


def _returnable_order(state: SimplifyTripState, body: dict[str, Any]) -> StOrder:
    """The order a return request names, if a return may be requested for it now."""
    _require(body, "returnTrackId", "orderId", "items")
    if any(r.return_track_id == body["returnTrackId"] for r in state.returns.values()):
        raise refuse(400, f"returnTrackId {body['returnTrackId']} already exists")
    order = state.find_order(str(body["orderId"]))
    if order is None or _due(state, order).status != "SUCCESS":
        raise refuse(404, NOT_ELIGIBLE)
    if state.clock() - order.created_at > SIX_MONTHS:
        raise refuse(400, "The order is older than 6 months")
    if any(state.returns[r].status in ("REQUESTED", "REFUNDING") for r in order.returns):
        raise refuse(400, "The order already has an active return request")
    items = body["items"]
    if not isinstance(items, list) or not items:
        raise refuse(400, "items must contain at least 1 item")
    return order


def _return_quantity(
    state: SimplifyTripState, target: StItem, index: int, item: dict[str, Any]
) -> tuple[int, list[Any]]:
    """How many units of `target` the item returns, and which ICCIDs (eSIMs, recharges)."""
    iccids = item.get("iccids") or []
    if target.type in ("eSIM", "SIM_RECHARGE"):
        if not iccids or any(i not in target.iccids for i in iccids):
            raise refuse(400, f"items[{index}].iccids are not part of the order item")
        if any(i in state.esims and state.esims[i].return_status != "NONE" for i in iccids):
            raise refuse(400, f"items[{index}].iccids are already reserved or returned")
        return len(iccids), iccids
    quantity = int(item.get("quantity") or 0)
    if not 1 <= quantity <= target.quantity - target.quantity_returned:
        raise refuse(400, f"items[{index}].quantity is not available")
    return quantity, iccids


def _return_line(
    state: SimplifyTripState, order: StOrder, index: int, item: Any, seen: set[str]
) -> tuple[dict[str, Any], int, int]:
    """One returned item: (its line in the request, its fee, its refund)."""
    if not isinstance(item, dict):
        raise refuse(400, f"items[{index}] must be an object")
    key = item.get("subOrderId") or item.get("orderItemId")
    target = next((i for i in order.items if key in (i.id, i.sub_track_id)), None)
    if target is None:
        raise refuse(400, f"items[{index}] does not belong to the order")
    if target.id in seen:
        raise refuse(400, "Duplicate items in the request")
    seen.add(target.id)
    quantity, iccids = _return_quantity(state, target, index, item)
    fee = 0 if target.type == "SIM_RECHARGE" else RETURN_FEE * quantity
    product = state.catalog.variations[target.sku][1]
    line = {
        "subOrderId": target.id,
        "subOrderTrackId": target.sub_track_id,
        "spu": product["spu"],
        "sku": target.sku,
        "type": target.type,
        "returnType": "FULL" if quantity >= target.quantity else "PARTIAL",
        "iccids": list(iccids),
        "quantity": quantity,
    }
    return line, fee, max(target.price * quantity - fee, 0)


@refusals
async def create_return(request: Request) -> Response:
    state = _state(request)
    body = await _signed(request)
    order = _returnable_order(state, body)
    seen: set[str] = set()
    returned = [_return_line(state, order, n, item, seen) for n, item in enumerate(body["items"])]
    lines = [line for line, _, _ in returned]
    for line in lines:
        for iccid in line["iccids"]:
            if iccid in state.esims:
                state.esims[iccid].return_status = "RESERVED"
    record = StReturn(
        state.next_id(),
        str(body["returnTrackId"]),
        order.id,
        state.clock(),
        body.get("reason"),
        lines,
        sum(fee for _, fee, _ in returned),
        sum(refund for _, _, refund in returned),
    )
    state.returns[record.id] = record
    order.returns.append(record.id)
    return json_response(return_json(state, record), 201)


def _find_return(state: SimplifyTripState, key: str) -> StReturn | None:
    return state.returns.get(key) or next(
        (r for r in state.returns.values() if r.return_track_id == key), None
    )


async def get_return(request: Request) -> Response:
    state = _state(request)
    found = _find_return(state, request.path_params["id"])
    if found is None:
        return error(404, "No eligible order or return request found")
    return json_response(return_json(state, found))


@refusals
async def cancel_return(request: Request) -> Response:
    state = _state(request)
    body = await _signed(request)
    _require(body, "returnId")
    found = _find_return(state, str(body["returnId"]))
    if found is None:
        return error(404, "No eligible order or return request found")
    if found.status != "REQUESTED":
        return error(400, "Only a REQUESTED return request can be canceled")
    found.status, found.canceled_at = "CANCELED", state.clock()
    for item in found.items:
        for iccid in item["iccids"]:
            if iccid in state.esims:
                state.esims[iccid].return_status = "NONE"
    return json_response(return_json(state, found), 201)


class _Plan(NamedTuple):
    """What a status answer is made of, for an eSIM or a recharged SIM alike."""

    sku: str
    started: float | None
    used: float
    order: StOrder
    item: StItem
    days: int


def _plan(state: SimplifyTripState, iccid: str, *, sim: bool) -> _Plan | None:
    if sim:
        record = state.sims.get(iccid)
        if record is None or record["sku"] is None:
            return None
        order = state.orders[record["order_id"]]
        return _Plan(
            record["sku"], record["started"], record["mb"], order, order.items[0], record["days"]
        )
    esim = state.esims.get(iccid)
    if esim is None:
        return None
    order = state.orders[esim.order_id]
    return _Plan(
        esim.sku,
        esim.installed_at,
        esim.consumed_mb,
        order,
        next(i for i in order.items if i.id == esim.item_id),
        state.catalog.variations[esim.sku][0]["days"],
    )


def _status_json(state: SimplifyTripState, iccid: str, *, sim: bool) -> dict[str, Any] | None:
    now = state.clock()
    plan = _plan(state, iccid, sim=sim)
    if plan is None:
        return None
    sku, started, used, order, item, days = plan
    variation_, product = state.catalog.variations[sku]
    end = started + days * 86400 if started else None
    plan_status = "UNUSED" if not started else ("EXPIRED" if end and now > end else "IN_USE")
    used_bytes = int(used * 1024 * 1024)
    logs = [{"eid": "", "recordTime": iso(order.created_at), "status": "NOT_DOWNLOADED"}]
    if started:
        logs += [
            {"eid": "89049032000001000000000000000001", "recordTime": iso(started), "status": s}
            for s in ("DOWNLOADED", "INSTALLED", "ENABLED")
        ]
    return {
        "iccid": iccid,
        "activityLogs": logs,
        "usageInfoList": (
            [{"usedDate": time.strftime("%Y%m%d", time.gmtime(now)), "usageAmt": used_bytes}]
            if used
            else []
        ),
        "simStatus": {
            "planStartTime": iso(started),
            "planEndTime": iso(end),
            "remainingDays": max(0, int(((end or now) - now) // 86400)) if end else days,
            "usedTraffic": used_bytes,
            "planStatus": plan_status,
        },
        "productInfo": {
            "sku": sku,
            "spu": product["spu"],
            "name": variation_["name"],
            "type": product["type"],
            "package": variation_["package"],
            "days": variation_["days"],
            "data": variation_["data"],
            "apn": variation_["apn"],
            "hotsPot": variation_["hotsPot"],
            "throttleSpeed": variation_["throttleSpeed"],
            "pointContactType": variation_["pointContactType"],
            "smsCall": variation_["smsCall"],
        },
        "orderInfo": {
            "orderId": order.id,
            "trackId": order.track_id,
            "subOrderId": item.id,
            "subTrackId": item.sub_track_id,
            "purchaseDate": iso(order.created_at),
        },
    }


async def esim_status(request: Request) -> Response:
    found = _status_json(_state(request), request.path_params["iccid"], sim=False)
    return json_response(found) if found else error(404, "eSIM not found")


async def sim_status(request: Request) -> Response:
    found = _status_json(_state(request), request.path_params["iccid"], sim=True)
    return json_response(found) if found else error(404, "SIM not found")


async def accounts(request: Request) -> Response:
    state = _state(request)
    return json_response(
        [
            {
                "id": "acc-topup-1",
                "type": "TOP_UP",
                "balance": state.wallet,
                "status": "ACTIVE",
                "isBlocked": False,
                "isDefault": True,
                "debtStatement": None,
                "currency": "VND",
                "dueDate": None,
            },
        ]
    )


def routes() -> list[Route]:
    return [
        Route("/api/v1/products", products),
        Route("/api/v1/products/variation/{sku}", variation),
        Route("/api/v1/products/esim/{iccid}", esim_status),
        Route("/api/v1/products/sim/{iccid}", sim_status),
        Route("/api/v1/products/{spu}", product),
        Route("/api/v1/countries", countries),
        Route("/api/v1/regions", regions),
        Route("/api/v1/orders", create_order, methods=["POST"]),
        Route("/api/v1/orders/recharge", recharge, methods=["POST"]),
        Route("/api/v1/orders/cancel", cancel_order, methods=["POST"]),
        Route("/api/v1/orders/{id}", get_order, methods=["GET"]),
        Route("/api/v1/return-requests", create_return, methods=["POST"]),
        Route("/api/v1/return-requests/cancel", cancel_return, methods=["POST"]),
        Route("/api/v1/return-requests/{id}", get_return, methods=["GET"]),
        Route("/api/v1/accounts", accounts),
    ]
